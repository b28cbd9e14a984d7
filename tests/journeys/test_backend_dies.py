"""A backend that dies is told to its user: started from the Backends page's Start dialog as
a local process (a real llama-server and a tiny model), killed from outside with SIGKILL
on the pid its card shows, its card turns failed with "killed (SIGKILL)" and the "backend
died" alert reaches the user once, naming the backend and how it died."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.runtime.backend import BackendState
from tests.journeys.conftest import WAIT_MS, LaunchApp, open_page
from tests.journeys.steps import card_of, wait_state
from tests.realparts.leak_guard import LeakGuard
from ui.notifier import Level
from ui.pages.backends_page import BackendsPage

KILLED = "the server was killed (SIGKILL) while running"


@pytest.mark.journey
def test_a_killed_backend_shows_killed_on_its_card_and_alerts_once(
        qtbot: QtBot, launch_app: LaunchApp, tiny_qwen3_gguf: Path, leak_guard: LeakGuard
        ) -> None:
    rigdeck = launch_app()
    window = rigdeck.window
    page = open_page(rigdeck, "backends")  # the user clicks "Backends"
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
    card = wait_state(qtbot, page, "tiny", BackendState.READY)
    assert not card.reason_label.isVisible()
    match = re.search(r"pid (\d+)", card.details_label.text())
    assert match is not None, card.details_label.text()
    pid = int(match.group(1))

    os.kill(pid, signal.SIGKILL)  # from outside: the OOM killer, a user's `kill -9`

    card = wait_state(qtbot, page, "tiny", BackendState.FAILED)
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
    qtbot.waitUntil(lambda: card_of(page, "tiny") is None, timeout=WAIT_MS)
    assert [n.text for n in notifier.history].count(told) == 1  # removing is no death
