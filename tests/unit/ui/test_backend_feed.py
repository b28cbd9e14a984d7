"""The backends feed hands the service's `died` event, emitted on a worker thread, to the
GUI thread, where the alert and the widgets may be touched."""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QThread
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.runtime.backend import Backend, BackendState
from app.runtime.backends_service import BackendsService
from app.runtime.hosts import processes_host
from app.runtime.keys import KeyKeeper
from app.secrets import SecretStore
from ui.backend_feed import BackendFeed
from ui.notifier import Notifier
from ui.tasks import TaskRunner


def test_a_death_seen_on_a_worker_thread_arrives_on_the_gui_thread(
        qtbot: QtBot, tmp_path: Path) -> None:
    service = BackendsService([processes_host()], KeyKeeper(SecretStore()),
                              run_dir=tmp_path / "run")
    tasks = TaskRunner(Notifier("log"))
    feed = BackendFeed(service, tasks)
    backend = Backend(name="tiny", host="processes", engine="llamacpp", model="/m/tiny.gguf",
                      port=8080, endpoint_host="127.0.0.1", ref="4242",
                      state=BackendState.FAILED, reason="the server was killed (SIGKILL)")
    arrived: list[tuple[Backend, bool]] = []

    def on_died(died: Backend) -> None:
        app = QApplication.instance()
        assert app is not None
        arrived.append((died, QThread.currentThread() is app.thread()))

    feed.died.connect(on_died)
    worker = threading.Thread(target=service.died.emit, args=(backend,), name="refresh")
    try:
        with qtbot.waitSignal(feed.died, timeout=5000):
            worker.start()
            worker.join()
    finally:
        feed.stop()
        tasks.shutdown()
        feed.close()
    assert arrived == [(backend, True)]
