"""The Roles page: the roles on the left; the editor, the backend check and the test box
on the right.

Everything blocking (checking a backend, trying a prompt, relaunching with a role) goes
through the task runner; the page talks to the roles through `RoleFeed` and to the
backends only to offer the one fix an unservable role has: relaunch with its adapters.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.errors import UserError
from app.roles.check import BackendRoles
from app.roles.role import Role
from app.roles.store import file_name
from app.runtime.backend import Backend
from ui.role_chip import colour_dot
from ui.role_editor import RoleEditorWidget
from ui.role_test_box import RoleTestBoxWidget
from ui.services import Services

log = logging.getLogger(__name__)


class RolesPage(QWidget):
    """List, editor, availability on a backend (with the fix), side-by-side test."""

    def __init__(self, services: Services) -> None:
        super().__init__()
        self._services = services
        self.feed = services.roles
        self.backend_roles: BackendRoles | None = None
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self._sidebar())
        splitter.addWidget(self._detail())
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([250, 850])
        QVBoxLayout(self).addWidget(splitter)
        self.feed.changed.connect(self._on_feed_changed)
        self.feed.chosen.connect(self._on_feed_chosen)
        for signal in (services.library.entry_added, services.library.entry_changed,
                       services.library.entry_removed):
            signal.connect(self._on_library_changed)
        self.editor.set_library(services.library.entries)
        self.refresh()
        if self.role_list.count():
            self.role_list.setCurrentRow(0)

    # ------------------------------------------------------------------ layout
    def _sidebar(self) -> QWidget:
        box = QWidget()
        box.setMaximumWidth(320)
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        self.role_list = QListWidget()
        self.role_list.currentItemChanged.connect(self._on_role_list_current_item_changed)
        layout.addWidget(self.role_list, 1)
        self.use_button = QPushButton("Use in chat")
        self.use_button.setToolTip("Make this the role of the current conversation and of "
                                   "new ones (as the Chat chip and the tray do)")
        self.use_button.clicked.connect(self._on_use_button_clicked)
        layout.addWidget(self.use_button)
        rows = [QHBoxLayout(), QHBoxLayout()]
        self.new_button = QPushButton("New")
        self.new_button.clicked.connect(self._on_new_button_clicked)
        self.duplicate_button = QPushButton("Duplicate")
        self.duplicate_button.clicked.connect(self._on_duplicate_button_clicked)
        self.delete_button = QPushButton("Delete")
        self.delete_button.clicked.connect(self._on_delete_button_clicked)
        self.import_button = QPushButton("Import…")
        self.import_button.clicked.connect(self._on_import_button_clicked)
        self.export_button = QPushButton("Export…")
        self.export_button.clicked.connect(self._on_export_button_clicked)
        for button in (self.new_button, self.duplicate_button, self.delete_button):
            rows[0].addWidget(button)
        for button in (self.import_button, self.export_button):
            rows[1].addWidget(button)
        for row in rows:
            layout.addLayout(row)
        return box

    def _detail(self) -> QWidget:
        pane = QSplitter(Qt.Orientation.Vertical)
        self.editor = RoleEditorWidget()
        self.editor.saved.connect(self._on_editor_saved)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(self.editor)
        pane.addWidget(scroll)
        lower = QWidget()
        layout = QVBoxLayout(lower)
        layout.setContentsMargins(0, 0, 0, 0)
        status = QHBoxLayout()
        self.status_label = QLabel("Enter a backend URL below to see whether it can serve "
                                   "this role.")
        self.status_label.setWordWrap(True)
        status.addWidget(self.status_label, 1)
        self.check_button = QPushButton("Check backend")
        self.check_button.clicked.connect(self._on_url_edit_finished)
        status.addWidget(self.check_button)
        self.relaunch_button = QPushButton("Relaunch with this role")
        self.relaunch_button.setToolTip("Stop the backend and start it again with its plan "
                                        "plus the adapters of this role and of every other "
                                        "role that fits its model preloaded")
        self.relaunch_button.clicked.connect(self._on_relaunch_button_clicked)
        self.relaunch_button.hide()
        status.addWidget(self.relaunch_button)
        layout.addLayout(status)
        self.test_box = RoleTestBoxWidget(self._services.tasks)
        self.test_box.url_edit.editingFinished.connect(self._on_url_edit_finished)
        layout.addWidget(self.test_box, 1)
        pane.addWidget(lower)
        pane.setSizes([430, 220])
        return pane

    # ------------------------------------------------------------------ list
    def refresh(self) -> None:
        """Rebuild the list from the feed, keeping the selection."""
        current = self.selected_name()
        self.role_list.blockSignals(True)
        self.role_list.clear()
        for role in self.feed.roles().values():
            item = QListWidgetItem(colour_dot(role.colour), role.label)
            item.setData(Qt.ItemDataRole.UserRole, role.name)
            self._describe(item, role)
            self.role_list.addItem(item)
            if role.name == current:
                self.role_list.setCurrentItem(item)
        self.role_list.blockSignals(False)

    def _describe(self, item: QListWidgetItem, role: Role) -> None:
        tip = role.description or role.name
        if role.name == self.feed.current:
            item.setText(f"{role.label}  (in use)")
        checked = self.backend_roles
        verdict = checked.availability.get(role.name) if checked is not None else None
        if checked is not None and verdict is not None and not verdict.ok:
            item.setForeground(self.palette().placeholderText())
            tip = f"Not available on {checked.url}: {verdict.reason}"
        item.setToolTip(tip)

    def selected_name(self) -> str | None:
        item = self.role_list.currentItem()
        return str(item.data(Qt.ItemDataRole.UserRole)) if item is not None else None

    def select(self, name: str) -> None:
        for row in range(self.role_list.count()):
            item = self.role_list.item(row)
            if item.data(Qt.ItemDataRole.UserRole) == name:
                self.role_list.setCurrentItem(item)

    def selected_role(self) -> Role | None:
        name = self.selected_name()
        return self.feed.roles().get(name) if name is not None else None

    def _on_role_list_current_item_changed(self, item: QListWidgetItem | None,
                                           _previous: QListWidgetItem | None) -> None:
        role = self.selected_role()
        if role is None:
            return
        self.editor.set_role(role)
        self.test_box.set_role(role)
        self.delete_button.setEnabled(not role.builtin or self._is_users_copy(role))
        self._show_status()

    def _is_users_copy(self, role: Role) -> bool:
        return (self.feed.store.user_folder / file_name(role.name)).exists()

    def _on_feed_changed(self) -> None:
        self.refresh()

    def _on_feed_chosen(self, _name: str) -> None:
        self.refresh()

    def _on_library_changed(self, _entry: object) -> None:
        self.editor.set_library(self._services.library.entries)

    # ------------------------------------------------------------------ editing
    def _on_editor_saved(self, role: Role, old_name: str) -> None:
        if role.name != old_name and role.name in self.feed.roles():
            self._services.notifier.warning(f"A role named {role.name!r} already exists.")
            return
        try:
            self.feed.save(role, replaces=old_name or None)
        except UserError as exc:
            self._services.notifier.error("Saving the role", exc)
            return
        self.select(role.name)

    def _new_name(self, base: str) -> str:
        names = set(self.feed.roles())
        if base not in names:
            return base
        return next(f"{base} {n}" for n in range(2, 1000) if f"{base} {n}" not in names)

    def _on_new_button_clicked(self) -> None:
        self._on_editor_saved(Role(self._new_name("New role")), "")

    def _on_duplicate_button_clicked(self) -> None:
        role = self.selected_role()
        if role is not None:
            self._on_editor_saved(replace(role, name=self._new_name(f"{role.name} copy"),
                                          builtin=False), "")

    def _on_delete_button_clicked(self) -> None:
        name = self.selected_name()
        if name is None:
            return
        try:
            self.feed.delete(name)
        except UserError as exc:
            self._services.notifier.error("Deleting the role", exc)

    def _on_use_button_clicked(self) -> None:
        name = self.selected_name()
        if name is not None:
            self.feed.choose(name)

    def _on_import_button_clicked(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Import a role", "", "Roles (*.toml)")
        if name:
            self.import_role(Path(name))

    def import_role(self, path: Path) -> None:
        try:
            self.feed.add_from(lambda store: store.import_file(path))
        except UserError as exc:
            self._services.notifier.error("Importing the role", exc)

    def _on_export_button_clicked(self) -> None:
        role = self.selected_role()
        if role is None:
            return
        name, _ = QFileDialog.getSaveFileName(self, "Export the role",
                                              f"{role.name}.toml", "Roles (*.toml)")
        if name:
            self.export_role(role.name, Path(name))

    def export_role(self, name: str, path: Path) -> None:
        try:
            self.feed.store.export_file(name, path)
        except UserError as exc:
            self._services.notifier.error("Exporting the role", exc)
            return
        self._services.notifier.info(f"Exported role {name!r} to {path}")

    # ------------------------------------------------------------------ backend
    def check_backend(self, managed: Backend | None = None) -> None:
        """Ask the backend in the test box what it serves (on the task runner).

        `managed`: the Rigdeck backend there, when known better than the feed's last list.
        """
        url = self.test_box.url_edit.text().strip()
        if not url:
            return
        self.status_label.setText(f"Checking {url}…")
        managed = managed or self.feed.backend_at(url)
        if managed is not None:  # a backend Rigdeck started: its own key
            self.test_box.api_key = managed.api_key
        self.feed.check_backend(url, self.test_box.api_key,
                                self._on_backend_checked, self._on_backend_check_failed)

    def _on_url_edit_finished(self) -> None:
        self.check_backend()

    def _on_backend_checked(self, result: BackendRoles) -> None:
        if not shiboken6.isValid(self):
            return
        self.backend_roles = result
        self.refresh()
        self._show_status()

    def _on_backend_check_failed(self, error: BaseException) -> None:
        if shiboken6.isValid(self):
            self.backend_roles = None
            self.status_label.setText(str(error))
            self.relaunch_button.hide()

    def _show_status(self) -> None:
        role = self.selected_role()
        result = self.backend_roles
        if role is None or result is None:
            self.relaunch_button.hide()
            return
        verdict = result.availability.get(role.name)
        if verdict is None:
            self.status_label.setText(f"{result.url} has not been checked for this role yet.")
        elif verdict.ok:
            self.status_label.setText(f"{result.url} can serve {role.label}.")
        else:
            self.status_label.setText(f"{result.url} cannot serve {role.label}: "
                                      f"{verdict.reason}")
        backend = self.managed_backend()
        self.relaunch_button.setVisible(bool(verdict and verdict.fix == "relaunch"))
        self.relaunch_button.setEnabled(backend is not None)
        self.relaunch_button.setToolTip(
            f"Stop {backend.name} and start it again with this role's adapters (and those of "
            "every other role that fits) preloaded"
            if backend is not None else
            "Only a backend Rigdeck started can be relaunched; start one from the "
            "Backends page")

    def managed_backend(self) -> Backend | None:
        """The Rigdeck-managed backend behind the checked URL, if there is one."""
        if self.backend_roles is None:
            return None
        return self.feed.backend_at(self.backend_roles.url)

    def _on_relaunch_button_clicked(self) -> None:
        role = self.selected_role()
        backend = self.managed_backend()
        if role is None or backend is None:
            return
        self.relaunch_button.setEnabled(False)
        self.status_label.setText(f"Relaunching {backend.name} with {role.label} and every "
                                  "other role that fits its model…")
        self.feed.relaunch_with_roles(backend, role.name, self._on_relaunched,
                                      self._on_relaunch_failed)

    def _on_relaunched(self, backend: Backend) -> None:
        self._services.backends.refresh()
        if shiboken6.isValid(self):
            self.check_backend(backend)

    def _on_relaunch_failed(self, error: BaseException) -> None:
        self._services.notifier.error("Relaunching with the role", error)
        if shiboken6.isValid(self):
            self.status_label.setText(f"The relaunch failed: {error}")
            self.relaunch_button.setEnabled(True)


def roles_page(services: Services, _open_settings: object) -> QWidget:
    """The registry's factory; the adapter picker needs the library scanned."""
    services.library.start()
    return RolesPage(services)
