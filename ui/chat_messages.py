"""The message view: one widget per message, the thinking folded apart with its own count,
the answer as Markdown, and tokens/s and time to first token under each reply."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QFrame,
    QLabel,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.chat.history import Message
from ui.chat_markdown import MarkdownView

_ROLE_TITLES = {"user": "You", "assistant": "Assistant", "system": "System"}


def stats_text(message: Message) -> str:
    """"41.8 tok/s · TTFT 120 ms · stop" — what the user reads under a reply."""
    parts: list[str] = []
    if message.tokens_per_s:
        parts.append(f"{message.tokens_per_s:.1f} tok/s")
    if message.ttft_s is not None:
        parts.append(f"TTFT {message.ttft_s * 1000:.0f} ms")
    if message.completion_tokens:
        parts.append(f"{message.completion_tokens} tokens")
    if message.finish_reason:
        parts.append(message.finish_reason)
    if message.state in ("stopped", "interrupted"):
        parts.append(message.state)
    details = [p for p in (message.model and message.model.rsplit("/", 1)[-1],
                           message.preset, message.role_name) if p]
    if details:
        parts.append(" / ".join(details))
    return " · ".join(parts)


class ThinkingBlock(QWidget):
    """The model's reasoning, collapsed by default, with its token count in the header."""

    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.toggle = QToolButton()
        self.toggle.setCheckable(True)
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.toggle.setAutoRaise(True)
        self.toggle.toggled.connect(self._on_toggle_toggled)
        layout.addWidget(self.toggle)
        self.body = QLabel()
        self.body.setTextFormat(Qt.TextFormat.PlainText)
        self.body.setWordWrap(True)
        self.body.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.body.setObjectName("thinkingText")
        self.body.setStyleSheet("QLabel#thinkingText { color: palette(placeholder-text);"
                                " padding-left: 18px; }")
        self.body.setVisible(False)
        layout.addWidget(self.body)
        self.tokens = 0
        self.thinking_now = False
        self._text = ""

    def set_reasoning(self, text: str, tokens: int, *, streaming: bool) -> None:
        self.tokens = tokens
        self.thinking_now = streaming
        verb = "Thinking…" if streaming else "Thought"
        self.toggle.setText(f"{verb} ({tokens} tokens)")
        if self.body.isVisible() or not self.body.text():
            self.body.setText(text)
        self._text = text
        self.setVisible(bool(text))

    def _on_toggle_toggled(self, shown: bool) -> None:
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)
        if shown:
            self.body.setText(self._text)
        self.body.setVisible(shown)


class MessageWidget(QFrame):
    """One message; an assistant message being streamed is updated through `show_stream`."""

    def __init__(self, message: Message) -> None:
        super().__init__()
        self.message = message
        self.setFrameShape(QFrame.Shape.NoFrame)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        self.title_label = QLabel(f"<b>{_ROLE_TITLES.get(message.role, message.role)}</b>")
        layout.addWidget(self.title_label)
        self.thinking = ThinkingBlock()
        layout.addWidget(self.thinking)
        self.answer = MarkdownView()
        layout.addWidget(self.answer)
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #d9534f;")
        layout.addWidget(self.error_label)
        self.stats_label = QLabel()
        self.stats_label.setEnabled(False)
        layout.addWidget(self.stats_label)
        self.show_message(message)

    def show_message(self, message: Message) -> None:
        self.message = message
        self.thinking.set_reasoning(message.reasoning, message.reasoning_tokens or 0,
                                    streaming=False)
        self.answer.set_markdown(message.content)
        self.error_label.setText(message.error or "")
        self.error_label.setVisible(bool(message.error))
        self.stats_label.setText(stats_text(message))
        self.stats_label.setVisible(message.role == "assistant" and bool(self.stats_label.text()))

    def show_stream(self, answer: str, reasoning: str, reasoning_tokens: int) -> None:
        """Paint a reply that is still arriving (called at screen rate, not per token)."""
        self.thinking.set_reasoning(reasoning.strip(), reasoning_tokens,
                                    streaming=not answer.strip())
        self.answer.set_markdown(answer.strip())
        self.stats_label.setText("streaming…")
        self.stats_label.setVisible(True)


def _drop(widget: QWidget) -> None:
    """Hide at once, delete later: a deleted-later widget would still be painted (its old
    text beside the new) until the event loop gets round to deleting it."""
    widget.hide()
    widget.deleteLater()


class MessageListWidget(QScrollArea):
    """The conversation, top to bottom; follows the end while the user has not scrolled up."""

    def __init__(self) -> None:
        super().__init__()
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        body = QWidget()
        self._layout = QVBoxLayout(body)
        self._layout.addStretch(1)
        self.setWidget(body)
        self.widgets: list[MessageWidget] = []
        self._follow = True
        self.verticalScrollBar().valueChanged.connect(self._on_scrollbar_value_changed)
        self.verticalScrollBar().rangeChanged.connect(self._on_scrollbar_range_changed)

    def set_messages(self, messages: list[Message]) -> None:
        for widget in self.widgets:
            _drop(widget)
        self.widgets = []
        for message in messages:
            self.append(message)
        self._follow = True
        QTimer.singleShot(0, self._scroll_to_end)

    def sync(self, messages: list[Message]) -> None:
        """Show `messages`, keeping the widgets of those already shown (same id and text,
        in order): sending in a long conversation adds one widget instead of rebuilding them
        all. The text counts too: an edited message stored after its old self was deleted
        may get the old one's id back (SQLite reuses the highest rowid)."""
        keep = 0
        for widget, message in zip(self.widgets, messages, strict=False):
            shown = widget.message
            if (shown.id, shown.role, shown.content) != (message.id, message.role,
                                                         message.content):
                break
            keep += 1
        for widget, message in zip(self.widgets[:keep], messages, strict=False):
            if widget.message != message:  # a reply kept in memory is saved now, say
                widget.show_message(message)
        for widget in self.widgets[keep:]:
            _drop(widget)
        del self.widgets[keep:]
        for message in messages[keep:]:
            self.append(message)

    def append(self, message: Message) -> MessageWidget:
        widget = MessageWidget(message)
        self._layout.insertWidget(self._layout.count() - 1, widget)
        self.widgets.append(widget)
        return widget

    def _on_scrollbar_value_changed(self, value: int) -> None:
        bar = self.verticalScrollBar()
        self._follow = value >= bar.maximum() - 24

    def _on_scrollbar_range_changed(self, _min: int, _max: int) -> None:
        if self._follow:
            self._scroll_to_end()

    def _scroll_to_end(self) -> None:
        self.verticalScrollBar().setValue(self.verticalScrollBar().maximum())
