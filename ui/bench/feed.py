"""BenchFeed: the Qt-free `Bench` seen from the GUI thread.

A run blocks, so it goes to the task runner; the service emits its psygnal events on that
worker thread and this adapter re-emits each as a Qt signal, which Qt queues onto the GUI
thread. The page and the tray hold the feed, never the service's backends or files.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, wait
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.bench.results import BenchRun, VariantResult
from app.bench.service import Bench, BenchRequest
from app.bench.store import RunSummary
from ui.tasks import TaskRunner

log = logging.getLogger(__name__)


class BenchFeed(QObject):
    """Owns the app's `Bench`; runs it off the GUI thread and emits on the GUI thread."""

    started = Signal(object)
    """A BenchRun that begins."""
    progress = Signal(int, str, float)
    """(variant index, what it does, fraction of that variant done)."""
    variant_finished = Signal(object)
    finished = Signal(object)
    """The BenchRun at its end (done, failed or cancelled)."""
    failed = Signal(str)
    """A run that could not start (a user error: the message)."""

    def __init__(self, bench: Bench, tasks: TaskRunner) -> None:
        super().__init__()
        self.bench = bench
        self._tasks = tasks
        self._run: Future[BenchRun] | None = None
        bench.started.connect(self._on_bench_started)
        bench.progress.connect(self._on_bench_progress)
        bench.variant_finished.connect(self._on_bench_variant_finished)
        bench.finished.connect(self._on_bench_finished)

    @property
    def running(self) -> bool:
        return self._run is not None and not self._run.done()

    def start(self, request: BenchRequest) -> None:
        """Run `request` on the task runner; `failed` says why one did not start."""
        self._run = self._tasks.run(lambda: self.bench.run(request), description="Bench run",
                                    on_error=self._on_run_error)

    def cancel(self) -> None:
        self.bench.cancel()

    def hosts(self) -> list[str]:
        """The hosts a run may go to (the local engine first)."""
        return list(self.bench.backends.hosts)

    def runs(self) -> list[RunSummary]:
        return self.bench.runs()

    def load(self, run_id: int) -> BenchRun:
        return self.bench.load(run_id)

    def export(self, run_id: int, path: Path) -> str:
        return self.bench.export(run_id, path)

    def compare(self, a: int, b: int) -> tuple[list[str], list[list[str]]]:
        return self.bench.compare(a, b)

    def _on_run_error(self, error: BaseException) -> None:
        log.info("bench run did not start: %s", error)
        self.failed.emit(str(error))

    # ------------------------------------------------------------ from the worker thread
    def _on_bench_started(self, run: BenchRun) -> None:
        self.started.emit(run)

    def _on_bench_progress(self, index: int, phase: str, fraction: float) -> None:
        self.progress.emit(index, phase, fraction)

    def _on_bench_variant_finished(self, result: VariantResult) -> None:
        self.variant_finished.emit(result)

    def _on_bench_finished(self, run: BenchRun) -> None:
        self.finished.emit(run)

    def close(self) -> None:
        """Cancel a run in progress, wait for it (its backend is stopped), close the store."""
        if self.running:
            self.bench.cancel()
        if self._run is not None:
            wait([self._run])
        for signal, slot in ((self.bench.started, self._on_bench_started),
                             (self.bench.progress, self._on_bench_progress),
                             (self.bench.variant_finished, self._on_bench_variant_finished),
                             (self.bench.finished, self._on_bench_finished)):
            signal.disconnect(slot)
        self.bench.close()
