"""The Settings page's Hosts group: the Docker engines backends run on — this machine's
and the ones added over ssh://, tcp:// (TLS) or unix:// — each with the doctor's verdict
and its GPUs once tested, host networking per host, and Add / Test / Remove. Everything
that asks an engine or writes hosts.toml goes through the BackendFeed's task runner."""

from __future__ import annotations

import html
from dataclasses import replace
from functools import partial

import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.runtime.doctor import HostReport
from app.runtime.hosts import LOCAL, Host
from app.settings import Settings, shown_settings
from ui.backend_host_panel import doctor_text
from ui.services import Services
from ui.settings_rows import ERROR_STYLE

COLUMNS = ("Host", "URL", "Networking", "Doctor and GPUs")
ADD_HOST = "Add host…"
"""The button's text: messages point at it (settings_control("Hosts", ADD_HOST))."""


def _networking(host: Host) -> str:
    return "host network" if host.host_network else f"ports on {host.bind_address}"


def verdict(report: HostReport) -> str:
    """One line for the table: ok or the first failure, then the GPUs found."""
    gpus = ", ".join(f"{g.index}: {g.name}" for g in report.gpus) or "none"
    state = (f"✗ {report.failed[0].name}" if report.failed else "✓ ready")
    return f"{state} · GPUs: {gpus}"


class AddHostDialog(QDialog):
    """Name, URL, networking and (tcp://) certificates of a host to add; `host()`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add a Docker host")
        self.setMinimumWidth(520)
        form = QFormLayout(self)
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("e.g. gpu-server")
        form.addRow("Name", self.name_edit)
        self.url_edit = QLineEdit()
        self.url_edit.setPlaceholderText("ssh://user@server, tcp://server:2376 or unix:///path")
        form.addRow("URL", self.url_edit)
        self.network_box = QCheckBox("Host networking (engines without a bridge network)")
        form.addRow(self.network_box)
        self.certs_edit = QLineEdit()
        self.certs_edit.setPlaceholderText("DOCKER_CERT_PATH or ~/.docker")
        self.certs_edit.setToolTip("tcp:// with TLS: the folder with ca.pem, cert.pem, key.pem")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._on_browse_clicked)
        certs = QHBoxLayout()
        certs.addWidget(self.certs_edit, 1)
        certs.addWidget(browse)
        form.addRow("TLS certificates", certs)
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet(ERROR_STYLE)
        form.addRow(self.error_label)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        self.add_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.add_button.setText("Add and test")
        buttons.accepted.connect(self.accepted_by_user)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.on_add: partial[None] | None = None

    def _on_browse_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "TLS certificates folder")
        if folder:
            self.certs_edit.setText(folder)

    def host(self) -> Host:
        return Host(self.name_edit.text().strip(), self.url_edit.text().strip(),
                    host_network=self.network_box.isChecked(),
                    cert_path=self.certs_edit.text().strip())

    def accepted_by_user(self) -> None:
        """Add: the group saves it and closes the dialog, or shows why not here."""
        self.error_label.clear()
        self.add_button.setEnabled(False)
        if self.on_add is not None:
            self.on_add()

    def refused(self, error: BaseException) -> None:
        if shiboken6.isValid(self):
            self.add_button.setEnabled(True)
            self.error_label.setText(str(error))


class HostsGroup(QGroupBox):
    """The hosts table with Add / Test / Remove and the selected host's networking."""

    def __init__(self, services: Services) -> None:
        super().__init__("Hosts")
        self._services = services
        self._feed = services.backends
        self.reports: dict[str, HostReport] = {}
        self.add_dialog: AddHostDialog | None = None
        layout = QVBoxLayout(self)
        hint = QLabel("Where backends run: this machine's Docker engine and the engines you "
                      "add. Test runs the host doctor there (a probe container) and shows "
                      "the GPUs it hands to containers.")
        hint.setWordWrap(True)
        layout.addWidget(hint)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        for column in range(len(COLUMNS) - 1):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        self.table.setMinimumHeight(120)
        self.table.itemSelectionChanged.connect(self._on_table_selection_changed)
        layout.addWidget(self.table)
        self.network_box = QCheckBox(shown_settings()["local_host_network"][1])
        self.network_box.setToolTip(Settings.description("local_host_network"))
        self.network_box.toggled.connect(self._on_network_box_toggled)
        row = QHBoxLayout()
        row.addWidget(self.network_box)
        row.addStretch(1)
        self.add_button = QPushButton(ADD_HOST)
        self.add_button.clicked.connect(self.open_add_dialog)
        self.test_button = QPushButton("Test")
        self.test_button.clicked.connect(self._on_test_button_clicked)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self._on_remove_button_clicked)
        for button in (self.add_button, self.test_button, self.remove_button):
            row.addWidget(button)
        layout.addLayout(row)
        self.details_label = QLabel()
        self.details_label.setWordWrap(True)
        self.details_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.details_label)
        self.show_hosts(select=LOCAL)

    # ------------------------------------------------------------------ the table
    def hosts(self) -> list[Host]:
        """The Docker hosts, this machine's first (local processes are not an engine)."""
        return [h for h in self._feed.service.hosts.values() if h.kind == "docker"]

    def show_hosts(self, select: str | None = None) -> None:
        keep = select or self.selected_name()
        self.table.blockSignals(True)
        self.table.setRowCount(0)
        for host in self.hosts():
            row = self.table.rowCount()
            self.table.insertRow(row)
            report = self.reports.get(host.name)
            status = verdict(report) if report else "not tested yet: Test"
            for column, text in enumerate((host.name, host.url, _networking(host), status)):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, host.name)
                self.table.setItem(row, column, item)
        self.table.blockSignals(False)
        names = [h.name for h in self.hosts()]
        self.table.selectRow(names.index(keep) if keep in names else 0)
        self._on_table_selection_changed()

    def selected_name(self) -> str | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows:
            return None
        item = self.table.item(rows[0].row(), 0)
        return item.text() if item is not None else None

    def _selected_host(self) -> Host | None:
        name = self.selected_name()
        return self._feed.service.hosts.get(name) if name else None

    def _on_table_selection_changed(self) -> None:
        host = self._selected_host()
        self.network_box.blockSignals(True)
        self.network_box.setChecked(bool(host and host.host_network))
        self.network_box.blockSignals(False)
        self.network_box.setEnabled(host is not None)
        self.test_button.setEnabled(host is not None)
        self.remove_button.setEnabled(host is not None and host.name != LOCAL)
        report = self.reports.get(host.name) if host else None
        self.details_label.setText(doctor_text(report) if report else "")

    # ------------------------------------------------------------------ actions
    def _on_network_box_toggled(self, checked: bool) -> None:
        host = self._selected_host()
        if host is None:
            return
        if host.name == LOCAL:  # the local engine's is a setting; the service follows it
            self._services.settings.set("local_host_network", checked)
            self.show_hosts(select=LOCAL)
            return
        self._feed.add_host(replace(host, host_network=checked),
                            on_done=lambda _none: self.show_hosts(select=host.name),
                            on_error=self._say)

    def open_add_dialog(self) -> AddHostDialog:
        dialog = AddHostDialog(self)
        dialog.on_add = partial(self._add_from, dialog)
        self.add_dialog = dialog
        dialog.open()
        return dialog

    def _add_from(self, dialog: AddHostDialog) -> None:
        host = dialog.host()

        def added(_none: None) -> None:
            dialog.accept()
            self.show_hosts(select=host.name)
            self.test(host.name)

        self._feed.add_host(host, on_done=added, on_error=dialog.refused)

    def _on_test_button_clicked(self) -> None:
        name = self.selected_name()
        if name:
            self.test(name)

    def test(self, name: str) -> None:
        """Run the doctor on host `name`; the table and details show what it found."""
        self._set_status(name, "testing…")
        self._feed.diagnose(partial(self._on_tested, name), only=name)

    def _on_tested(self, name: str, reports: list[HostReport]) -> None:
        if not shiboken6.isValid(self):
            return
        for report in reports:
            self.reports[report.host] = report
        self.show_hosts(select=name)

    def _set_status(self, name: str, text: str) -> None:
        for row in range(self.table.rowCount()):
            item = self.table.item(row, 0)
            if item is not None and item.text() == name:
                self.table.setItem(row, 3, QTableWidgetItem(text))

    def _on_remove_button_clicked(self) -> None:
        name = self.selected_name()
        if not name or name == LOCAL:
            return
        self._feed.remove_host(name, on_done=lambda _none: self._removed(name),
                               on_error=self._say)

    def _removed(self, name: str) -> None:
        self.reports.pop(name, None)
        self.show_hosts(select=LOCAL)

    def _say(self, error: BaseException) -> None:
        if shiboken6.isValid(self):
            self.details_label.setText(
                f'<span style="{ERROR_STYLE}">{html.escape(str(error))}</span>')
