"""Pieces the Settings page's groups share: a row's label (the words messages use for the
setting), a control with its note below, and a path field with Browse…."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from app.settings import shown_settings

ERROR_STYLE = "color: #b3261e;"
"""How a refused value's note is shown."""


def setting_label(name: str) -> str:
    """The row's label: the words messages use for the setting (`setting_place`)."""
    return shown_settings()[name][1]


def stacked(top: QWidget, below: QWidget) -> QWidget:
    """`top` with `below` (its note) under it, as one form field."""
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(2)
    layout.addWidget(top)
    layout.addWidget(below)
    return box


def path_row(edit: QLineEdit, on_browse: Callable[[], None]) -> tuple[QWidget, QLabel]:
    """`edit` with a Browse… button, and a note under them (hidden until something is
    said); the field and the note."""
    browse = QPushButton("Browse…")
    browse.clicked.connect(on_browse)
    row = QHBoxLayout()
    row.setContentsMargins(0, 0, 0, 0)
    row.addWidget(edit, 1)
    row.addWidget(browse)
    line = QWidget()
    line.setLayout(row)
    note = QLabel()
    note.setWordWrap(True)
    note.setVisible(False)
    return stacked(line, note), note
