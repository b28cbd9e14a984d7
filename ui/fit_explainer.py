"""The model's settings, explained: which a launch may change, and which the weights fix.

Fixed settings are drawn locked and greyed, with the reason beside them, so nobody
hunts for a flag that cannot exist.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from app.fit.explainer import Setting

log = logging.getLogger(__name__)

LOCKED = "fixed"
CHANGEABLE = "at launch"
COLUMNS = ("Setting", "Value", "Can change", "Why")


def lock_icon(size: int = 14) -> QIcon:
    """A small padlock, painted (no icon theme has one everywhere, and emoji fonts vary)."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    colour = QColor("#6b7280")
    painter.setPen(QPen(colour, 1.6))
    painter.drawArc(QRectF(size * 0.28, size * 0.08, size * 0.44, size * 0.6), 0, 180 * 16)
    painter.drawLine(int(size * 0.28), int(size * 0.38), int(size * 0.28), int(size * 0.5))
    painter.drawLine(int(size * 0.72), int(size * 0.38), int(size * 0.72), int(size * 0.5))
    painter.fillRect(QRectF(size * 0.15, size * 0.45, size * 0.7, size * 0.5), colour)
    painter.end()
    return QIcon(pixmap)


class ModelSettingsTable(QTableWidget):
    """One row per `Setting` from `explain(ModelInfo)`; the meaning is each row's tooltip."""

    def __init__(self) -> None:
        super().__init__(0, len(COLUMNS))
        self.setHorizontalHeaderLabels(list(COLUMNS))
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setWordWrap(False)
        self.setAlternatingRowColors(True)
        header = self.horizontalHeader()
        for col in range(3):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.settings: list[Setting] = []
        self._lock = lock_icon()

    def show_settings(self, settings: list[Setting]) -> None:
        self.settings = settings
        self.setRowCount(len(settings))
        for row, s in enumerate(settings):
            cells = (s.name, s.value, CHANGEABLE if s.runtime else LOCKED, s.why)
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(f"{s.name}: {s.meaning}. {s.why}.")
                if col == 2 and not s.runtime:
                    item.setIcon(self._lock)
                if not s.runtime:
                    # drawn in the disabled colour: the weights decide it, no flag can
                    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
                self.setItem(row, col, item)
        self.resizeRowsToContents()

    def row_texts(self) -> list[tuple[str, ...]]:
        """Each row as the user reads it, for tests."""
        out = []
        for row in range(self.rowCount()):
            out.append(
                tuple(
                    (item.text() if (item := self.item(row, col)) is not None else "")
                    for col in range(self.columnCount())
                )
            )
        return out
