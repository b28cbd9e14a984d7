"""Markdown for chat messages: prose through Qt's Markdown, fenced code as blocks with Copy.

A streaming answer grows at its end, so the view updates incrementally: only the last
segment's text changes until a new fence opens or closes, and earlier widgets are kept.
An answer longer than `MARKDOWN_CHARS` is not laid out as Markdown (64 KB took 110 ms,
100 MB minutes): its start and end are shown as plain text with "Show all"
(ui/chat_long_text.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import QSizeF, Qt
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

if TYPE_CHECKING:  # it imports TextView from here
    from ui.chat_long_text import LoadText, LongTextWidget

_FENCE = re.compile(r"^(```|~~~)[ \t]*([\w+#.-]*)[^\n]*$", re.MULTILINE)


@dataclass(frozen=True)
class Segment:
    kind: str  # "text" or "code"
    text: str
    language: str = ""


def split_segments(markdown: str) -> list[Segment]:
    """Prose and fenced code blocks in order; an unclosed fence (still streaming) is code."""
    segments: list[Segment] = []
    position = 0
    while True:
        opening = _FENCE.search(markdown, position)
        if opening is None:
            break
        if opening.start() > position:
            segments.append(Segment("text", markdown[position:opening.start()]))
        fence, language = opening.group(1), opening.group(2)
        body_start = opening.end() + 1
        closing = re.compile(rf"^{re.escape(fence)}[ \t]*$", re.MULTILINE).search(
            markdown, body_start)
        end = closing.start() if closing else len(markdown)
        segments.append(Segment("code", markdown[body_start:end].rstrip("\n"), language))
        position = closing.end() if closing else len(markdown)
    if position < len(markdown):
        segments.append(Segment("text", markdown[position:]))
    return [s for s in segments if s.kind == "code" or s.text.strip()]


class TextView(QTextBrowser):
    """Read-only rich text whose height follows its document.

    A word-wrapped QLabel lays its text out several times per change (about 40 ms for
    4.5 KB of Markdown); a text document lays out once (about 5 ms), which is what keeps
    a long streaming answer from stalling the window.
    """

    def __init__(self, *, markdown: bool) -> None:
        super().__init__()
        self._markdown = markdown
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setOpenExternalLinks(True)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.viewport().setAutoFillBackground(False)
        self.setStyleSheet("QTextBrowser { background: transparent; }")
        self.document().setDocumentMargin(0)
        layout = self.document().documentLayout()
        layout.documentSizeChanged.connect(self._on_layout_document_size_changed)
        self.setFixedHeight(0)

    def set_text(self, text: str) -> None:
        if self._markdown:
            self.setMarkdown(text)
        else:
            self.setPlainText(text)

    def text(self) -> str:
        return self.toPlainText()

    def _on_layout_document_size_changed(self, size: QSizeF) -> None:
        self.setFixedHeight(int(size.height()) + 2)


class CodeBlockWidget(QFrame):
    """A monospaced, selectable code block with its language and a Copy button."""

    def __init__(self, segment: Segment) -> None:
        super().__init__()
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setObjectName("codeBlock")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 8)
        header = QHBoxLayout()
        self.language_label = QLabel(segment.language or "code")
        self.language_label.setEnabled(False)
        header.addWidget(self.language_label)
        header.addStretch(1)
        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("Copy this code to the clipboard")
        self.copy_button.clicked.connect(self._on_copy_clicked)
        header.addWidget(self.copy_button)
        layout.addLayout(header)
        self.code_view = TextView(markdown=False)
        self.code_view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.code_view.setLineWrapMode(QTextBrowser.LineWrapMode.NoWrap)
        layout.addWidget(self.code_view)
        self.set_segment(segment)

    def set_segment(self, segment: Segment) -> None:
        self.code = segment.text
        self.language_label.setText(segment.language or "code")
        if self.code_view.text() != segment.text:
            self.code_view.set_text(segment.text)

    def _on_copy_clicked(self) -> None:
        QGuiApplication.clipboard().setText(self.code)
        self.copy_button.setText("Copied")


MARKDOWN_CHARS = 20_000
"""The longest answer rendered as Markdown (about 40 ms to lay out); a longer one is
shown as plain text, its start and end first."""


class MarkdownView(QWidget):
    """Renders one message's Markdown; `set_markdown` may be called at every repaint."""

    def __init__(self) -> None:
        super().__init__()
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._segments: list[Segment] = []
        self._widgets: list[QWidget] = []
        self.long_text: LongTextWidget | None = None
        """The plain-text view of an answer too long for Markdown, once there is one."""
        self.markdown = ""

    def set_markdown(self, markdown: str, *, total_chars: int | None = None,
                     load: LoadText | None = None) -> None:
        """Show `markdown`; a preview's (`total_chars`, `load`: see LongTextWidget) too."""
        if markdown == self.markdown and total_chars is None:
            return
        self.markdown = markdown
        if (total_chars or len(markdown)) > MARKDOWN_CHARS:
            self._set_segments([])
            if self.long_text is None:
                from ui.chat_long_text import LongTextWidget

                self.long_text = LongTextWidget()
                self._layout.addWidget(self.long_text)
            self.long_text.set_text(markdown, total_chars=total_chars, load=load)
            self.long_text.setVisible(True)
            return
        if self.long_text is not None:
            self.long_text.setVisible(False)
        self._set_segments(split_segments(markdown))

    def _set_segments(self, segments: list[Segment]) -> None:
        keep = 0
        for old, new in zip(self._segments, segments, strict=False):
            if old.kind != new.kind:
                break
            keep += 1
        for widget in self._widgets[keep:]:
            widget.hide()  # at once: a deleted-later widget is painted until it goes
            widget.deleteLater()
        del self._widgets[keep:]
        # The last kept segment may have grown (streaming): update it in place.
        for index, segment in enumerate(segments):
            if index < keep:
                if segment != self._segments[index]:
                    self._update(self._widgets[index], segment)
                continue
            widget = self._make(segment)
            self._widgets.append(widget)
            self._layout.addWidget(widget)
        self._segments = segments

    def code_blocks(self) -> list[CodeBlockWidget]:
        return [w for w in self._widgets if isinstance(w, CodeBlockWidget)]

    def _make(self, segment: Segment) -> QWidget:
        if segment.kind == "code":
            return CodeBlockWidget(segment)
        view = TextView(markdown=True)
        view.set_text(segment.text)
        return view

    @staticmethod
    def _update(widget: QWidget, segment: Segment) -> None:
        if isinstance(widget, CodeBlockWidget):
            widget.set_segment(segment)
        elif isinstance(widget, TextView):
            widget.set_text(segment.text)
