"""A message too long to lay out at once (a 100 MB reply froze the window for minutes):
its start and end as plain text, and "Show all (N MB)", which fills a scrollable viewer a
chunk per event-loop turn, so the window answers all the while.

Laying out text costs about 2 ms per KB as Markdown and less as plain text; a viewer of
its own (QPlainTextEdit lays out only what is on screen) keeps the message list from
growing taller than a widget may be.
"""

from __future__ import annotations

from collections.abc import Callable

import shiboken6
from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QFontDatabase, QTextCursor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ui.chat_markdown import TextView

HEAD_CHARS = 3_000
"""How much of a long message's start is shown before "Show all"."""
TAIL_CHARS = 1_000
"""And of its end (where a reply says what it came to)."""
CHUNK_CHARS = 64 * 1024
"""Text added to the full viewer per event-loop turn (about 20 ms on 2 shared cores)."""
LINE_CHARS = 4_000
"""A longer line is broken for the viewer: one huge line is laid out as a whole."""
VIEWER_HEIGHT = 480

LoadText = Callable[[Callable[[str], None]], None]
"""Fetch the whole text of a preview (off the GUI thread) and hand it to the callback."""


def size_text(chars: int) -> str:
    """"97.7 MB" — a message's size as the user reads it (a character counted as a byte:
    exact for the ASCII most replies are, and never a pass over the text to count)."""
    if chars >= 1_000_000:
        return f"{chars / 1_000_000:.1f} MB"
    return f"{chars / 1000:.0f} KB"


def break_long_lines(text: str, width: int = LINE_CHARS) -> str:
    """`text` with lines longer than `width` broken every `width` characters."""
    if "\n" in text and max(len(line) for line in text.split("\n")) <= width:
        return text
    return "\n".join(line[i:i + width] if line else line
                     for line in text.split("\n")
                     for i in range(0, max(len(line), 1), width))


class LongTextWidget(QWidget):
    """The start and end of a long text, with a control that shows all of it."""

    completed = Signal()
    """Every chunk is in the full viewer."""

    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.head_view = TextView(markdown=False)
        layout.addWidget(self.head_view)
        row = QHBoxLayout()
        self.omitted_label = QLabel()
        self.omitted_label.setEnabled(False)
        row.addWidget(self.omitted_label)
        self.show_all_button = QPushButton()
        self.show_all_button.setToolTip("Show the whole text, added a part at a time; "
                                        "the window stays usable meanwhile")
        self.show_all_button.clicked.connect(self._on_show_all_button_clicked)
        row.addWidget(self.show_all_button)
        row.addStretch(1)
        layout.addLayout(row)
        self.tail_view = TextView(markdown=False)
        layout.addWidget(self.tail_view)
        self.full_view = QPlainTextEdit()
        self.full_view.setReadOnly(True)
        self.full_view.setFixedHeight(VIEWER_HEIGHT)
        self.full_view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.full_view.setVisible(False)
        layout.addWidget(self.full_view)
        self._timer = QTimer(self)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._on_timer_timeout)
        self.text = ""
        self._filled = 0
        self._load: LoadText | None = None
        self._total = 0

    @property
    def complete(self) -> bool:
        """Whether the full viewer holds the whole text."""
        return (self.full_view.isVisible() and self._load is None
                and self._filled >= len(self.text))

    def set_text(self, text: str, *, total_chars: int | None = None,
                 load: LoadText | None = None) -> None:
        """Show the start and end of `text` (a streaming reply may call it every frame).

        A preview: `text` is only the start and end of a text of `total_chars`, and `load`
        fetches the whole of it when "Show all" is chosen.
        """
        if text == self.text and total_chars == (self._total if self._load else None):
            return
        self.text = text
        self._load = load if total_chars is not None else None
        self._total = total_chars if total_chars is not None else len(text)
        self.head_view.set_text(break_long_lines(text[:HEAD_CHARS]).rstrip())
        self.tail_view.set_text(break_long_lines(text[-TAIL_CHARS:]).lstrip())
        omitted = self._total - HEAD_CHARS - TAIL_CHARS
        self.omitted_label.setText(f"… {size_text(omitted)} not shown …")
        self.show_all_button.setText(f"Show all ({size_text(self._total)})")
        if self.full_view.isVisible():  # a streaming reply grew at its end: go on
            if len(text) < self._filled:
                self.show_all()
            elif not self._timer.isActive():
                self._timer.start()
        else:
            self._show_parts(preview=True)

    def show_all(self) -> None:
        """Replace the start and end with the whole text, a chunk per event-loop turn (of a
        preview, once its whole text has been fetched)."""
        if self._load is not None:
            self.show_all_button.setEnabled(False)
            self.show_all_button.setText(f"Reading {size_text(self._total)}…")
            self._load(self._on_text_loaded)
            return
        self._show_parts(preview=False)
        self.full_view.clear()
        self._filled = 0
        self._timer.start()

    def _show_parts(self, *, preview: bool) -> None:
        for widget in (self.head_view, self.omitted_label, self.show_all_button,
                       self.tail_view):
            widget.setVisible(preview)
        self.full_view.setVisible(not preview)

    def _on_text_loaded(self, text: str) -> None:
        if not shiboken6.isValid(self):
            return
        self._load = None
        self.text = text
        self._total = len(text)
        self.show_all_button.setEnabled(True)
        self.show_all()

    def _on_show_all_button_clicked(self) -> None:
        self.show_all()

    def _on_timer_timeout(self) -> None:
        start = self._filled
        end = min(start + CHUNK_CHARS, len(self.text))
        if end < len(self.text):  # cut after a line, not inside one, where there is one
            newline = self.text.rfind("\n", start, end)
            end = newline + 1 if newline > start else end
        cursor = QTextCursor(self.full_view.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(break_long_lines(self.text[start:end]))
        self._filled = end
        if end >= len(self.text):
            self._timer.stop()
            self.completed.emit()
