"""The Fit page as a user reads it: the numbers on its bars are the estimator's own."""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path

import pytest
import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from pytestqt.qtbot import QtBot

from app.fit.calibration import CalibrationKey, CalibrationStore, plan_key
from app.fit.launch import launch_plan
from app.fit.llamacpp_estimate import estimate_llamacpp
from app.fit.model_info import model_info
from app.fit.plan import FitPlan, HostMemory
from app.fit.planner import plan_fit
from app.fit.session import FitSession
from app.library.gguf import read_gguf_header
from app.library.library import Library
from app.telemetry.replay import ReplaySampler, load_trace
from app.telemetry.service import MonitorService
from tests.realparts.fixtures import TinyGgufFactory
from tests.unit.app.fit.reference import need, shared_data
from tests.unit.app.telemetry.shared_data import h100_trace
from ui.fit_explainer import CHANGEABLE, LOCKED
from ui.monitor_feed import MonitorFeed
from ui.notifier import Level, Notice
from ui.pages.fit_page import ChosenPlan, FitPage
from ui.services import Services

GPU_96GB = 98304


@pytest.fixture
def moe30() -> Path:
    """The Qwen3-30B-A3B-shaped reference header (4 layers) measured on the H100."""
    return need(shared_data() / "gguf-headers" / "moe30.header.gguf")


def _open(
    qtbot: QtBot, services: Services, model: Path, gpu_memory: str | None = "98304"
) -> FitPage:
    """The page with `gpu_memory` typed in (None: left as found) and `model` entered."""
    page = FitPage(services)
    qtbot.add_widget(page)
    page.resize(1200, 820)
    page.show()
    qtbot.wait_exposed(page)
    if gpu_memory is not None:
        page.gpu_edit.setText(gpu_memory)
        page.gpu_edit.editingFinished.emit()
    page.path_edit.setText(str(model))
    QTest.keyClick(page.path_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: page.estimate is not None or bool(page.error_text))
    return page


def _planned(qtbot: QtBot, page: FitPage) -> None:
    """Wait for the debounced plan_fit (largest context, advice) of the current plan."""
    qtbot.waitUntil(lambda: page.result is not None and page.result.estimate == page.estimate)


def _legend(page: FitPage, index: int = 0) -> dict[str, float]:
    return page.gpu_bars[index].legend_values()


def test_the_page_shows_the_reference_header_with_the_estimators_numbers(
    qtbot: QtBot, services: Services, moe30: Path
) -> None:
    page = _open(qtbot, services, moe30)
    assert "qwen3moe" in page.model_label.text()
    assert "4 layers" in page.model_label.text()
    assert "128 experts, 8 per token" in page.model_label.text()
    expected = estimate_llamacpp(
        read_gguf_header(moe30), FitPlan(ctx=4096, gpus=(0,), gpu_memory_mib=(GPU_96GB,))
    )
    gpu = expected.devices[0]
    assert _legend(page) == {
        "weights": round(gpu.weights_mib),
        "KV cache": round(gpu.kv_mib),
        "compute": round(gpu.compute_mib),
        "output": 0,
        "runtime": round(gpu.overhead_mib),
    }
    status = page.gpu_bars[0].status_label.text()
    assert f"{gpu.total_mib:,.0f} MiB of 98,304 MiB" in status
    assert f"{GPU_96GB - gpu.total_mib:,.0f} MiB free" in status
    assert page.fit_label.text().startswith("Fits")
    assert page.host_bar.legend_values()["weights"] == round(expected.host.weights_mib)
    assert "Estimated" in page.measure_label.text()
    assert page.error_text == ""


def test_a_slider_move_updates_the_bars_with_the_engines_numbers(
    qtbot: QtBot, services: Services, moe30: Path
) -> None:
    page = _open(qtbot, services, moe30)
    kv_before = _legend(page)["KV cache"]
    slider = page.controls.context.slider
    slider.setFocus()
    QTest.keyClick(slider, Qt.Key.Key_PageUp)  # one page: +4096 tokens
    assert page.controls.context.value() == 8192
    plan = FitPlan(ctx=8192, gpus=(0,), gpu_memory_mib=(GPU_96GB,))
    assert page.current_plan() == plan
    gpu = estimate_llamacpp(read_gguf_header(moe30), plan).devices[0]
    # at once, or from the task runner when this machine is too busy for the 30 ms budget
    qtbot.waitUntil(lambda: _legend(page)["KV cache"] == round(gpu.kv_mib), timeout=10_000)
    assert _legend(page)["KV cache"] > kv_before
    assert f"{gpu.total_mib:,.0f} MiB of 98,304 MiB" in page.gpu_bars[0].status_label.text()

    page.controls.cache_k.setCurrentText("q8_0")
    page.controls.cache_v.setCurrentText("q8_0")
    q8 = estimate_llamacpp(
        read_gguf_header(moe30), replace(plan, cache_type_k="q8_0", cache_type_v="q8_0")
    ).devices[0]
    qtbot.waitUntil(lambda: _legend(page)["KV cache"] == round(q8.kv_mib), timeout=10_000)
    _planned(qtbot, page)


def test_an_impossible_plan_says_why_instead_of_bars(
    qtbot: QtBot, services: Services, moe30: Path
) -> None:
    page = _open(qtbot, services, moe30)
    page.controls.cache_v.setCurrentText("q8_0")
    page.controls.flash_attn.setChecked(False)
    assert "quantised V cache needs flash attention" in page.error_text
    assert page.gpu_bars == []
    page.controls.flash_attn.setChecked(True)
    assert page.error_text == ""
    # on a busy machine the estimate moves to the task runner (over its 30 ms budget)
    qtbot.waitUntil(lambda: len(page.gpu_bars) == 1, timeout=10_000)
    _planned(qtbot, page)


def test_the_experts_slider_is_there_only_for_a_moe_model(
    qtbot: QtBot, services: Services, tiny_gguf: TinyGgufFactory
) -> None:
    dense = tiny_gguf(arch="qwen3", layers=4)
    moe = tiny_gguf(arch="qwen3moe", layers=4, experts=16, experts_used=4)
    page = _open(qtbot, services, dense)
    assert not page.controls.row_visible("experts")
    assert not page.controls.row_visible("n_cpu_moe")

    page.path_edit.setText(str(moe))
    QTest.keyClick(page.path_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: page.model is not None and page.model.path == moe)
    assert page.controls.row_visible("experts")
    assert page.controls.experts.value() == 4
    assert page.controls.experts_hint.text() == "= default 4"
    weights_before = _legend(page)["weights"]
    page.controls.experts.setValue(12)
    assert page.controls.experts_hint.text() == "default 4"
    assert page.current_plan().experts == 12
    assert _legend(page)["weights"] == weights_before  # experts never change the weights
    _planned(qtbot, page)


def test_fixed_settings_are_shown_locked_with_the_reason(
    qtbot: QtBot, services: Services, moe30: Path
) -> None:
    page = _open(qtbot, services, moe30)
    rows = {r[0]: r for r in page.settings_table.row_texts()}
    assert rows["layers"] == ("layers", "4", LOCKED, "each layer has its own trained weights")
    assert rows["experts"][2] == LOCKED
    assert rows["experts per token"][1:3] == ("8", CHANGEABLE)
    assert rows["KV cache type"][2] == CHANGEABLE
    table = page.settings_table
    locked_row = [r[0] for r in page.settings_table.row_texts()].index("layers")
    item = table.item(locked_row, 2)
    assert item is not None
    assert not item.flags() & Qt.ItemFlag.ItemIsEnabled  # drawn greyed: no flag changes it
    assert not item.icon().isNull()  # the padlock
    _planned(qtbot, page)


def test_a_file_that_is_not_a_model_shows_an_error_on_the_page(
    qtbot: QtBot, services: Services, tmp_path: Path
) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 40)
    page = _open(qtbot, services, bad)
    assert "broken.gguf is not a readable GGUF model" in page.error_text
    assert page.model is None
    assert page.gpu_bars == []

    page.path_edit.setText(str(tmp_path / "missing.gguf"))
    QTest.keyClick(page.path_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "no such file" in page.error_text)


def test_vllm_on_a_gguf_file_says_what_it_needs(
    qtbot: QtBot, services: Services, moe30: Path
) -> None:
    page = _open(qtbot, services, moe30)
    page.engine_box.setCurrentIndex(1)
    assert "vLLM serves Hugging Face folders" in page.error_text
    assert page.controls.row_visible("utilization")
    assert not page.controls.row_visible("experts")


def test_the_largest_fitting_context_is_marked_and_advice_is_listed(
    qtbot: QtBot, services: Services, moe30: Path
) -> None:
    page = _open(qtbot, services, moe30, gpu_memory="7168")
    _planned(qtbot, page)
    header = read_gguf_header(moe30)
    plan = FitPlan(ctx=4096, gpus=(0,), gpu_memory_mib=(7168,))
    expected = plan_fit(header, plan, [7168.0], 512.0, host=page.session.capacities.host)
    assert 4096 < expected.max_ctx < page.controls.context.slider.maximum()
    assert page.controls.context_range.max_fit == expected.max_ctx
    assert page.controls.context_max_label.text() == f"≤ {expected.max_ctx:,} fits"
    assert f"{expected.max_ctx:,} tokens" in page.max_context_label.text()
    shown = [page.advice_list.item(i).text() for i in range(page.advice_list.count())]
    assert shown == [a.text() for a in expected.advice]
    assert not any("then fits" in line for line in shown)  # it fits already

    page.controls.context.setValue(expected.max_ctx + 4096)  # past the mark: no longer fits
    # at once, or from the task runner when this machine is too busy for the 30 ms budget
    qtbot.waitUntil(lambda: page.fit_label.text().startswith("Does not fit"), timeout=10_000)
    _planned(qtbot, page)
    advice = [page.advice_list.item(i).text() for i in range(page.advice_list.count())]
    assert any("then fits" in line for line in advice)


def test_gpus_come_from_the_monitor_and_the_last_measurement_is_shown(
    qtbot: QtBot, services: Services, moe30: Path
) -> None:
    trace = load_trace(h100_trace())
    service = MonitorService([ReplaySampler(trace, step=True)], interval_s=0.1)
    service.step(1_700_000_000.0)
    services.monitor.stop()
    services.monitor = MonitorFeed(service, services.settings)
    gpu_name = "NVIDIA H100 80GB HBM3"

    page = _open(qtbot, services, moe30, gpu_memory=None)
    assert page.gpu_edit.text() == "81559"
    assert gpu_name in page.gpu_hint_label.text()
    assert "Not yet measured for this plan" in page.measure_label.text()
    key = plan_key(launch_plan(moe30, page.session.plan))  # what a backend of it ran
    store = CalibrationStore(services.paths.data)
    store.record(CalibrationKey(socket.gethostname(), gpu_name, "llamacpp", "b6000"), 6000, 6350,
                 plan=key)
    store.record(CalibrationKey("another-host", gpu_name, "llamacpp", "b6000"), 6000, 9000,
                 plan=key)
    page.session.choose_path(moe30)  # read again: the record is there now
    qtbot.waitUntil(lambda: "Measured last time" in page.measure_label.text(), timeout=10_000)
    text = page.measure_label.text()
    assert "<b>Measured last time</b> for this plan" in text
    assert "+350 MiB" in text
    assert "9,000" not in text
    _planned(qtbot, page)


def test_start_hands_the_plan_on_or_says_where_it_went(
    qtbot: QtBot, services: Services, moe30: Path
) -> None:
    page = _open(qtbot, services, moe30)
    notices: list[Notice] = []
    services.notifier.posted.connect(notices.append)
    page.start_button.click()
    assert notices
    assert notices[-1].level is Level.INFO
    assert "handed to Backends" in notices[-1].text

    received: list[ChosenPlan] = []
    page.plan_started.connect(received.append)
    notices.clear()
    page.start_button.click()
    assert received == [ChosenPlan(moe30, "llamacpp", page.current_plan(), 512.0)]
    assert notices == []
    _planned(qtbot, page)


def test_library_models_can_be_picked(
    qtbot: QtBot, services: Services, tiny_gguf: TinyGgufFactory, tmp_path: Path
) -> None:
    model = tiny_gguf(arch="qwen3moe", layers=2, name="tiny-moe")
    library = Library([model.parent], index_path=tmp_path / "index.sqlite3", include_defaults=False)
    try:
        page = FitPage(services, library)
        qtbot.add_widget(page)
        assert page.library_box.isHidden()
        library.rescan()
        qtbot.waitUntil(lambda: page.library_box.count() == 2)
        assert not page.library_box.isHidden()
        page.library_box.setCurrentIndex(1)
        page.library_box.activated.emit(1)
        qtbot.waitUntil(lambda: page.model is not None)
        assert page.model is not None
        assert page.model.path == model
        assert services.settings.get("fit_model_path") == str(model)
        _planned(qtbot, page)
    finally:
        library.close()


def test_a_model_too_slow_to_estimate_in_a_frame_is_estimated_off_the_gui_thread(
    qtbot: QtBot, services: Services, moe30: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services.fit.sync_estimate_budget_ms = -1.0  # every one is slow
    page = _open(qtbot, services, moe30)
    for ctx in (8192, 12288, 16384):  # moves faster than the worker: the newest one wins
        page.controls.context.setValue(ctx)
    plan = FitPlan(ctx=16384, gpus=(0,), gpu_memory_mib=(GPU_96GB,))
    gpu = estimate_llamacpp(read_gguf_header(moe30), plan).devices[0]
    qtbot.waitUntil(lambda: _legend(page)["KV cache"] == round(gpu.kv_mib))
    assert f"{gpu.total_mib:,.0f} MiB of 98,304 MiB" in page.gpu_bars[0].status_label.text()
    _planned(qtbot, page)


def test_a_page_built_again_shows_the_session_as_it_was_left(
    qtbot: QtBot, services: Services, moe30: Path
) -> None:
    first = FitPage(services)
    first.gpu_edit.setText("98304")
    first.gpu_edit.editingFinished.emit()
    first.path_edit.setText(str(moe30))
    QTest.keyClick(first.path_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: first.estimate is not None)
    first.controls.context.setValue(8192)
    shiboken6.delete(first)  # the page goes (a window closed); the session stays

    again = FitPage(services)
    qtbot.add_widget(again)
    assert again.path_edit.text() == str(moe30)
    assert again.gpu_edit.text() == "98304"
    assert again.controls.context.value() == 8192
    plan = FitPlan(ctx=8192, gpus=(0,), gpu_memory_mib=(GPU_96GB,))
    gpu = estimate_llamacpp(read_gguf_header(moe30), plan).devices[0]
    # under load the estimate runs on the task runner: it may land after the page is back
    qtbot.waitUntil(lambda: _legend(again).get("KV cache") == round(gpu.kv_mib))
    again.controls.context.setValue(16384)  # the session no longer talks to the old page
    qtbot.waitUntil(lambda: again.current_plan().ctx == 16384 and again.estimate is not None)
    _planned(qtbot, again)


def _type_context(page: FitPage, text: str) -> None:
    spin = page.controls.context.spin
    spin.setFocus()
    spin.selectAll()
    QTest.keyClicks(spin, text)
    QTest.keyClick(spin, Qt.Key.Key_Return)


def test_the_context_box_keeps_what_is_typed_or_says_why_it_capped_it(
    qtbot: QtBot, services: Services, moe30: Path
) -> None:
    page = _open(qtbot, services, moe30)
    trained = model_info(read_gguf_header(moe30)).n_ctx_train
    cap = page.controls.context.spin.maximum()
    assert cap == 4 * trained  # the most Fit plans for this model
    _type_context(page, "150000")
    assert page.controls.context.spin.text() == "150000"  # kept as typed
    assert page.current_plan().ctx == 150000
    assert not page.controls.context_cap_label.isVisible()

    _type_context(page, "200000")
    assert page.controls.context.spin.text() == f"{cap}"
    assert page.current_plan().ctx == cap
    label = page.controls.context_cap_label
    assert label.isVisible()
    assert label.text() == (f"200,000 capped at {cap:,}: the most this model can use: its "
                            f"trained {trained:,} with YaRN x4")
    _type_context(page, "8192")  # back within the range: the reason goes
    assert page.current_plan().ctx == 8192
    assert not label.isVisible()
    _planned(qtbot, page)


def test_gpu_memory_the_page_cannot_read_is_said_beside_the_field(
    qtbot: QtBot, services: Services
) -> None:
    page = FitPage(services)
    qtbot.add_widget(page)
    page.resize(1200, 820)
    page.show()
    page.gpu_edit.setFocus()
    page.gpu_edit.clear()
    QTest.keyClicks(page.gpu_edit, "ninety-six")
    QTest.keyClick(page.gpu_edit, Qt.Key.Key_Return)
    assert page.gpu_problem_label.isVisible()  # no model yet: said all the same
    assert page.gpu_problem_label.text() == page.session.capacities.problem
    assert "ninety-six" in page.gpu_problem_label.text()
    page.gpu_edit.clear()
    QTest.keyClicks(page.gpu_edit, "98304")
    QTest.keyClick(page.gpu_edit, Qt.Key.Key_Return)
    assert not page.gpu_problem_label.isVisible()
    assert page.session.capacities.gpu_mib == (98304.0,)


def _on_host(services: Services, host: HostMemory) -> None:
    """The Fit session of these services reads `host` as this machine's RAM (the monitor,
    which would say the real machine's, is stopped)."""
    services.monitor.stop()
    session = FitSession(runner=services.tasks.run, settings=services.settings,
                         data_dir=services.paths.data, read_host_memory=lambda: host)
    services.make_fit = lambda: session


def test_a_host_over_budget_turns_the_headline_red_and_names_the_host(
    qtbot: QtBot, services: Services, moe30: Path
) -> None:
    _on_host(services, HostMemory(total_mib=4096.0, available_mib=3000.0))
    page = _open(qtbot, services, moe30, gpu_memory="24G")
    assert page.fit_label.text().startswith("Fits: ")  # experts on the GPU: the host has room
    page.controls.n_cpu_moe.setValue(4)  # every expert in RAM
    qtbot.waitUntil(lambda: page.current_plan().n_cpu_moe == 4 and page.estimate is not None
                    and page.estimate.host.total_mib > 4096, timeout=10_000)
    need = page.estimate.host.total_mib  # type: ignore[union-attr]  # waited for above
    assert page.fit_label.text() == (
        f"Does not fit: the host needs {need:,.0f} MiB of 4,096 MiB RAM, "
        "3,000 MiB available now"
    )
    assert "#b91c1c" in page.fit_label.styleSheet()
    assert page.gpu_bars[0].status_label.text().endswith(" free")  # the GPU has room
    host = page.host_bar.status_label.text()
    assert host.startswith(f"needs {need:,.0f} MiB of 4,096 MiB")
    assert "#b91c1c" in page.host_bar.status_label.styleSheet()
    assert "read from disk at every token" in page.host_bar.legend_label.text()
    _planned(qtbot, page)
    advice = [page.advice_list.item(i).text() for i in range(page.advice_list.count())]
    assert any("--n-cpu-moe 0" in line and line.endswith("then fits") for line in advice)
    assert "No context fits" in page.max_context_label.text()


def test_a_cpu_plan_speaks_of_the_host_not_of_gpus(
    qtbot: QtBot, services: Services, moe30: Path
) -> None:
    _on_host(services, HostMemory(total_mib=65536.0, available_mib=60000.0))
    page = _open(qtbot, services, moe30, gpu_memory="")
    need = page.estimate.host.total_mib  # type: ignore[union-attr]  # _open waited for it
    assert page.fit_label.text() == (
        f"CPU only. Fits: the host needs {need:,.0f} MiB of 65,536 MiB RAM, "
        "60,000 MiB available now"
    )
    assert "GPU" not in page.measure_label.text()
    _planned(qtbot, page)
    assert "in the host's RAM" in page.max_context_label.text()


def test_a_typed_context_past_the_trained_one_shows_the_yarn_note_and_flags(
    qtbot: QtBot, services: Services, moe30: Path
) -> None:
    page = _open(qtbot, services, moe30)
    assert not page.context_note_label.isVisible()
    _type_context(page, "90000")
    assert page.current_plan().ctx == 90000
    note = page.context_note_label
    assert note.isVisible()
    assert "beyond the trained 40,960" in note.text()
    assert "YaRN" in note.text()
    assert "--rope-scaling yarn --rope-scale 2.2 --yarn-orig-ctx 40960" in note.text()
    _type_context(page, "32768")  # within the trained context: nothing to add
    assert not note.isVisible()
    _planned(qtbot, page)
