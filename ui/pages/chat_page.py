"""The Chat page: conversations on the left, the conversation and its controls on the right.

The page talks to app.chat only: a HistoryStore for the conversations, a ChatClient per
reply (run in the task runner by ReplyStreamController), presets and the thinking switch
from app.presets. Until the Backends service exists, a backend is a URL or a saved
endpoint; the Experts chip says why it is not available for a URL.
"""

from __future__ import annotations

import logging
from pathlib import Path

import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.chat.base_url import normalise_base_url
from app.chat.client import ChatClient
from app.chat.endpoints import EndpointStore
from app.chat.export import write_jsonl, write_markdown
from app.chat.history import HistoryStore, Message
from app.chat.session import ReplyRun, TurnResult, TurnSettings, build_request, detect_support
from app.errors import UserError
from app.presets.presets import Preset, PresetStore
from app.presets.thinking import ThinkingMemory, ThinkingSupport, support_from_template
from app.roles.requests import RoleRequest
from app.roles.role import RoleError
from ui.chat_input import ChatInputWidget
from ui.chat_markdown import TextView
from ui.chat_messages import MessageListWidget, MessageWidget
from ui.chat_stream import ReplyStreamController
from ui.role_chip import RoleChipWidget
from ui.role_feed import NO_ROLE
from ui.services import Services

log = logging.getLogger(__name__)

NO_PRESET = "No preset"


class ChatPage(QWidget):
    """Talk to a backend; every exchange is kept in the history."""

    def __init__(self, services: Services) -> None:
        super().__init__()
        self._services = services
        paths = services.paths
        self.store = HistoryStore.in_data_folder(paths.data)
        self.presets = PresetStore(paths.config / "presets")
        self.endpoints = EndpointStore(paths.config / "endpoints.toml", services.secrets)
        self.memory = ThinkingMemory(paths.data / "thinking_switch.json")
        self.controller = ReplyStreamController(services.tasks)
        self.controller.frame.connect(self._on_controller_frame)
        self.controller.finished.connect(self._on_controller_finished)
        self.controller.failed.connect(self._on_controller_failed)
        self.support: ThinkingSupport = support_from_template(None)
        self.conversation_id: int | None = None
        self._editing: int | None = None
        self._client: ChatClient | None = None
        self._streaming_widget: MessageWidget | None = None

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self._sidebar())
        splitter.addWidget(self._conversation_pane())
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([260, 900])
        QVBoxLayout(self).addWidget(splitter)
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.stop)
        self.destroyed.connect(self.store.close)
        # PySide6 builds a text view's Python types on first use (~35 ms): pay it now,
        # not on the first Send while the window should stay responsive.
        TextView(markdown=True).deleteLater()
        self._apply_support(self.support)  # before a stored endpoint is probed
        self.refresh_conversations()
        if self.conversation_list.count():
            self.conversation_list.setCurrentRow(0)

    # ------------------------------------------------------------------ layout
    def _sidebar(self) -> QWidget:
        box = QWidget()
        box.setMaximumWidth(340)
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        self.search_edit = QLineEdit()
        self.search_edit.setPlaceholderText("Search conversations")
        self.search_edit.setClearButtonEnabled(True)
        self.search_edit.textChanged.connect(self._on_search_edit_text_changed)
        layout.addWidget(self.search_edit)
        self.conversation_list = QListWidget()
        self.conversation_list.currentItemChanged.connect(
            self._on_conversation_list_current_item_changed)
        layout.addWidget(self.conversation_list, 1)
        buttons = QHBoxLayout()
        self.new_button = QPushButton("New")
        self.new_button.clicked.connect(self.new_conversation)
        self.rename_button = QPushButton("Rename")
        self.rename_button.clicked.connect(self._on_rename_button_clicked)
        self.delete_button = QPushButton("Delete")
        self.delete_button.clicked.connect(self._on_delete_button_clicked)
        self.export_button = QToolButton()
        self.export_button.setText("Export")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.export_button)
        menu.addAction("This conversation as JSONL…", lambda: self._export_dialog("jsonl", True))
        menu.addAction("This conversation as Markdown…", lambda: self._export_dialog("md", True))
        menu.addAction("All as JSONL (fine-tuning)…", lambda: self._export_dialog("jsonl", False))
        menu.addAction("All as Markdown…", lambda: self._export_dialog("md", False))
        self.export_button.setMenu(menu)
        for button in (self.new_button, self.rename_button, self.delete_button,
                       self.export_button):
            buttons.addWidget(button)
        layout.addLayout(buttons)
        return box

    def _conversation_pane(self) -> QWidget:
        pane = QWidget()
        layout = QVBoxLayout(pane)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self._endpoint_row())
        self.message_list = MessageListWidget()
        layout.addWidget(self.message_list, 1)
        layout.addLayout(self._chips_row())
        row = QHBoxLayout()
        self.input = ChatInputWidget()
        self.input.submitted.connect(self.send)
        row.addWidget(self.input, 1)
        self.send_button = QPushButton("Send")
        self.send_button.clicked.connect(self._on_send_button_clicked)
        row.addWidget(self.send_button)
        layout.addLayout(row)
        return pane

    def _endpoint_row(self) -> QHBoxLayout:
        top = QHBoxLayout()
        top.addWidget(QLabel("Backend"))
        self.endpoint_box = QComboBox()
        self.endpoint_box.setEditable(True)
        self.endpoint_box.setMinimumWidth(320)
        line = self.endpoint_box.lineEdit()
        assert line is not None  # the box is editable
        line.setPlaceholderText("http://127.0.0.1:8080 or a saved name")
        line.editingFinished.connect(self._on_endpoint_box_edited)
        self.endpoint_box.activated.connect(self._on_endpoint_box_edited)
        top.addWidget(self.endpoint_box, 1)
        self.save_endpoint_button = QPushButton("Save…")
        self.save_endpoint_button.setToolTip("Save this URL under a name, with an API key "
                                             "kept in the system keyring")
        self.save_endpoint_button.clicked.connect(self._on_save_endpoint_button_clicked)
        top.addWidget(self.save_endpoint_button)
        self.status_label = QLabel()
        self.status_label.setEnabled(False)
        top.addWidget(self.status_label)
        self._reload_endpoints()
        return top

    def _chips_row(self) -> QHBoxLayout:
        chips = QHBoxLayout()
        self.preset_box = QComboBox()
        self.preset_box.addItem(NO_PRESET)
        for name, preset in self.presets.all().items():
            self.preset_box.addItem(name)
            self.preset_box.setItemData(self.preset_box.count() - 1, preset.description,
                                        Qt.ItemDataRole.ToolTipRole)
        self.preset_box.currentTextChanged.connect(self._on_preset_box_text_changed)
        chips.addWidget(self.preset_box)
        self.think_button = QToolButton()
        self.think_button.setText("Think")
        self.think_button.setCheckable(True)
        self.think_button.setChecked(True)
        chips.addWidget(self.think_button)
        self.experts_box = QComboBox()
        self.experts_box.addItem("Experts: model default")
        self.experts_box.setEnabled(False)
        self.experts_box.setToolTip(
            "Experts per token is a launch setting: it needs a MoE backend started by Rigdeck "
            "(Backends page), which is relaunched after one confirmation. A URL cannot be "
            "relaunched.")
        chips.addWidget(self.experts_box)
        self.role_box = RoleChipWidget(self._services.roles)
        self._services.roles.chosen.connect(self._on_roles_chosen)
        chips.addWidget(self.role_box)
        chips.addStretch(1)
        self.regenerate_button = QPushButton("Regenerate")
        self.regenerate_button.clicked.connect(self.regenerate)
        chips.addWidget(self.regenerate_button)
        self.edit_button = QPushButton("Edit and resend")
        self.edit_button.clicked.connect(self.edit_last)
        chips.addWidget(self.edit_button)
        return chips

    # ------------------------------------------------------------------ conversations
    def refresh_conversations(self) -> None:
        current = self.conversation_id
        self.conversation_list.blockSignals(True)
        self.conversation_list.clear()
        for conversation in self.store.conversations(self.search_edit.text()):
            item = QListWidgetItem(conversation.title)
            item.setData(Qt.ItemDataRole.UserRole, conversation.id)
            item.setToolTip(conversation.endpoint or "")
            self.conversation_list.addItem(item)
            if conversation.id == current:
                self.conversation_list.setCurrentItem(item)
        self.conversation_list.blockSignals(False)

    def open_conversation(self, conversation_id: int | None) -> None:
        self.conversation_id = conversation_id
        self._editing = None
        messages = self.store.messages(conversation_id) if conversation_id else []
        self.message_list.set_messages(messages)
        conversation = self.store.conversation(conversation_id) if conversation_id else None
        if conversation and conversation.endpoint:
            self.set_endpoint(conversation.endpoint)
        if conversation and conversation.preset:
            self.preset_box.setCurrentText(conversation.preset)
        used = [m.role_name for m in messages if m.role == "assistant"]
        if used and (used[-1] is None or used[-1] in self._services.roles.roles()):
            self._services.roles.choose(used[-1] or NO_ROLE)
        self._update_buttons()

    def new_conversation(self) -> None:
        self.conversation_list.blockSignals(True)
        self.conversation_list.setCurrentRow(-1)
        self.conversation_list.blockSignals(False)
        self.open_conversation(None)
        self.input.setFocus()

    def _on_conversation_list_current_item_changed(self, item: QListWidgetItem | None,
                                                   _previous: QListWidgetItem | None) -> None:
        if item is not None and not self.controller.running:
            self.open_conversation(int(item.data(Qt.ItemDataRole.UserRole)))

    def _on_search_edit_text_changed(self, _text: str) -> None:
        self.refresh_conversations()

    def _on_rename_button_clicked(self) -> None:
        if self.conversation_id is None:
            return
        conversation = self.store.conversation(self.conversation_id)
        title, ok = QInputDialog.getText(self, "Rename conversation", "Title",
                                         text=conversation.title if conversation else "")
        if ok:
            self.rename_conversation(title)

    def rename_conversation(self, title: str) -> None:
        if self.conversation_id is not None:
            self.store.rename(self.conversation_id, title)
            self.refresh_conversations()

    def _on_delete_button_clicked(self) -> None:
        if self.conversation_id is not None and not self.controller.running:
            self.store.delete(self.conversation_id)
            self.conversation_id = None
            self.refresh_conversations()
            self.open_conversation(None)

    def _export_dialog(self, fmt: str, current_only: bool) -> None:
        from PySide6.QtWidgets import QFileDialog

        suffix = ".jsonl" if fmt == "jsonl" else ".md"
        name, _ = QFileDialog.getSaveFileName(self, "Export", f"conversations{suffix}")
        if name:
            self.export_to(Path(name), fmt, current_only)

    def export_to(self, path: Path, fmt: str, current_only: bool) -> int:
        """Write the export; returns how many conversations went in."""
        ids = [self.conversation_id] if current_only and self.conversation_id else None
        try:
            with path.open("w", encoding="utf-8") as out:
                count = (write_jsonl(self.store, out, ids) if fmt == "jsonl"
                         else write_markdown(self.store, out, ids))
        except OSError as exc:
            self._services.notifier.error("Exporting conversations",
                                          UserError(f"cannot write {path}: {exc}"))
            return 0
        self._services.notifier.info(f"Exported {count} conversation(s) to {path}")
        return count

    # ------------------------------------------------------------------ endpoint
    def _reload_endpoints(self) -> None:
        text = self.endpoint_box.currentText()
        self.endpoint_box.blockSignals(True)
        self.endpoint_box.clear()
        for endpoint in self.endpoints.all():
            self.endpoint_box.addItem(endpoint.name, endpoint.url)
        self.endpoint_box.setEditText(text)
        self.endpoint_box.blockSignals(False)

    def set_endpoint(self, text: str) -> None:
        """Choose the backend by saved name or URL, and find out how it switches thinking."""
        self.endpoint_box.setEditText(text)
        self._on_endpoint_box_edited()

    def endpoint(self) -> tuple[str, str, str | None] | None:
        """(name, url, api key) of the chosen backend, None when nothing usable is chosen."""
        text = self.endpoint_box.currentText().strip()
        if not text:
            return None
        for saved in self.endpoints.all():
            if saved.name == text:
                return saved.name, saved.url, self.endpoints.api_key(saved)
        try:
            return text, normalise_base_url(text), None
        except ValueError:
            return None

    def _on_endpoint_box_edited(self, *_: object) -> None:
        chosen = self.endpoint()
        if chosen is None:
            self.status_label.setText("Enter a server URL")
            return
        name, url, key = chosen
        self.status_label.setText("Checking…")
        self.role_box.set_backend(url, key)

        def probe() -> ThinkingSupport | None:
            with ChatClient(url, key) as client:
                if not client.reachable():
                    return None
                return detect_support(client, name, self.memory)

        self._services.tasks.run(probe, description=f"Asking {url} about its template",
                                 on_done=self._on_probe_done)

    def _on_probe_done(self, support: ThinkingSupport | None) -> None:
        if not shiboken6.isValid(self.status_label):
            return  # the page was closed while the probe ran
        if support is None:
            self.status_label.setText("Not reachable")
            self.status_label.setToolTip("Nothing answers at this address yet; start the "
                                         "server or check the URL.")
            return
        self.status_label.setToolTip("")
        self._apply_support(support)

    def _apply_support(self, support: ThinkingSupport) -> None:
        self.support = support
        self.think_button.setEnabled(support.available)
        self.think_button.setToolTip(support.reason if support.available else
                                     f"Thinking cannot be switched: {support.reason}")
        if self.endpoint() is not None:
            self.status_label.setText("Ready" if support.available else "Ready (no think switch)")

    def _on_save_endpoint_button_clicked(self) -> None:
        url = self.endpoint_box.currentText().strip()
        name, ok = QInputDialog.getText(self, "Save endpoint", "Name", text="")
        if not ok or not name.strip():
            return
        key, ok = QInputDialog.getText(self, "Save endpoint",
                                       "API key (empty if none; kept in the system keyring)",
                                       QLineEdit.EchoMode.Password)
        if ok:
            self.save_endpoint(name.strip(), url, key or None)

    def save_endpoint(self, name: str, url: str, api_key: str | None) -> None:
        try:
            self.endpoints.save(name, url, api_key)
        except UserError as exc:
            self._services.notifier.error("Saving the endpoint", exc)
            return
        self._reload_endpoints()
        self.set_endpoint(name)

    # ------------------------------------------------------------------ presets
    def preset(self) -> Preset | None:
        name = self.preset_box.currentText()
        return None if name == NO_PRESET else self.presets.all().get(name)

    def _on_preset_box_text_changed(self, _name: str) -> None:
        preset = self.preset()
        if preset is not None and preset.request.thinking is not None:
            self.think_button.setChecked(preset.request.thinking)

    def _on_roles_chosen(self, name: str) -> None:
        role = self._services.roles.roles().get(name)
        if role is not None and role.thinking is not None:
            self.think_button.setChecked(role.thinking)

    def thinking(self) -> bool | None:
        return self.think_button.isChecked() if self.think_button.isEnabled() else None

    # ------------------------------------------------------------------ sending
    def _on_send_button_clicked(self) -> None:
        if self.controller.running:
            self.stop()
        else:
            self.send(self.input.toPlainText().strip())

    def send(self, text: str) -> None:
        """Send `text` as the user's next message (replacing the one being edited)."""
        if not text or self.controller.running:
            return
        chosen = self.endpoint()
        if chosen is None:
            self._services.notifier.warning("Choose a backend first: enter its URL "
                                            "(e.g. http://127.0.0.1:8080) above the chat.")
            return
        name, _url, _key = chosen
        ready, role = self._role_request()
        if not ready:
            return
        preset = self.preset()
        if self.conversation_id is None:
            title = " ".join(text.split())[:60]
            self.conversation_id = self.store.create_conversation(
                title, endpoint=name, preset=preset.name if preset else None).id
        elif self._editing is not None:
            self.store.delete_messages_from(self._editing)
        self._editing = None
        self.store.set_conversation_settings(self.conversation_id, endpoint=name, model=None,
                                             preset=preset.name if preset else None)
        self.store.add_message(self.conversation_id, "user", text)
        self.input.clear()
        self._start_reply(role)

    def regenerate(self) -> None:
        """Ask again for the last reply (it is replaced)."""
        if self.conversation_id is None or self.controller.running:
            return
        ready, role = self._role_request()
        if not ready:
            return
        messages = self.store.messages(self.conversation_id)
        if messages and messages[-1].role == "assistant":
            self.store.delete_messages_from(messages[-1].id)
        if self.store.messages(self.conversation_id):
            self._start_reply(role)

    def edit_last(self) -> None:
        """Put the last user message back into the box; sending replaces it and what followed."""
        if self.conversation_id is None or self.controller.running:
            return
        users = [m for m in self.store.messages(self.conversation_id) if m.role == "user"]
        if users:
            self._editing = users[-1].id
            self.input.setPlainText(users[-1].content)
            self.input.setFocus()

    def stop(self) -> None:
        self.controller.stop()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.stop()  # a stream must not outlive its page
        super().closeEvent(event)

    def _role_request(self) -> tuple[bool, RoleRequest | None]:
        """(ready, the chosen role's request fields); not ready is told to the user."""
        try:
            return True, self.role_box.role_request()
        except RoleError as exc:
            self._services.notifier.error("Sending with a role", exc)
            return False, None

    def _start_reply(self, role: RoleRequest | None) -> None:
        assert self.conversation_id is not None
        chosen = self.endpoint()
        assert chosen is not None
        name, url, key = chosen
        settings = TurnSettings(thinking=self.thinking(), preset=self.preset(), role=role)
        history = self.store.messages(self.conversation_id)
        request = build_request(history, settings, self.support)
        self._client = ChatClient(url, key)
        run = ReplyRun(self._client, self.store, self.conversation_id, request, settings,
                       endpoint=name, support=self.support, memory=self.memory)
        self.message_list.sync(history)
        message = self.store.message(run.message_id)
        assert message is not None
        self._streaming_widget = self.message_list.append(message)
        self.controller.start(run)
        self._update_buttons()
        self.refresh_conversations()

    def _on_controller_frame(self, answer: str, reasoning: str, reasoning_tokens: int) -> None:
        if self._streaming_widget is not None:
            self._streaming_widget.show_stream(answer, reasoning, reasoning_tokens)

    def _on_controller_finished(self, result: TurnResult) -> None:
        self._end_stream(result.message)
        if result.switch_ignored:
            self._services.notifier.warning(result.message.error or "")
            self._on_endpoint_box_edited()

    def _on_controller_failed(self, text: str) -> None:
        self._services.notifier.error("Streaming the reply", RuntimeError(text))
        self._end_stream(None)

    def _end_stream(self, message: Message | None) -> None:
        if self._streaming_widget is not None and message is not None:
            self._streaming_widget.show_message(message)
        self._streaming_widget = None
        if self._client is not None:
            self._client.close()
            self._client = None
        self._update_buttons()
        self.refresh_conversations()

    def _update_buttons(self) -> None:
        running = self.controller.running
        self.send_button.setText("Stop" if running else "Send")
        has_messages = bool(self.message_list.widgets)
        self.regenerate_button.setEnabled(not running and has_messages)
        self.edit_button.setEnabled(not running and has_messages)
        for widget in (self.new_button, self.delete_button, self.preset_box):
            widget.setEnabled(not running)


def chat_page(services: Services, _open_settings: object) -> QWidget:
    """The registry's factory."""
    return ChatPage(services)
