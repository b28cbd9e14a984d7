"""A backend that dies is told to its user: started from the Backends page's Start dialog as
a local process (a real llama-server and a tiny model), killed from outside with SIGKILL
on the pid its card shows, its card turns failed with "killed (SIGKILL)" and the "backend
died" alert reaches the user once, naming the backend and how it died."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.paths import AppPaths
from app.runtime.backend import BackendState
from tests.realparts.leak_guard import LeakGuard
from ui.application import RigdeckApp
from ui.backend_card import BackendCard
from ui.notifier import Level
from ui.pages.backends_page import BackendsPage
from ui.pages.registry import PAGE_NAMES

WAIT_MS = 20_000
READY_MS = 180_000
KILLED = "the server was killed (SIGKILL) while running"


@pytest.fixture
def rigdeck(qtbot: QtBot, *, app_paths: AppPaths, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch, llama_server_binary: Path,
            leak_guard: LeakGuard) -> Iterator[RigdeckApp]:
    """The whole app (services, window, tray monitor) with llama-server set in Settings and
    no Docker; quit after the test, before the leak guard looks."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'none.sock'}")
    app_paths.config.mkdir(parents=True, exist_ok=True)
    app_paths.settings_file.write_text(f'llama_server_path = "{llama_server_binary}"\n',
                                       encoding="utf-8")
    qapp = QApplication.instance()
    assert isinstance(qapp, QApplication)
    monkeypatch.setattr(qapp, "quit", lambda: None)  # the test's event loop goes on
    quit_on_last = qapp.quitOnLastWindowClosed()
    app = RigdeckApp(qapp, app_paths)
    qtbot.add_widget(app.window)
    app.window.resize(1200, 760)
    app.window.show()
    qtbot.wait_exposed(app.window)
    try:
        yield app
    finally:
        app.quit()
        qapp.setQuitOnLastWindowClosed(quit_on_last)


def _card(page: BackendsPage, name: str) -> BackendCard | None:
    return next((c for c in page.cards if c.backend.name == name), None)


def _wait_state(qtbot: QtBot, page: BackendsPage, name: str, state: BackendState) -> BackendCard:
    def shown() -> bool:
        card = _card(page, name)
        return card is not None and f"{state}" in card.state_label.text()

    qtbot.waitUntil(shown, timeout=READY_MS)
    card = _card(page, name)
    assert card is not None
    return card


def test_a_killed_backend_shows_killed_on_its_card_and_alerts_once(
        qtbot: QtBot, rigdeck: RigdeckApp, tiny_qwen3_gguf: Path, leak_guard: LeakGuard) -> None:
    window = rigdeck.window
    window.rail.setCurrentRow(PAGE_NAMES.index("backends"))  # the user clicks "Backends"
    page = window.pages["backends"]
    assert isinstance(page, BackendsPage)
    qtbot.waitUntil(lambda: "processes" in page.panels, timeout=WAIT_MS)  # llama-server found

    page.start_button.click()
    dialog = page.start_dialog
    assert dialog is not None
    assert dialog.isVisible()
    dialog.model_edit.setText(str(tiny_qwen3_gguf))
    dialog.name_edit.setText("tiny")
    dialog.context_spin.setValue(1024)
    dialog.port_spin.setValue(leak_guard.free_port())
    dialog.host_combo.setCurrentText("processes")
    dialog.accept_button.click()
    card = _wait_state(qtbot, page, "tiny", BackendState.READY)
    assert not card.reason_label.isVisible()
    match = re.search(r"pid (\d+)", card.details_label.text())
    assert match is not None, card.details_label.text()
    pid = int(match.group(1))

    os.kill(pid, signal.SIGKILL)  # from outside: the OOM killer, a user's `kill -9`

    card = _wait_state(qtbot, page, "tiny", BackendState.FAILED)
    assert card.reason_label.isVisible()
    assert card.reason_label.text() == KILLED
    assert card.stop_button.text() == "Remove"

    notifier = rigdeck.services.notifier
    told = f"Backend tiny died: {KILLED}"
    qtbot.waitUntil(lambda: any(n.text == told for n in notifier.history), timeout=WAIT_MS)
    assert [n.level for n in notifier.history if n.text == told] == [Level.WARNING]
    assert window.banner.isVisible()
    assert told in [window.banner.label.text(), *(n.text for n in notifier.history[-3:])]
    for _ in range(2):  # later refreshes still see it failed: no second alert
        with qtbot.waitSignal(rigdeck.services.backends.updated, timeout=WAIT_MS):
            pass
    alerts = [(a.rule, a.subject, a.title, a.message) for a in rigdeck.tray_monitor.shown_alerts
              if a.rule.startswith("backend_")]  # the host's own alerts may come too
    assert alerts == [("backend_died", "tiny", "Backend tiny died", KILLED)]
    assert [n for n in notifier.history if n.level is Level.ERROR] == []

    card.stop_button.click()  # Remove: its pid file and log go, the card too
    qtbot.waitUntil(lambda: _card(page, "tiny") is None, timeout=WAIT_MS)
    assert [n.text for n in notifier.history].count(told) == 1  # removing is no death
