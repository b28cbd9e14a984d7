"""The Gateway page's tables: Qt models adapting Qt-free lists (model ids, keys, requests,
usage), each column declared once with its title, its text and its tooltip.

The requests table follows the feed's events: a started request is a new first row, a
finished one changes its row in place; the oldest rows leave beyond `LIVE_ROWS`. The model
ids table lets the backend's own row edit its idle stop and on-demand start; the edit is
announced (`ttl_edited`, `on_demand_edited`) and written by the page through the feed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QSpinBox, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from app.gateway.keys import GatewayKey
from app.gateway.records import RequestRecord, Usage
from ui.gateway_feed import ModelRow

T = TypeVar("T")
Index = QModelIndex | QPersistentModelIndex
_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
ERROR_COLOUR = QColor("#c62828")
LIVE_ROWS = 200
"""Requests the live table keeps (the history keeps them all)."""
TTL_MAX_S = 7 * 24 * 3600


@dataclass(frozen=True)
class Column(Generic[T]):
    """One column: its title, the text a cell shows, its header's tooltip."""

    title: str
    text: Callable[[T], str]
    tooltip: str = ""
    numeric: bool = False


def _or_dash(value: object) -> str:
    return "—" if value is None or value == "" else str(value)


def ttl_text(seconds: int) -> str:
    if seconds <= 0:
        return "never"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


class ListTableModel(QAbstractTableModel):
    """Rows of one kind and their columns; the subclasses say which."""

    columns: Sequence[Column[Any]] = ()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[Any] = []

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self.columns)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row, column = self._rows[index.row()], self.columns[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return column.text(row)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return _RIGHT if column.numeric else None
        return self.more_data(row, index.column(), role)

    def more_data(self, row: Any, column: int, role: int) -> Any:
        """What a subclass shows beyond the text (tooltips, colours, check boxes)."""
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self.columns):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.columns[section].title
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.columns[section].tooltip or None
        return None

    def row(self, number: int) -> Any:
        return self._rows[number]

    @property
    def rows(self) -> list[Any]:
        return list(self._rows)

    def texts(self, number: int) -> list[str]:
        """What row `number` shows, column by column (for tests and copy)."""
        return [c.text(self._rows[number]) for c in self.columns]

    def set_rows(self, rows: Sequence[Any]) -> None:
        """Show `rows`: cells change in place where the rows are the same count (a view
        keeps its selection and an open editor), else the table is laid out again."""
        rows = list(rows)
        if rows == self._rows:
            return
        if len(rows) == len(self._rows) and rows:
            self._rows = rows
            self.dataChanged.emit(self.index(0, 0),
                                  self.index(len(rows) - 1, len(self.columns) - 1))
            return
        self.beginResetModel()
        self._rows = rows
        self.endResetModel()


# ---------------------------------------------------------------------- model ids
TTL_COLUMN = 6
ON_DEMAND_COLUMN = 7


class ModelsTableModel(ListTableModel):
    """The Gateway's model ids; the idle stop and on-demand start are edited on the row
    of the backend's own id."""

    ttl_edited = Signal(object, int)
    """A ModelRow and its new idle stop in seconds (0: never)."""
    on_demand_edited = Signal(object, bool)

    columns: Sequence[Column[ModelRow]] = (
        Column("Model id", lambda r: r.id, "What a client sends as `model`"),
        Column("Base", lambda r: r.base, "The model file or folder the backend serves"),
        Column("Role", lambda r: _or_dash(r.role), "The role applied (its adapter, prompt "
               "and sampling); — for the base model"),
        Column("Backend", lambda r: r.backend),
        Column("Host", lambda r: r.host),
        Column("State", lambda r: r.state, "Running, or started by the first request "
               "for it (on demand)"),
        Column("Idle stop", lambda r: ttl_text(r.saved.ttl_s) if r.plan_options and r.saved else "",
               "Stop the backend after so long without a Gateway request (double-click "
               "to change; never: keep it running)", numeric=True),
        Column("On demand", lambda r: "", "Whether a request may start the backend "
               "from its saved plan when it is not running"),
    )

    def flags(self, index: Index) -> Qt.ItemFlag:
        flags = super().flags(index)
        if not index.isValid() or not self._rows[index.row()].plan_options:
            return flags
        if index.column() == TTL_COLUMN:
            return flags | Qt.ItemFlag.ItemIsEditable
        if index.column() == ON_DEMAND_COLUMN:
            return flags | Qt.ItemFlag.ItemIsUserCheckable
        return flags

    def more_data(self, row: ModelRow, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.EditRole and column == TTL_COLUMN and row.plan_options:
            assert row.saved is not None
            return row.saved.ttl_s
        if role == Qt.ItemDataRole.CheckStateRole and column == ON_DEMAND_COLUMN \
                and row.plan_options:
            assert row.saved is not None
            return Qt.CheckState.Checked if row.saved.on_demand else Qt.CheckState.Unchecked
        if role == Qt.ItemDataRole.ToolTipRole and column in (TTL_COLUMN, ON_DEMAND_COLUMN) \
                and not row.plan_options:
            return (f"Set on the row of {row.backend}" if row.saved is not None
                    else "Rigdeck keeps no plan of this backend (it was not started here)")
        return None

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if not index.isValid() or not self._rows[index.row()].plan_options:
            return False
        row: ModelRow = self._rows[index.row()]
        assert row.saved is not None
        if index.column() == TTL_COLUMN and role == Qt.ItemDataRole.EditRole:
            seconds = int(value)
            if seconds < 0 or seconds == row.saved.ttl_s:
                return False
            self._rows[index.row()] = replace(row, saved=replace(row.saved, ttl_s=seconds))
            self.dataChanged.emit(index, index)
            self.ttl_edited.emit(row, seconds)
            return True
        if index.column() == ON_DEMAND_COLUMN and role == Qt.ItemDataRole.CheckStateRole:
            on = Qt.CheckState(value) == Qt.CheckState.Checked
            self._rows[index.row()] = replace(row, saved=replace(row.saved, on_demand=on))
            self.dataChanged.emit(index, index)
            self.on_demand_edited.emit(row, on)
            return True
        return False


class TtlDelegate(QStyledItemDelegate):
    """The idle stop's editor: seconds, 0 shown as never."""

    def createEditor(self, parent: QWidget, option: QStyleOptionViewItem,
                     index: Index) -> QWidget:
        spin = QSpinBox(parent)
        spin.setRange(0, TTL_MAX_S)
        spin.setSingleStep(60)
        spin.setSuffix(" s")
        spin.setSpecialValueText("never")
        return spin


# ---------------------------------------------------------------------- keys
def _date(when: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(when))


class KeysTableModel(ListTableModel):
    columns: Sequence[Column[GatewayKey]] = (
        Column("Name", lambda k: k.name, "Who uses the key; requests are counted under it"),
        Column("Created", lambda k: _date(k.created)),
        Column("Ends in", lambda k: f"…{k.hint}", "The key's last four characters"),
    )


# ---------------------------------------------------------------------- requests
def tokens_text(record: RequestRecord) -> str:
    if record.prompt_tokens is None and record.completion_tokens is None:
        return "—"
    return f"{_or_dash(record.prompt_tokens)} → {_or_dash(record.completion_tokens)}"


def outcome_text(record: RequestRecord) -> str:
    if record.status == 0:
        return "running…"
    if record.status < 400 and record.outcome == "ok":
        return "ok"
    return f"{record.status}: {record.outcome}"


def failed(record: RequestRecord) -> bool:
    return record.status >= 400 or record.outcome not in ("ok", "running")


class RequestsTableModel(ListTableModel):
    """The latest requests, newest first, as the feed's events say."""

    columns: Sequence[Column[RequestRecord]] = (
        Column("Time", lambda r: time.strftime("%H:%M:%S", time.localtime(r.started))),
        Column("Client", lambda r: r.client, "The gateway key's name (no key: this "
               "computer, while no key exists)"),
        Column("Model", lambda r: r.model, "The model id asked for"),
        Column("Role", lambda r: _or_dash(r.role)),
        Column("Backend", lambda r: _or_dash(r.backend)),
        Column("Tokens", tokens_text, "Prompt → completion tokens", numeric=True),
        Column("TTFT ms", lambda r: f"{r.ttft_s * 1000:.0f}" if r.ttft_s is not None else "—",
               "Time to first token, milliseconds", numeric=True),
        Column("Tok/s", lambda r: f"{r.tokens_per_s:.1f}" if r.tokens_per_s else "—",
               "Completion tokens per second", numeric=True),
        Column("Outcome", outcome_text, "ok, or what went wrong"),
    )

    def __init__(self, records: Sequence[RequestRecord] = (),
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows = list(records)[:LIVE_ROWS]

    def more_data(self, row: RequestRecord, column: int, role: int) -> Any:
        if role == Qt.ItemDataRole.ForegroundRole and column == len(self.columns) - 1 \
                and row.status and failed(row):
            return ERROR_COLOUR
        if role == Qt.ItemDataRole.ToolTipRole:
            return (f"{row.path} from {row.peer} on {row.host or '—'}; "
                    f"waited {row.waited_s or 0:.2f} s; {outcome_text(row)}")
        return None

    def add(self, record: RequestRecord) -> None:
        """A request began: the new first row."""
        if any(r is record for r in self._rows):
            self.update(record)
            return
        self.beginInsertRows(QModelIndex(), 0, 0)
        self._rows.insert(0, record)
        self.endInsertRows()
        if len(self._rows) > LIVE_ROWS:
            self.beginRemoveRows(QModelIndex(), LIVE_ROWS, len(self._rows) - 1)
            del self._rows[LIVE_ROWS:]
            self.endRemoveRows()

    def update(self, record: RequestRecord) -> None:
        """A request ended (or went on): its row shows what it is now."""
        for number, row in enumerate(self._rows):
            if row is record:
                self.dataChanged.emit(self.index(number, 0),
                                      self.index(number, len(self.columns) - 1))
                return
        self.add(record)


# ---------------------------------------------------------------------- usage
class UsageTableModel(ListTableModel):
    columns: Sequence[Column[Usage]] = (
        Column("Client", lambda u: u.client, "The gateway key's name"),
        Column("Role", lambda u: _or_dash(u.role), "— : the base model"),
        Column("Requests", lambda u: f"{u.requests:,}", numeric=True),
        Column("Failed", lambda u: f"{u.failed:,}", numeric=True),
        Column("Prompt tokens", lambda u: f"{u.prompt_tokens:,}", numeric=True),
        Column("Completion tokens", lambda u: f"{u.completion_tokens:,}", numeric=True),
    )
