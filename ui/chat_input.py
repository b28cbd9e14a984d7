"""The message box: Enter sends, Shift+Enter starts a new line."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QPlainTextEdit


class ChatInputWidget(QPlainTextEdit):
    """Emits `submitted(text)` on Enter when there is something to send."""

    submitted = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.setPlaceholderText("Message — Enter to send, Shift+Enter for a new line")
        self.setTabChangesFocus(True)
        self.setFixedHeight(72)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        enter = event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
        if enter and not event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            text = self.toPlainText().strip()
            if text and self.isEnabled():
                self.submitted.emit(text)
            event.accept()
            return
        super().keyPressEvent(event)
