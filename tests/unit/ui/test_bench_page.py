"""The Bench page over kept runs: the newest is shown, "compare with" offers another run
than the one shown, and the plots' legend sits off the bars."""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from app.bench.results import BenchRun, BenchSettings, VariantResult
from ui.pages.bench_page import BenchPage, bench_page
from ui.services import Services


def _keep(services: Services, model: str) -> int:
    variants = [VariantResult(i, f"kv={kv}", {"kv": kv}, state="done",
                              decode_tps=[30.0 + i], prompt_tps=[400.0 + i],
                              buffers={"model:CPU_Mapped": 240.0, "kv:CPU": 6.0 + i,
                                       "compute:CPU": 300.0},
                              estimate_mib=560.0, perplexity=20.0 + i)
                for i, kv in enumerate(("f16", "q8_0", "q4_0", "f32"))]
    store = services.bench.bench.store
    run = store.create(BenchRun(id=0, created=float(len(store.runs()) + 1), model=model,
                                host="processes", base_plan_json="{}",
                                settings=BenchSettings(), variants=variants))
    for variant in variants:
        store.save_variant(run.id, variant)
    run.state = "done"
    store.finish(run)
    return run.id


def test_compare_with_defaults_to_another_run_than_the_one_shown(
        qtbot: QtBot, services: Services) -> None:
    first = _keep(services, "/m/gemma.gguf")
    second = _keep(services, "/m/gemma.gguf")
    page = BenchPage(services.bench, models=[], hosts=["processes"])
    qtbot.add_widget(page)

    assert page.runs_combo.currentData() == second  # newest first, and shown
    assert page.run is not None
    assert page.run.id == second
    assert page.compare_combo.currentData() == first
    page.runs_combo.setCurrentIndex(page.runs_combo.findData(first))
    page.runs_combo.activated.emit(page.runs_combo.currentIndex())
    assert page.compare_combo.currentData() == second
    assert page.compare_button.isEnabled()


def test_with_one_run_there_is_nothing_to_compare(qtbot: QtBot, services: Services) -> None:
    _keep(services, "/m/gemma.gguf")
    page = BenchPage(services.bench, models=[], hosts=["processes"])
    qtbot.add_widget(page)

    assert not page.compare_button.isEnabled()


def test_the_memory_legend_is_off_the_bars(qtbot: QtBot, services: Services) -> None:
    _keep(services, "/m/gemma.gguf")
    page = BenchPage(services.bench, models=[], hosts=["processes"])
    qtbot.add_widget(page)
    page.resize(1400, 900)
    page.show()
    qtbot.waitExposed(page)

    plots = page.plots
    assert plots.data()["kv"] == [6.0, 7.0, 8.0, 9.0]
    assert [label.text for _sample, label in plots.legend.items] == [
        "model", "kv", "compute", "fit estimate"]
    bars = plots.memory.getViewBox().sceneBoundingRect()
    assert not plots.legend.sceneBoundingRect().intersects(bars)


def test_the_page_starts_from_the_bench_settings(qtbot: QtBot, services: Services,
                                                 tmp_path: Path) -> None:
    text = tmp_path / "novel.txt"
    text.write_text("It was a dark and stormy night.", encoding="utf-8")
    services.settings.set("bench_repetitions", 7)
    services.settings.set("bench_text", str(text))
    page = bench_page(services, None)
    qtbot.add_widget(page)

    assert isinstance(page, BenchPage)
    assert page.reps_spin.value() == 7
    page.model_combo.setEditText("/m/gemma.gguf")
    assert page.request().settings.text == str(text)
