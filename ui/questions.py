"""Yes/No questions that do not block (the answer arrives as a callback), and the one
that guards a Stop while a chat reply streams from the backend."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QMessageBox, QWidget

from app.runtime.backend import Backend
from ui.services import Services


def ask(parent: QWidget | None, title: str, text: str, on_yes: Callable[[], None], *,
        default_yes: bool = True) -> QMessageBox:
    """Open the question (window-modal over `parent`, or on its own when the window is
    hidden, as from the tray); `on_yes` runs only on Yes. The box, for tests to answer."""
    buttons = QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No
    box = QMessageBox(QMessageBox.Icon.Question, title, text, buttons, parent)
    box.setDefaultButton(QMessageBox.StandardButton.Yes if default_yes
                         else QMessageBox.StandardButton.No)

    def answered(result: int) -> None:
        if result == QMessageBox.StandardButton.Yes.value:
            on_yes()

    box.finished.connect(answered)
    box.open()
    return box


def stop_asking_first(services: Services, backend: Backend, parent: QWidget | None, *,
                      keep: bool = False) -> QMessageBox | None:
    """Stop `backend` — at once, or after a Yes while the Chat page streams a reply from
    it (the Backends page's Stop and the tray's). The question, when one was asked."""
    def stop() -> None:
        services.backends.stop_backend(backend, keep=keep)

    if backend.state.is_live and services.chat.streaming_from(backend):
        return ask(parent, f"Stop {backend.name}?",
                   f"A chat reply is streaming from {backend.name}. Stop it anyway?", stop,
                   default_yes=False)
    stop()
    return None
