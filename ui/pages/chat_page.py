"""The Chat page: conversations on the left, the conversation and its controls on the right.

The page adapts the ChatService (services.chat): the backend picker lists Rigdeck's
running backends first, then saved endpoints, and takes a URL; every reply is a ReplyRun
from the service, streamed on the task runner by ReplyStreamController. The Experts chip
relaunches a MoE backend Rigdeck started, after one confirmation, and the conversation
goes on; for a URL or a dense model it is disabled with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
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
    QMessageBox,
    QPushButton,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.chat.history import HistoryStore, Message
from app.chat.service import ChatService
from app.chat.session import ReplyRun, TurnResult, TurnSettings
from app.chat.targets import ChatTarget
from app.errors import UserError
from app.presets.experts import ExpertOffer
from app.presets.presets import Preset
from app.presets.thinking import ThinkingSupport, support_from_template
from app.roles.requests import RoleRequest
from app.roles.role import RoleError
from ui.chat_input import ChatInputWidget
from ui.chat_long_text import HEAD_CHARS, TAIL_CHARS
from ui.chat_markdown import MARKDOWN_CHARS, TextView
from ui.chat_messages import MessageListWidget, MessageWidget
from ui.chat_stream import ReplyStreamController
from ui.role_chip import RoleChipWidget
from ui.role_feed import NO_ROLE
from ui.services import Services

log = logging.getLogger(__name__)

NO_PRESET = "No preset"


def view_messages(history: HistoryStore, conversation_id: int) -> list[Message]:
    """The conversation as the view shows it: a huge answer or thinking only by its start
    and end (SQLite cuts it; the whole of it is read on "Show all")."""
    return history.preview_messages(conversation_id, over=MARKDOWN_CHARS, head=HEAD_CHARS,
                                    tail=TAIL_CHARS)


class ChatPage(QWidget):
    """Talk to a backend; every exchange is kept in the history."""

    def __init__(self, services: Services) -> None:
        super().__init__()
        self._services = services
        self.chat: ChatService = services.chat
        self.controller = ReplyStreamController(services.tasks)
        self.controller.frame.connect(self._on_controller_frame)
        self.controller.finished.connect(self._on_controller_finished)
        self.controller.failed.connect(self._on_controller_failed)
        self.support: ThinkingSupport = support_from_template(None)
        self.conversation_id: int | None = None
        self.target: ChatTarget | None = None
        """The backend chosen in the picker (None: nothing usable chosen)."""
        self.expert_offer: ExpertOffer | None = None
        self.experts_confirm: QMessageBox | None = None
        """The open "relaunch with N experts?" question, if any."""
        self._relaunching = False
        self._editing: int | None = None
        self._run: ReplyRun | None = None
        self._streaming_widget: MessageWidget | None = None
        self._reading = 0
        """Counts conversation reads begun; only the latest one's result is shown."""

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self._sidebar())
        splitter.addWidget(self._conversation_pane())
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([260, 900])
        QVBoxLayout(self).addWidget(splitter)
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.stop)
        services.backends.updated.connect(self._on_backends_updated)
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
        self.message_list = MessageListWidget(self._load_texts)
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
        self.endpoint_box.setMinimumWidth(420)
        self.endpoint_box.setToolTip("Rigdeck's running backends come first (their API keys "
                                     "are used for you), then saved endpoints; or type a URL.")
        line = self.endpoint_box.lineEdit()
        assert line is not None  # the box is editable
        line.setPlaceholderText("a running backend, a saved name or http://127.0.0.1:8080")
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
        for name, preset in self.chat.presets.all().items():
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
        self.experts_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.experts_box.activated.connect(self._on_experts_box_activated)
        self._show_expert_offer(None)
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
        for conversation in self.chat.history.conversations(self.search_edit.text()):
            item = QListWidgetItem(conversation.title)
            item.setData(Qt.ItemDataRole.UserRole, conversation.id)
            item.setToolTip(conversation.endpoint or "")
            self.conversation_list.addItem(item)
            if conversation.id == current:
                self.conversation_list.setCurrentItem(item)
        self.conversation_list.blockSignals(False)

    def open_conversation(self, conversation_id: int | None) -> None:
        """Show a conversation; its messages are read on the task runner (a 100 MB reply
        takes 0.3 s to read), and a later open or send makes an earlier read moot."""
        self.conversation_id = conversation_id
        self._editing = None
        self._reading += 1
        if conversation_id is None:
            self._show_conversation(None, [])
            return
        reading, history = self._reading, self.chat.history
        self._services.tasks.run(
            lambda: view_messages(history, conversation_id),
            description="Reading the conversation",
            on_done=lambda messages: self._on_messages_read(reading, conversation_id,
                                                            messages))

    def _load_texts(self, message_id: int, done: Callable[[tuple[str, str]], None]) -> None:
        history = self.chat.history
        self._services.tasks.run(lambda: history.message_texts(message_id),
                                 description="Reading the whole message", on_done=done)

    def _on_messages_read(self, reading: int, conversation_id: int,
                          messages: list[Message]) -> None:
        if shiboken6.isValid(self) and reading == self._reading:
            self._show_conversation(conversation_id, messages)

    def _show_conversation(self, conversation_id: int | None, messages: list[Message]
                           ) -> None:
        history = self.chat.history
        self.message_list.set_messages(messages)
        conversation = history.conversation(conversation_id) if conversation_id else None
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
        conversation = self.chat.history.conversation(self.conversation_id)
        title, ok = QInputDialog.getText(self, "Rename conversation", "Title",
                                         text=conversation.title if conversation else "")
        if ok:
            self.rename_conversation(title)

    def rename_conversation(self, title: str) -> None:
        if self.conversation_id is not None:
            try:
                self.chat.history.rename(self.conversation_id, title)
            except UserError as exc:  # the data disk is full
                self._services.notifier.error("Renaming the conversation", exc)
            self.refresh_conversations()

    def _on_delete_button_clicked(self) -> None:
        if self.conversation_id is not None and not self.controller.running:
            try:
                self.chat.history.delete(self.conversation_id)
            except UserError as exc:
                self._services.notifier.error("Deleting the conversation", exc)
                return
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
            count = self.chat.export(path, fmt, ids)
        except UserError as exc:
            self._services.notifier.error("Exporting conversations", exc)
            return 0
        self._services.notifier.info(f"Exported {count} conversation(s) to {path}")
        return count

    # ------------------------------------------------------------------ backend
    def _reload_endpoints(self) -> None:
        """Fill the picker: running backends, then saved endpoints; what is typed stays."""
        text = self.endpoint_box.currentText()
        self.endpoint_box.blockSignals(True)
        self.endpoint_box.clear()
        for target in self.chat.targets():
            self.endpoint_box.addItem(target.label, target.name)
            self.endpoint_box.setItemData(self.endpoint_box.count() - 1, target.url,
                                          Qt.ItemDataRole.ToolTipRole)
        self.endpoint_box.setEditText(text)
        self.endpoint_box.blockSignals(False)

    def _on_backends_updated(self, _backends: list[object]) -> None:
        before = [self.endpoint_box.itemData(i) for i in range(self.endpoint_box.count())]
        self._reload_endpoints()
        after = [self.endpoint_box.itemData(i) for i in range(self.endpoint_box.count())]
        if self.target is not None and self.target.kind == "backend":
            if self.target.name not in after and not self._relaunching:
                self.status_label.setText("Not running")
                self.status_label.setToolTip(f"{self.target.name} no longer runs; start it "
                                             "again on the Backends page.")
        elif (self.target is None and not self.endpoint_box.currentText().strip()
              and after != before and self.chat.running_backends()):
            self.set_endpoint(str(after[0]))  # one started: a new user need not pick it

    def set_endpoint(self, text: str) -> None:
        """Choose the backend by name (running or saved), its picker label, or a URL."""
        self.endpoint_box.setEditText(text)
        self._on_endpoint_box_edited()

    def endpoint(self) -> ChatTarget | None:
        """The chosen backend as the picker shows it now; None when nothing usable is
        chosen."""
        text = self.endpoint_box.currentText().strip()
        index = self.endpoint_box.findText(text)
        if index >= 0:
            text = str(self.endpoint_box.itemData(index))
        try:
            return self.chat.resolve(text)
        except UserError:
            return None

    def _on_endpoint_box_edited(self, *_: object) -> None:
        target = self.endpoint()
        self.target = target
        self._show_expert_offer(None)
        if target is None:
            self.status_label.setText("Choose a backend" if not self.endpoint_box.currentText()
                                      .strip() else "Unknown backend")
            self.status_label.setToolTip("Pick a running backend or a saved endpoint, or "
                                         "type a URL such as http://127.0.0.1:8080.")
            return
        if target.kind == "backend":
            index = self.endpoint_box.findData(target.name)
            self.endpoint_box.blockSignals(True)
            self.endpoint_box.setCurrentIndex(index)
            self.endpoint_box.blockSignals(False)
        line = self.endpoint_box.lineEdit()
        if line is not None:
            line.setCursorPosition(0)  # the name first, not the end of a long label
        self.status_label.setText("Checking…")
        self._probe(target)
        if target.kind == "backend":
            self._services.tasks.run(lambda: self.chat.expert_offer(target),
                                     description=f"Reading the experts of {target.name}",
                                     on_done=lambda offer: self._on_offer_done(target, offer))
        else:  # a URL or saved endpoint: no plan to read, the reason alone
            self._show_expert_offer(self.chat.expert_offer(target))

    def _probe(self, target: ChatTarget) -> None:
        chat = self.chat

        def probe() -> tuple[ThinkingSupport | None, str | None]:
            return chat.probe(target), chat.api_key(target)

        self._services.tasks.run(probe, description=f"Asking {target.url} about its template",
                                 on_done=lambda found: self._on_probe_done(target, *found))

    def _on_probe_done(self, target: ChatTarget, support: ThinkingSupport | None,
                       api_key: str | None) -> None:
        if not shiboken6.isValid(self.status_label) or target != self.target:
            return  # the page was closed, or another backend chosen, while it ran
        self.role_box.set_backend(target.url, api_key)
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
        if self.target is not None:
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
            self.chat.save_endpoint(name, url, api_key)
        except UserError as exc:
            self._services.notifier.error("Saving the endpoint", exc)
            return
        self._reload_endpoints()
        self.set_endpoint(name)

    # ------------------------------------------------------------------ experts
    def _on_offer_done(self, target: ChatTarget, offer: ExpertOffer) -> None:
        if shiboken6.isValid(self.experts_box) and target == self.target:
            self._show_expert_offer(offer)

    def _show_expert_offer(self, offer: ExpertOffer | None) -> None:
        """Fill the Experts chip: the counts with their memory effect, or the reason."""
        self.expert_offer = offer
        box = self.experts_box
        box.blockSignals(True)
        box.clear()
        if offer is None or not offer.available:
            box.addItem("Experts: —")
            box.setEnabled(False)
            box.setToolTip(offer.reason if offer is not None else
                           "Experts per token: choose a running MoE backend first.")
        else:
            for option in offer.options:
                box.addItem(f"Experts: {offer.label(option)}", option.count)
            box.setCurrentIndex(max(box.findData(offer.current), 0))
            box.setEnabled(not self._relaunching)
            box.setToolTip("Experts per token, with what each count changes in memory (fit "
                           "planner). Choosing one relaunches the backend after one "
                           "confirmation; the conversation goes on.")
        box.blockSignals(False)

    def _on_experts_box_activated(self, index: int) -> None:
        offer, target = self.expert_offer, self.target
        count = self.experts_box.itemData(index)
        if offer is None or target is None or count is None or count == offer.current:
            return
        self.experts_box.setCurrentIndex(max(self.experts_box.findData(offer.current), 0))
        question = QMessageBox(
            QMessageBox.Icon.Question, "Relaunch with another expert count",
            f"Relaunch {target.name} with {count} experts per token? The server restarts "
            "(the model is loaded again); this conversation stays and goes on with it.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self)
        question.setDefaultButton(QMessageBox.StandardButton.Yes)
        question.finished.connect(
            lambda answer: self._on_experts_confirm_finished(target, int(count), answer))
        self.experts_confirm = question
        question.open()

    def _on_experts_confirm_finished(self, target: ChatTarget, count: int, answer: int) -> None:
        self.experts_confirm = None
        if answer != QMessageBox.StandardButton.Yes:
            return
        self._relaunching = True
        self.experts_box.setEnabled(False)
        self.status_label.setText(f"Relaunching with {count} experts…")
        self._update_buttons()
        chat = self.chat
        self._services.tasks.run(lambda: chat.relaunch_with_experts(target, count),
                                 description=f"Relaunching {target.name} with {count} experts",
                                 on_done=self._on_experts_relaunched,
                                 on_error=self._on_experts_relaunch_failed)

    def _on_experts_relaunched(self, target: ChatTarget) -> None:
        self._relaunching = False
        self._services.backends.refresh()
        plan = target.plan
        count = plan.experts if plan is not None and plan.experts else "its default number of"
        self._services.notifier.info(f"{target.name} runs again, with {count} experts per "
                                     "token")
        if shiboken6.isValid(self) and self.target is not None \
                and self.target.name == target.name:
            self.set_endpoint(target.name)
            self._update_buttons()

    def _on_experts_relaunch_failed(self, error: BaseException) -> None:
        self._relaunching = False
        self._services.notifier.error("Relaunching with another expert count", error)
        self._services.backends.refresh()
        if shiboken6.isValid(self):
            self.status_label.setText("The relaunch failed")
            self._show_expert_offer(self.expert_offer)
            self._update_buttons()

    # ------------------------------------------------------------------ presets
    def preset(self) -> Preset | None:
        name = self.preset_box.currentText()
        return None if name == NO_PRESET else self.chat.presets.all().get(name)

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

    def _settings(self) -> TurnSettings | None:
        """This turn's choices; None (told to the user) when the role is not ready."""
        try:
            role: RoleRequest | None = self.role_box.role_request()
        except RoleError as exc:
            self._services.notifier.error("Sending with a role", exc)
            return None
        return TurnSettings(thinking=self.thinking(), preset=self.preset(), role=role)

    def _ready_target(self) -> ChatTarget | None:
        if self._relaunching:
            self._services.notifier.warning("The backend is being relaunched; send again "
                                            "once it is ready.")
            return None
        if self.target is None:
            self._services.notifier.warning(
                "Choose a backend first: pick a running one in the Backend box above the "
                "chat (start one on the Backends page), or enter its URL "
                "(e.g. http://127.0.0.1:8080).")
        return self.target

    def send(self, text: str) -> None:
        """Send `text` as the user's next message (replacing the one being edited)."""
        if not text or self.controller.running:
            return
        target = self._ready_target()
        settings = self._settings() if target is not None else None
        if target is None or settings is None:
            return
        try:
            run = self.chat.send(self.conversation_id, text, target, settings,
                                 replacing=self._editing)
        except UserError as exc:  # the data disk is full: the text stays in the box
            self._services.notifier.error("Sending the message", exc)
            return
        self.conversation_id = run.conversation_id
        self._editing = None
        self.input.clear()
        self._start_reply(run)

    def regenerate(self) -> None:
        """Ask again for the last reply (it is replaced)."""
        if self.conversation_id is None or self.controller.running:
            return
        target = self._ready_target()
        settings = self._settings() if target is not None else None
        if target is None or settings is None:
            return
        try:
            run = self.chat.regenerate(self.conversation_id, target, settings)
        except UserError as exc:
            self._services.notifier.error("Regenerating the reply", exc)
            return
        if run is not None:
            self._start_reply(run)

    def edit_last(self) -> None:
        """Put the last user message back into the box; sending replaces it and what followed."""
        if self.conversation_id is None or self.controller.running:
            return
        message = self.chat.last_user_message(self.conversation_id)
        if message is not None:
            self._editing = message.id
            self.input.setPlainText(message.content)
            self.input.setFocus()

    def stop(self) -> None:
        self.controller.stop()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.stop()  # a stream must not outlive its page
        super().closeEvent(event)

    def _start_reply(self, run: ReplyRun) -> None:
        history = self.chat.history
        self._run = run
        self._reading += 1  # a read still under way is older than this
        self.message_list.sync([m for m in view_messages(history, run.conversation_id)
                                if m.id != run.message_id])
        message = history.message(run.message_id)
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
        if self._run is not None:
            self._run.close()
            self._run = None
        self._update_buttons()
        self.refresh_conversations()

    def _update_buttons(self) -> None:
        running = self.controller.running
        self.send_button.setText("Stop" if running else "Send")
        self.send_button.setEnabled(running or not self._relaunching)
        has_messages = bool(self.message_list.messages)
        self.regenerate_button.setEnabled(not running and has_messages)
        self.edit_button.setEnabled(not running and has_messages)
        for widget in (self.new_button, self.delete_button, self.preset_box):
            widget.setEnabled(not running)


def chat_page(services: Services, _open_settings: object) -> QWidget:
    """The registry's factory."""
    return ChatPage(services)
