"""The Roles page's test box: one prompt sent twice to a backend, without the role and
with it, answers side by side, so the user sees what the role changes.

Both requests go out on the task runner, one after the other, with the same sampling
apart from the role's own; an error (no server, a role the backend cannot serve) shows
in place of the answers.
"""

from __future__ import annotations

import shiboken6
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QGridLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QWidget,
)

from app.roles.compare import compare
from app.roles.role import Role
from ui.tasks import TaskRunner


class RoleTestBoxWidget(QWidget):
    """URL, prompt, Send; two read-only answers. `finished` fires after each comparison."""

    finished = Signal()

    def __init__(self, tasks: TaskRunner) -> None:
        super().__init__()
        self.tasks = tasks
        self.role: Role | None = None
        self.api_key: str | None = None
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        self.url_edit = QLineEdit()
        self.url_edit.setPlaceholderText("Backend URL, e.g. http://127.0.0.1:8080")
        self.prompt_edit = QLineEdit()
        self.prompt_edit.setPlaceholderText("A prompt to try with and without the role")
        self.prompt_edit.returnPressed.connect(self.send)
        self.send_button = QPushButton("Compare")
        self.send_button.clicked.connect(self.send)
        grid.addWidget(self.url_edit, 0, 0)
        grid.addWidget(self.prompt_edit, 0, 1)
        grid.addWidget(self.send_button, 0, 2)
        self.without_label = QLabel("Without the role")
        self.with_label = QLabel("With the role")
        self.without_view = QPlainTextEdit()
        self.with_view = QPlainTextEdit()
        for column, (label, view) in enumerate(((self.without_label, self.without_view),
                                                (self.with_label, self.with_view))):
            view.setReadOnly(True)
            grid.addWidget(label, 1, column * 1, 1, 1 + column)
            grid.addWidget(view, 2, column * 1, 1, 1 + column)
        grid.setColumnStretch(0, 1)
        grid.setColumnStretch(1, 1)

    def set_role(self, role: Role) -> None:
        """Test `role` from now on; answers of another role are cleared, not kept beside it."""
        if self.role is None or self.role.name != role.name:
            self.without_view.clear()
            self.with_view.clear()
        self.role = role
        self.with_label.setText(f"With {role.label}")

    def send(self) -> None:
        """Compare the prompt's answers without and with the role (off the GUI thread)."""
        url = self.url_edit.text().strip()
        prompt = self.prompt_edit.text().strip()
        if self.role is None or not url or not prompt:
            self.without_view.setPlainText("Enter a backend URL and a prompt.")
            return
        role, key = self.role, self.api_key
        self.send_button.setEnabled(False)
        self.without_view.setPlainText("…")
        self.with_view.setPlainText("…")
        self.tasks.run(lambda: compare(url, key, role, prompt),
                       description=f"Trying role {role.name}", on_done=self._on_compared,
                       on_error=self._on_compare_failed)

    def _on_compared(self, answers: tuple[str, str]) -> None:
        if not shiboken6.isValid(self):
            return
        self.without_view.setPlainText(answers[0])
        self.with_view.setPlainText(answers[1])
        self.send_button.setEnabled(True)
        self.finished.emit()

    def _on_compare_failed(self, error: BaseException) -> None:
        if not shiboken6.isValid(self):
            return
        self.without_view.setPlainText(str(error))
        self.with_view.setPlainText("")
        self.send_button.setEnabled(True)
        self.finished.emit()
