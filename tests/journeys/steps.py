"""A user's steps through the window, shared by the journeys: each clicks and types what a
person would, and waits for what they would see."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from app.runtime.backend import BackendState
from tests.journeys.conftest import READY_MS, WAIT_MS, choose_folder_when_asked, open_page
from ui.application import RigdeckApp
from ui.backend_card import BackendCard
from ui.backend_start_dialog import BackendStartDialog
from ui.pages.backends_page import BackendsPage
from ui.pages.chat_page import ChatPage
from ui.pages.fit_page import FitPage
from ui.pages.library_page import LibraryPage
from ui.pages.settings_page import SettingsPage


def card_of(page: BackendsPage, name: str) -> BackendCard | None:
    return next((c for c in page.cards if c.backend.name == name), None)


def chat_page(app: RigdeckApp) -> ChatPage:
    page = open_page(app, "chat")
    assert isinstance(page, ChatPage)
    return page


def ask(qtbot: QtBot, chat: ChatPage, text: str) -> str:
    """Type `text` into the chat box, press Enter, wait for the streamed answer."""
    with qtbot.wait_signal(chat.controller.finished, timeout=120_000) as finished:
        QTest.keyClicks(chat.input, text)
        QTest.keyClick(chat.input, Qt.Key.Key_Return)
    message = finished.args[0].message
    assert message.state == "done", message.error
    shown = chat.message_list.widgets[-1]
    assert shown.answer.markdown == message.content
    return str(message.content)


def add_model_folder(qtbot: QtBot, app: RigdeckApp, folder: Path) -> None:
    """Settings → Add folder… → the folder picker answered with `folder`."""
    settings = open_page(app, "settings")
    assert isinstance(settings, SettingsPage)
    choose_folder_when_asked(qtbot, folder)
    settings.add_folder_button.click()
    assert str(folder) in [settings.folders_list.item(i).text()
                           for i in range(settings.folders_list.count())]


def start_from_fit(qtbot: QtBot, app: RigdeckApp, models: Path) -> str:
    """Settings → add the folder; Library → the model → Fit…; Fit → Start with this plan;
    the Start dialog → Start. The backend's name once it is ready."""
    add_model_folder(qtbot, app, models)
    library = open_page(app, "library")
    assert isinstance(library, LibraryPage)
    qtbot.waitUntil(lambda: library.models_proxy.rowCount() == 1, timeout=WAIT_MS)
    library.models_view.selectRow(0)
    assert library.details.fit_button.isEnabled()
    library.details.fit_button.click()

    fit = app.window.stack.currentWidget()
    assert isinstance(fit, FitPage)
    qtbot.waitUntil(lambda: fit.start_button.isEnabled() and bool(fit.fit_label.text()),
                    timeout=WAIT_MS)
    fit.start_button.click()

    backends = app.window.stack.currentWidget()
    assert isinstance(backends, BackendsPage)
    dialog = backends.start_dialog
    assert dialog is not None
    qtbot.waitUntil(dialog.isVisible, timeout=WAIT_MS)
    assert dialog.model_edit.text().endswith(".gguf")
    dialog.host_combo.setCurrentText("local")  # the Docker engine
    name = dialog.plan().backend_name
    dialog.accept_button.click()
    wait_ready(qtbot, backends, name)
    return name


def wait_ready(qtbot: QtBot, backends: BackendsPage, name: str, *,
               replacing: str | None = None) -> BackendCard:
    """Wait until the backend's card says ready (a new one, where `replacing` names the
    container or process it replaces); the card."""
    return wait_state(qtbot, backends, name, BackendState.READY, replacing=replacing)


def wait_state(qtbot: QtBot, backends: BackendsPage, name: str, state: BackendState, *,
               replacing: str | None = None) -> BackendCard:
    """Wait until the backend's card shows `state`; the card.

    A backend that fails meanwhile (when `state` is not failed), or one still not there
    after READY_MS, fails the test with its state, reason and log tail, read before the
    test's clean-up removes the container and its log with it.
    """
    def current() -> BackendCard | None:
        card = card_of(backends, name)
        return card if card is not None and card.backend.ref != replacing else None

    def done() -> bool:
        card = current()
        return card is not None and (str(state) in card.state_label.text() or (
            state is not BackendState.FAILED and card.backend.state is BackendState.FAILED))

    with contextlib.suppress(qtbot.TimeoutError):  # said below, with the backend's log
        qtbot.waitUntil(done, timeout=READY_MS)
    card = current()
    if card is None or str(state) not in card.state_label.text():
        pytest.fail(f"backend {name} did not turn {state}: {_story_of(backends, card)}",
                    pytrace=False)
    return card


def _story_of(backends: BackendsPage, card: BackendCard | None) -> str:
    """What the user could read of a backend that went wrong: its card and its log."""
    if card is None:
        return "no card"
    backend = card.backend
    service = backends.services.backends.service
    kept = service.get(backend.host, backend.name)
    if kept is None:
        known = "the service no longer knows it"
    elif kept is backend:
        known = "the service's own"
    else:  # the card would never be updated
        known = f"not the service's, which is {kept.state}"
    try:
        tail = service.log_tail(backend, 60)
    except Exception as exc:  # the story is for a failure message
        tail = f"(its log could not be read: {exc})"
    return (f"the card says {backend.shown_state!r} ({known}) on {backend.host}, port "
            f"{backend.port}, reason {backend.reason!r}; its log:\n{tail}")


def start_dialog_from_library(qtbot: QtBot, app: RigdeckApp
                              ) -> tuple[BackendsPage, BackendStartDialog]:
    """Library → the (only) model → Start…: the Backends page and its Start dialog."""
    library = open_page(app, "library")
    assert isinstance(library, LibraryPage)
    qtbot.waitUntil(lambda: library.models_proxy.rowCount() == 1, timeout=WAIT_MS)
    library.models_view.selectRow(0)
    library.details.start_button.click()
    backends = app.window.stack.currentWidget()
    assert isinstance(backends, BackendsPage)
    dialog = backends.start_dialog
    assert dialog is not None
    return backends, dialog


def start_from_library(qtbot: QtBot, app: RigdeckApp, host: str, context: int) -> BackendCard:
    """Library → the (only) model → Start… → the dialog on `host` → Start; its card once
    it is ready."""
    backends, dialog = start_dialog_from_library(qtbot, app)
    dialog.host_combo.setCurrentText(host)
    dialog.context_spin.setValue(context)
    name = dialog.plan().backend_name
    dialog.accept_button.click()
    return wait_ready(qtbot, backends, name)


SHOTS_ENV = "RIGDECK_JOURNEY_SHOTS"


def snapshot(widget: QWidget, name: str) -> None:
    """Save what the user sees of `widget` as NAME.png in $RIGDECK_JOURNEY_SHOTS, when set
    (the screenshots of the README and of a change's review come from the journeys)."""
    folder = os.environ.get(SHOTS_ENV)
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        assert widget.grab().save(str(Path(folder) / f"{name}.png"))


def pick_backend(qtbot: QtBot, chat: ChatPage, name: str) -> None:
    """Choose backend `name` in the Chat page's Backend box; wait until it is ready."""
    box = chat.endpoint_box
    qtbot.waitUntil(lambda: box.findData(name) >= 0, timeout=WAIT_MS)
    index = box.findData(name)
    box.setCurrentIndex(index)
    box.activated.emit(index)
    qtbot.waitUntil(lambda: chat.status_label.text().startswith("Ready"), timeout=WAIT_MS)
    assert chat.target is not None
    assert chat.target.name == name
