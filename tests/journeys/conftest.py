"""What every journey test needs: the app as a new user starts it, on real parts.

A journey starts Rigdeck from a fresh RIGDECK_HOME whose only settings are the machine's
(the test Docker engine has no registry and no bridge network: the locally built image and
host networking; where llama-server is), then drives the real window — the one
`RigdeckApp` builds — through its visible widgets: clicks, typing, the dialogs it opens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QFileDialog, QLineEdit, QWidget
from pytestqt.qtbot import QtBot

from app.paths import AppPaths
from app.runtime.setup import build_service
from tests.realparts.docker_engine import DockerEngine
from tests.realparts.leak_guard import LeakGuard
from ui.application import RigdeckApp
from ui.pages.registry import PAGE_NAMES

WAIT_MS = 30_000
READY_MS = 180_000
LaunchApp = Callable[[], RigdeckApp]


@pytest.fixture
def machine(app_paths: AppPaths, *, docker_engine: DockerEngine, docker_client: object,
            llama_server_image: str, llama_server_binary: Path,
            monkeypatch: pytest.MonkeyPatch) -> AppPaths:
    """A fresh home with only what this machine needs: the test engine as the local
    Docker host, its image, host networking, and where llama-server is."""
    del docker_client  # requested so that the leak guard watches the engine's containers
    monkeypatch.setenv("DOCKER_HOST", docker_engine.base_url)
    for store in ("HF_HUB_CACHE", "OLLAMA_MODELS", "LMSTUDIO_MODELS"):  # this user has none
        monkeypatch.setenv(store, str(app_paths.cache / f"no-{store.lower()}"))
    app_paths.config.mkdir(parents=True, exist_ok=True)
    app_paths.settings_file.write_text(
        f'llamacpp_image = "{llama_server_image}"\nlocal_host_network = true\n'
        f'llama_server_path = "{llama_server_binary}"\n', encoding="utf-8")
    return app_paths


@pytest.fixture
def launch_app(qtbot: QtBot, machine: AppPaths, monkeypatch: pytest.MonkeyPatch,
               leak_guard: LeakGuard) -> Iterator[LaunchApp]:
    """Start Rigdeck as its entry point does (each call a new run of the app, on the same
    home); every run still open at the end is quit, and every backend stopped."""
    del leak_guard  # requested so that its labels and clean-up check apply
    qapp = QApplication.instance()
    assert isinstance(qapp, QApplication)
    monkeypatch.setattr(qapp, "quit", lambda: None)  # pytest-qt owns the event loop
    runs: list[RigdeckApp] = []
    already = _running(machine, stop=False)  # another session's, on a shared engine

    def launch() -> RigdeckApp:
        app = RigdeckApp(qapp, machine)
        qtbot.add_widget(app.window)
        app.window.resize(1200, 800)
        app.show_window()
        qtbot.wait_exposed(app.window)
        runs.append(app)
        return app

    yield launch
    for app in runs:
        app.quit()
    _running(machine, stop=True, keep=already)  # what the runs left, whatever happened


def _running(home: AppPaths, *, stop: bool, keep: frozenset[str] = frozenset()
             ) -> frozenset[str]:
    """The refs of the Rigdeck backends running now; with `stop`, stop those not in
    `keep`."""
    service = build_service(home)
    try:
        found = [b for b in service.refresh() if b.managed]
        for backend in found:
            if stop and backend.ref not in keep:
                service.stop(backend, timeout_s=5)
        return frozenset(b.ref for b in found)
    finally:
        service.close()


def open_page(app: RigdeckApp, name: str) -> QWidget:
    """Click the page's entry in the navigation rail; the page shown."""
    rail = app.window.rail
    rail.setCurrentItem(rail.item(PAGE_NAMES.index(name)))
    page = app.window.stack.currentWidget()
    assert page is app.window.pages[name]
    return page


def choose_folder_when_asked(qtbot: QtBot, folder: Path) -> None:
    """Answer the next folder picker the app opens with `folder`, as a user would."""
    def answer() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, QFileDialog):
            QTimer.singleShot(50, answer)
            return
        dialog.setDirectory(str(folder.parent))
        name = dialog.findChild(QLineEdit, "fileNameEdit")
        assert isinstance(name, QLineEdit)
        QTest.keyClicks(name, folder.name)
        dialog.accept()

    QTimer.singleShot(50, answer)
