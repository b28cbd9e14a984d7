"""The message view: one widget per message, the thinking folded apart with its own count,
the answer as Markdown, and tokens/s and time to first token under each reply."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QFrame,
    QLabel,
    QPushButton,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.chat.history import Message
from ui.chat_long_text import LoadText, LongTextWidget
from ui.chat_markdown import MARKDOWN_CHARS, MarkdownView

_ROLE_TITLES = {"user": "You", "assistant": "Assistant", "system": "System"}

LoadTexts = Callable[[int, Callable[[tuple[str, str]], None]], None]
"""Fetch a message's whole (answer, thinking) off the GUI thread, then call back."""


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
        self._layout = layout = QVBoxLayout(self)
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
        self.long_body: LongTextWidget | None = None
        """Thinking too long for the label, shown in part (made when first needed)."""
        self.tokens = 0
        self.thinking_now = False
        self._text = ""
        self._total: int | None = None
        self._load: LoadText | None = None

    def set_reasoning(self, text: str, tokens: int, *, streaming: bool,
                      total_chars: int | None = None, load: LoadText | None = None) -> None:
        """The thinking (a preview's start and end with `total_chars` and `load`)."""
        self.tokens = tokens
        self.thinking_now = streaming
        verb = "Thinking…" if streaming else "Thought"
        self.toggle.setText(f"{verb} ({tokens} tokens)")
        self._text = text
        self._total, self._load = total_chars, load
        if self.toggle.isChecked():
            self._show_text()
        self.setVisible(bool(text))

    def _show_text(self) -> None:
        """The text in the label, or start and end with "Show all" when it is long."""
        long = (self._total or len(self._text)) > MARKDOWN_CHARS
        if long and self.long_body is None:
            self.long_body = LongTextWidget()
            self._layout.addWidget(self.long_body)
        if self.long_body is not None:
            self.long_body.set_text(self._text if long else "",
                                    total_chars=self._total if long else None, load=self._load)
            self.long_body.setVisible(long)
        self.body.setText("" if long else self._text)
        self.body.setVisible(not long)

    def _on_toggle_toggled(self, shown: bool) -> None:
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)
        if shown:
            self._show_text()
        else:
            self.body.setVisible(False)
            if self.long_body is not None:
                self.long_body.setVisible(False)


class MessageWidget(QFrame):
    """One message; an assistant message being streamed is updated through `show_stream`."""

    def __init__(self, message: Message, load_texts: LoadTexts | None = None) -> None:
        super().__init__()
        self.message = message
        self._load_texts = load_texts
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
        """Show `message`; a preview's long parts fetch their whole text on "Show all"."""
        self.message = message
        self.thinking.set_reasoning(message.reasoning, message.reasoning_tokens or 0,
                                    streaming=False, total_chars=message.reasoning_chars,
                                    load=self._loader(message.id, 1))
        self.answer.set_markdown(message.content, total_chars=message.content_chars,
                                 load=self._loader(message.id, 0))
        self.error_label.setText(message.error or "")
        self.error_label.setVisible(bool(message.error))
        self.stats_label.setText(stats_text(message))
        self.stats_label.setVisible(message.role == "assistant" and bool(self.stats_label.text()))

    def _loader(self, message_id: int, part: int) -> LoadText | None:
        """Fetch part 0 (answer) or 1 (thinking) of the message through `load_texts`."""
        load_texts = self._load_texts
        if load_texts is None:
            return None

        def load(done: Callable[[str], None]) -> None:
            load_texts(message_id, lambda texts: done(texts[part]))

        return load

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


EAGER_MESSAGES = 40
"""The newest messages of a conversation built when it opens; older ones wait behind
"Show earlier messages" (a message widget takes about 10 ms to build)."""
BUILD_BATCH = 1
"""Message widgets built per event-loop turn, newest first."""


class MessageListWidget(QScrollArea):
    """The conversation, top to bottom; follows the end while the user has not scrolled up.

    Widgets are built lazily: the newest few at once, the rest of the newest
    `EAGER_MESSAGES` a few per event-loop turn, older ones when asked for, so a long
    conversation never stalls the window while it opens.
    """

    def __init__(self, load_texts: LoadTexts | None = None) -> None:
        super().__init__()
        self.load_texts = load_texts
        """How a preview's whole text is fetched (the page hands in the history's)."""
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        body = QWidget()
        self._layout = QVBoxLayout(body)
        self.earlier_button = QPushButton()
        self.earlier_button.setFlat(True)
        self.earlier_button.clicked.connect(self._on_earlier_button_clicked)
        self.earlier_button.setVisible(False)
        self._layout.addWidget(self.earlier_button)
        self._layout.addStretch(1)
        self.setWidget(body)
        self.messages: list[Message] = []
        """Every message of the conversation shown."""
        self.widgets: list[MessageWidget] = []
        """The widgets built so far: those of `messages[first:]`."""
        self.first = 0
        self._goal = 0
        self._build_timer = QTimer(self)
        self._build_timer.setInterval(0)
        self._build_timer.timeout.connect(self._on_build_timer_timeout)
        self._follow = True
        self.verticalScrollBar().valueChanged.connect(self._on_scrollbar_value_changed)
        self.verticalScrollBar().rangeChanged.connect(self._on_scrollbar_range_changed)

    @property
    def building(self) -> bool:
        """Whether widgets are still being built for messages asked for."""
        return self._build_timer.isActive()

    def set_messages(self, messages: list[Message]) -> None:
        for widget in self.widgets:
            _drop(widget)
        self.widgets = []
        self.messages = list(messages)
        self.first = len(messages)
        self._build_down_to(max(0, len(messages) - EAGER_MESSAGES))
        self._follow = True
        QTimer.singleShot(0, self._scroll_to_end)

    def show_earlier(self) -> None:
        """Build the widgets of the previous `EAGER_MESSAGES` messages."""
        self._build_down_to(max(0, self.first - EAGER_MESSAGES))

    def sync(self, messages: list[Message]) -> None:
        """Show `messages`, keeping the widgets of those already shown (same id and text,
        in order): sending in a long conversation adds one widget instead of rebuilding them
        all. The text counts too: an edited message stored after its old self was deleted
        may get the old one's id back (SQLite reuses the highest rowid)."""
        keep = 0
        for shown, message in zip(self.messages, messages, strict=False):
            if (shown.id, shown.role, shown.content) != (message.id, message.role,
                                                         message.content):
                break
            keep += 1
        if keep < self.first:  # a message not built yet changed: build afresh
            self.set_messages(messages)
            return
        built = keep - self.first
        for widget, message in zip(self.widgets[:built], messages[self.first:keep],
                                   strict=True):
            if widget.message != message:  # a reply kept in memory is saved now, say
                widget.show_message(message)
        for widget in self.widgets[built:]:
            _drop(widget)
        del self.widgets[built:]
        del self.messages[keep:]
        for message in messages[keep:]:
            self.append(message)

    def append(self, message: Message) -> MessageWidget:
        widget = MessageWidget(message, self.load_texts)
        self._layout.insertWidget(self._layout.count() - 1, widget)
        self.messages.append(message)
        self.widgets.append(widget)
        return widget

    def _build_down_to(self, goal: int) -> None:
        self._goal = goal
        self._build_some()  # the newest at once: what the user looks at first
        if self.first > self._goal:
            self._build_timer.start()

    def _build_some(self) -> None:
        for _ in range(BUILD_BATCH):
            if self.first <= self._goal:
                break
            self.first -= 1
            widget = MessageWidget(self.messages[self.first], self.load_texts)
            self._layout.insertWidget(1, widget)  # below the "earlier" button
            self.widgets.insert(0, widget)
        waiting = self.first
        self.earlier_button.setText(f"Show {waiting} earlier message"
                                    f"{'' if waiting == 1 else 's'}")
        self.earlier_button.setVisible(waiting > 0 and waiting <= self._goal)

    def _on_build_timer_timeout(self) -> None:
        self._build_some()
        if self.first <= self._goal:
            self._build_timer.stop()

    def _on_earlier_button_clicked(self) -> None:
        self.show_earlier()

    def _on_scrollbar_value_changed(self, value: int) -> None:
        bar = self.verticalScrollBar()
        self._follow = value >= bar.maximum() - 24

    def _on_scrollbar_range_changed(self, _min: int, _max: int) -> None:
        if self._follow:
            self._scroll_to_end()

    def _scroll_to_end(self) -> None:
        self.verticalScrollBar().setValue(self.verticalScrollBar().maximum())
