"""The Bench page runs a small matrix against the real llama-server (local processes,
llama-perplexity beside it): a progress bar per variant, then the table and the plots show
what the run measured. With RIGDECK_SCREENSHOTS=DIR the page is saved as bench-page.png."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QTableWidgetItem
from pytestqt.qtbot import QtBot

from app.bench.results import BenchRun
from app.bench.service import Bench
from app.bench.store import BenchStore
from app.fit.calibration import CalibrationStore
from app.runtime.backends_service import BackendsService
from app.runtime.hosts import PROCESSES, processes_host
from app.runtime.keys import KeyKeeper
from app.secrets import SecretStore
from tests.realparts.fixtures import TinyGgufFactory
from tests.realparts.leak_guard import LeakGuard
from ui.bench.feed import BenchFeed
from ui.notifier import Notifier
from ui.pages.bench_page import BenchPage
from ui.tasks import TaskRunner

pytestmark = pytest.mark.integration


@pytest.fixture
def feed(llama_server_binary: Path, tmp_path: Path) -> Iterator[BenchFeed]:
    service = BackendsService([processes_host()], KeyKeeper(SecretStore()),
                              run_dir=tmp_path / "run", llama_server_path=str(llama_server_binary),
                              calibration=CalibrationStore(tmp_path / "data"))
    tasks = TaskRunner(Notifier(str(tmp_path / "rigdeck.log")))
    made = BenchFeed(Bench(service, BenchStore(tmp_path / "data" / "bench.sqlite3")), tasks)
    yield made
    made.close()
    tasks.shutdown()
    service.close()


def cell(item: QTableWidgetItem | None) -> str:
    assert item is not None
    return item.text()


def test_a_small_matrix_run_from_the_page_fills_the_table_and_the_plots(
        qtbot: QtBot, feed: BenchFeed, tiny_gguf: TinyGgufFactory,
        leak_guard: LeakGuard) -> None:
    model = tiny_gguf(arch="qwen3moe", layers=2, experts=8, experts_used=2)
    page = BenchPage(feed, models=[str(model)], hosts=[PROCESSES])
    qtbot.add_widget(page)
    page.resize(1400, 900)
    page.show()
    page.matrix_edit.setPlainText("experts=2,8")
    assert page.matrix_label.text() == "2 variants"
    page.ctx_spin.setValue(1024)
    page.reps_spin.setValue(2)
    page.prompt_spin.setValue(48)
    page.answer_spin.setValue(8)

    with qtbot.wait_signal(feed.finished, timeout=180_000) as ended:
        page.start_button.click()
        assert not page.start_button.isEnabled()
        assert page.cancel_button.isEnabled()
    run = ended.args[0]
    assert isinstance(run, BenchRun)

    assert run.state == "done", [(v.label, v.error) for v in run.variants]
    assert [bar.format() for bar in page.bars] == ["done", "done"]
    assert page.table.rowCount() == 2
    headers = [cell(page.table.horizontalHeaderItem(c)) for c in range(page.table.columnCount())]
    decode_column = headers.index("decode tok/s")
    shown = [cell(page.table.item(r, decode_column)) for r in range(2)]
    assert [cell(page.table.item(r, 0)) for r in range(2)] == ["experts=2", "experts=8"]
    assert all(float(text.split()[0]) > 0 for text in shown)
    drawn = page.plots.data()
    assert len(drawn["decode"]) == 2
    assert drawn["decode"] == pytest.approx(
        [v.decode.median for v in run.variants if v.decode], rel=1e-6)
    assert all(p > 50 for p in drawn["perplexity"])  # random weights: large
    assert drawn["kv"][0] > 0  # the engine's KV buffer, stacked on the memory bars
    assert page.plots.labels == ["experts=2", "experts=8"]
    assert page.runs_combo.currentData() == run.id
    assert page.start_button.isEnabled()

    folder = os.environ.get("RIGDECK_SCREENSHOTS")
    if folder:
        assert page.grab().save(str(Path(folder) / "bench-page.png"))
