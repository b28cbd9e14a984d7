"""The Gateway page: the On switch with the base URL, the model ids (with each backend's
idle stop and on-demand start), the keys, the live requests and the usage per key and role.

The page holds layout and handlers only: it talks to the Gateway through `GatewayFeed`,
whose every blocking step (sockets, keyring, files, SQLite) runs on the task runner.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.gateway.keys import GatewayKey
from app.gateway.records import RequestRecord, Usage
from app.settings import setting_place
from ui.gateway_feed import GatewayFeed, ModelRow
from ui.gateway_tables import (
    LIVE_ROWS,
    TTL_COLUMN,
    KeysTableModel,
    ListTableModel,
    ModelsTableModel,
    RequestsTableModel,
    TtlDelegate,
    UsageTableModel,
)
from ui.questions import ask
from ui.services import Services
from ui.settings_rows import ERROR_STYLE

log = logging.getLogger(__name__)

WARNING_STYLE = ("background: #fef3c7; color: #78350f; border-radius: 6px; padding: 6px;")
ON_STYLE = "color: #1b5e20; font-weight: bold;"


def _table(model: ListTableModel, *, stretch: int | None = None) -> QTableView:
    view = QTableView()
    view.setModel(model)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.setAlternatingRowColors(True)
    view.setWordWrap(False)
    view.verticalHeader().setVisible(False)
    view.verticalHeader().setDefaultSectionSize(24)
    header = view.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setStretchLastSection(stretch is None)
    if stretch is not None:
        header.setSectionResizeMode(stretch, QHeaderView.ResizeMode.Stretch)
    return view


class NewKeyDialog(QDialog):
    """The key just made, shown this once with Copy (the keyring keeps it)."""

    def __init__(self, name: str, key: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Gateway key {name}")
        layout = QVBoxLayout(self)
        text = QLabel(f"The key for <b>{name}</b>. Give it to the program as its OpenAI API "
                      "key; it is shown here once (the system keyring keeps it).")
        text.setWordWrap(True)
        layout.addWidget(text)
        row = QHBoxLayout()
        self.key_edit = QLineEdit(key)
        self.key_edit.setReadOnly(True)
        self.key_edit.setMinimumWidth(420)
        self.key_edit.selectAll()
        row.addWidget(self.key_edit, 1)
        self.copy_button = QPushButton("Copy")
        self.copy_button.clicked.connect(self._on_copy_button_clicked)
        row.addWidget(self.copy_button)
        layout.addLayout(row)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def _on_copy_button_clicked(self) -> None:
        QGuiApplication.clipboard().setText(self.key_edit.text())
        self.copy_button.setText("Copied")


class GatewayPage(QWidget):
    """On/off with the URL; model ids, keys, requests and usage."""

    def __init__(self, services: Services, open_settings: Callable[[], None]) -> None:
        super().__init__()
        self.feed: GatewayFeed = services.gateway
        self._services = services
        self._open_settings = open_settings
        self.key_name_dialog: QInputDialog | None = None
        self.new_key_dialog: NewKeyDialog | None = None
        self.revoke_question: QMessageBox | None = None
        layout = QVBoxLayout(self)
        layout.addLayout(self._switch_row())
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.status_label)
        self.warning_label = QLabel()
        self.warning_label.setWordWrap(True)
        self.warning_label.setStyleSheet(WARNING_STYLE)
        layout.addWidget(self.warning_label)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(self._models_group())
        splitter.addWidget(self._requests_group())
        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.setChildrenCollapsible(False)
        bottom.addWidget(self._keys_group())
        bottom.addWidget(self._usage_group())
        bottom.setSizes([400, 600])
        splitter.addWidget(bottom)
        splitter.setSizes([300, 200, 200])
        layout.addWidget(splitter, 1)

        self.feed.state_changed.connect(self._on_feed_state_changed)
        self.feed.busy_changed.connect(self._on_feed_busy_changed)
        self.feed.start_failed.connect(self._on_feed_start_failed)
        self.feed.request_started.connect(self._on_feed_request_started)
        self.feed.request_finished.connect(self._on_feed_request_finished)
        self.feed.models_updated.connect(self._on_feed_models_updated)
        self.feed.keys_updated.connect(self._on_feed_keys_updated)
        self.feed.usage_updated.connect(self._on_feed_usage_updated)
        self.feed.history_read.connect(self._on_feed_history_read)
        services.backends.updated.connect(self._on_backends_updated)
        services.roles.changed.connect(self._on_roles_changed)
        services.settings.changed.connect(self._on_settings_changed)
        self._show_state()
        if self.feed.problem:
            self._on_feed_start_failed(self.feed.problem)
        self.feed.refresh_models()
        self.feed.refresh_keys()
        self.feed.refresh_usage()
        self.feed.read_history(LIVE_ROWS)

    # ------------------------------------------------------------------ layout
    def _switch_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.switch = QCheckBox("On")
        self.switch.setToolTip("Serve one OpenAI-compatible endpoint for every running "
                               "model and role")
        self.switch.setStyleSheet("QCheckBox { font-weight: bold; }")
        self.switch.toggled.connect(self._on_switch_toggled)
        row.addWidget(self.switch)
        row.addSpacing(12)
        row.addWidget(QLabel("Base URL"))
        self.url_edit = QLineEdit()
        self.url_edit.setReadOnly(True)
        self.url_edit.setMinimumWidth(280)
        self.url_edit.setToolTip("What a client (n8n, an agent, the openai package) uses as "
                                 "its base URL")
        row.addWidget(self.url_edit, 1)
        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("Copy the base URL")
        self.copy_button.clicked.connect(self._on_copy_button_clicked)
        row.addWidget(self.copy_button)
        self.settings_button = QPushButton("Address, port and limits…")
        self.settings_button.setToolTip(f"Change them in {setting_place('gateway_address')}")
        self.settings_button.clicked.connect(self._open_settings)
        row.addWidget(self.settings_button)
        return row

    def _models_group(self) -> QGroupBox:
        group = QGroupBox("Model ids")
        layout = QVBoxLayout(group)
        self.models = ModelsTableModel(self)
        self.models.ttl_edited.connect(self._on_models_ttl_edited)
        self.models.on_demand_edited.connect(self._on_models_on_demand_edited)
        self.models_view = _table(self.models, stretch=0)
        self.models_view.setItemDelegateForColumn(TTL_COLUMN, TtlDelegate(self.models_view))
        self.models_view.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                         | QAbstractItemView.EditTrigger.EditKeyPressed)
        layout.addWidget(self.models_view, 1)
        self.models_note = QLabel()
        self.models_note.setWordWrap(True)
        layout.addWidget(self.models_note)
        return group

    def _keys_group(self) -> QGroupBox:
        group = QGroupBox("Keys")
        layout = QVBoxLayout(group)
        self.keys = KeysTableModel(self)
        self.keys_view = _table(self.keys, stretch=0)
        self.keys_view.selectionModel().selectionChanged.connect(self._on_keys_selection_changed)
        layout.addWidget(self.keys_view, 1)
        buttons = QHBoxLayout()
        self.create_key_button = QPushButton("Create key…")
        self.create_key_button.clicked.connect(self._on_create_key_button_clicked)
        self.copy_key_button = QPushButton("Copy key")
        self.copy_key_button.setToolTip("Copy the selected key (from the keyring) to paste "
                                        "into a client's API key field")
        self.copy_key_button.setEnabled(False)
        self.copy_key_button.clicked.connect(self._on_copy_key_button_clicked)
        self.revoke_button = QPushButton("Revoke")
        self.revoke_button.setEnabled(False)
        self.revoke_button.clicked.connect(self._on_revoke_button_clicked)
        buttons.addWidget(self.create_key_button)
        buttons.addWidget(self.copy_key_button)
        buttons.addWidget(self.revoke_button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        self.keys_note = QLabel()
        self.keys_note.setWordWrap(True)
        layout.addWidget(self.keys_note)
        return group

    def _requests_group(self) -> QGroupBox:
        group = QGroupBox("Requests")
        layout = QVBoxLayout(group)
        self.requests = RequestsTableModel(self.feed.live(), self)
        self.requests_view = _table(self.requests, stretch=len(self.requests.columns) - 1)
        layout.addWidget(self.requests_view)
        return group

    def _usage_group(self) -> QGroupBox:
        group = QGroupBox("Usage per key and role")
        layout = QVBoxLayout(group)
        self.usage = UsageTableModel(self)
        self.usage_view = _table(self.usage, stretch=0)
        layout.addWidget(self.usage_view)
        return group

    # ------------------------------------------------------------------ state
    def _show_state(self) -> None:
        url = self.feed.url
        self.switch.blockSignals(True)
        self.switch.setChecked(bool(url) or (self.feed.busy and self.switch.isChecked()))
        self.switch.blockSignals(False)
        self.switch.setEnabled(not self.feed.busy)
        self.url_edit.setText(url or self.feed.configured_url())
        if self.feed.busy:
            self.status_label.setStyleSheet("")
            self.status_label.setText("Starting…" if self.switch.isChecked() else "Stopping…")
        elif url:
            self.status_label.setStyleSheet(ON_STYLE)
            count = sum(1 for row in self.models.rows if row.served)
            self.status_label.setText(
                f"On — serving {count} model id{'s' if count != 1 else ''} at {url}")
        else:
            self.status_label.setStyleSheet("")
            self.status_label.setText("Off. Turn it on to serve every running model and role "
                                      "at this URL, for n8n, agents and scripts.")
        if self.feed.loopback:
            self.warning_label.hide()
        else:
            self.warning_label.setText(
                f"⚠ The address {self.feed.address} lets other machines in "
                f"({setting_place('gateway_address')}): every request must bring a gateway "
                "key, and the Gateway starts only once one exists.")
            self.warning_label.show()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.feed.refresh_models()

    # ------------------------------------------------------------------ handlers
    def _on_switch_toggled(self, on: bool) -> None:
        self.status_label.setStyleSheet("")
        if on:
            self.feed.start()
        else:
            self.feed.stop()

    def _on_copy_button_clicked(self) -> None:
        QGuiApplication.clipboard().setText(self.url_edit.text())

    def _on_feed_state_changed(self, _url: str) -> None:
        self._show_state()
        self.feed.refresh_models()

    def _on_feed_busy_changed(self, _busy: bool) -> None:
        self._show_state()

    def _on_feed_start_failed(self, problem: str) -> None:
        self._show_state()
        self.status_label.setStyleSheet(ERROR_STYLE)
        self.status_label.setText(f"Not started: {problem}")

    def _on_feed_request_started(self, record: RequestRecord) -> None:
        self.requests.add(record)

    def _on_feed_request_finished(self, record: RequestRecord) -> None:
        self.requests.update(record)

    def _on_feed_models_updated(self, rows: list[ModelRow]) -> None:
        self.models.set_rows(rows)
        if not rows:
            self.models_note.setText("No model ids yet: start a backend on the Backends page "
                                     "(its plan is kept, so a request can start it again), "
                                     "or make a role for a running one on the Roles page.")
        else:
            self.models_note.setText("A role's id reaches its backend with the role's "
                                     "adapter, prompt and sampling. Double-click Idle stop "
                                     "to change it.")
        if self.feed.url:
            self._show_state()

    def _on_feed_keys_updated(self, keys: list[GatewayKey]) -> None:
        self.keys.set_rows(keys)
        self.revoke_button.setEnabled(bool(self.keys_view.selectionModel().selectedRows()))
        if not keys:
            self.keys_note.setText("No keys: any program on this computer may use the "
                                   "Gateway. Once a key exists, every request needs one.")
        else:
            self.keys_note.setText("Every request needs one of these keys.")
        self.keys_note.setStyleSheet("")

    def _on_feed_history_read(self, records: list[RequestRecord]) -> None:
        """Earlier requests below the ones that came meanwhile (each shown once)."""
        shown = {id(r) for r in self.requests.rows}
        started = {(r.started, r.client, r.model) for r in self.requests.rows}
        older = [r for r in records if id(r) not in shown
                 and (r.started, r.client, r.model) not in started]
        self.requests.set_rows([*self.requests.rows, *older][:LIVE_ROWS])

    def _on_feed_usage_updated(self, usage: list[Usage]) -> None:
        self.usage.set_rows(usage)

    def _on_backends_updated(self, _backends: object) -> None:
        if self.isVisible():
            self.feed.refresh_models()

    def _on_roles_changed(self) -> None:
        self.feed.refresh_models()

    def _on_settings_changed(self, name: str, _value: object) -> None:
        if name in ("gateway_address", "gateway_port"):
            self._show_state()

    def _on_models_ttl_edited(self, row: ModelRow, seconds: int) -> None:
        self.feed.set_ttl(row, seconds)

    def _on_models_on_demand_edited(self, row: ModelRow, on: bool) -> None:
        self.feed.set_on_demand(row, on)

    # ------------------------------------------------------------------ keys
    def _on_keys_selection_changed(self, *_: object) -> None:
        chosen = bool(self.keys_view.selectionModel().selectedRows())
        self.revoke_button.setEnabled(chosen)
        self.copy_key_button.setEnabled(chosen)
        self.copy_key_button.setText("Copy key")

    def _on_copy_key_button_clicked(self) -> None:
        rows = self.keys_view.selectionModel().selectedRows()
        if not rows:
            return
        key: GatewayKey = self.keys.row(rows[0].row())
        self.feed.reveal_key(key.name, self._on_key_revealed, self._on_key_failed)

    def _on_key_revealed(self, key: str) -> None:
        QGuiApplication.clipboard().setText(key)
        self.copy_key_button.setText("Copied")

    def _on_create_key_button_clicked(self) -> None:
        dialog = QInputDialog(self)
        dialog.setWindowTitle("Create a gateway key")
        dialog.setLabelText("Who will use it? A name such as n8n or coding-agent:")
        dialog.setInputMode(QInputDialog.InputMode.TextInput)
        dialog.textValueSelected.connect(self._on_key_name_chosen)
        self.key_name_dialog = dialog
        dialog.open()

    def _on_key_name_chosen(self, name: str) -> None:
        name = name.strip()
        if not name:
            return
        self.create_key_button.setEnabled(False)
        self.feed.create_key(name, lambda key: self._on_key_created(name, key),
                             self._on_key_failed)

    def _on_key_created(self, name: str, key: str) -> None:
        self.create_key_button.setEnabled(True)
        self.new_key_dialog = NewKeyDialog(name, key, self)
        self.new_key_dialog.open()

    def _on_key_failed(self, error: BaseException) -> None:
        self.create_key_button.setEnabled(True)
        self.keys_note.setStyleSheet(ERROR_STYLE)
        self.keys_note.setText(str(error))

    def _on_revoke_button_clicked(self) -> None:
        rows = self.keys_view.selectionModel().selectedRows()
        if not rows:
            return
        key: GatewayKey = self.keys.row(rows[0].row())
        self.revoke_question = ask(
            self, f"Revoke key {key.name}?",
            f"Programs that use {key.name} (…{key.hint}) are refused from their next "
            "request. This cannot be undone.",
            lambda: self.feed.revoke_key(key.name, self._on_key_failed), default_yes=False)


def gateway_page(services: Services, open_settings: Callable[[], None]) -> QWidget:
    return GatewayPage(services, open_settings)

