"""The Library tables: a Qt model adapting the library's entry list, and its filter/sort proxy.

`LibraryTableModel` keeps its own list of one kind of entry (models or adapters) and
turns the feed's added / changed / removed events into `beginInsertRows` /
`dataChanged` / `beginRemoveRows`, so views keep their selection and scroll position
while files come and go. Each column knows its text and a sort key (numbers sort as
numbers, unknown values last), which `LibraryFilterModel` uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QStyle

from app.library.display import human_bytes, human_count, quant_label
from app.library.entries import Adapter, Entry, Model
from app.library.library import ScanReport
from ui.icons import standard_icon
from ui.library_feed import LibraryFeed

ENTRY_ROLE = Qt.ItemDataRole.UserRole + 1
"""`data()` role giving the row's `Entry`."""

Index = QModelIndex | QPersistentModelIndex

SOURCE_TITLES = {
    "folder": "Folder",
    "hf-cache": "HF cache",
    "ollama": "Ollama",
    "lmstudio": "LM Studio",
}
FORMAT_TITLES = {
    "gguf": "GGUF",
    "safetensors": "safetensors",
    "peft": "PEFT",
    "gguf-lora": "GGUF LoRA",
}
_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
ERROR_COLOUR = QColor("#c62828")
INCOMPLETE_COLOUR = QColor("#b26a00")


def _missing_last(value: Any) -> tuple[int, Any]:
    """A sort key that puts unknown values after known ones, whichever the direction."""
    return (1, 0) if value is None or value == "" else (0, value)


def _number(value: int | float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def entry_name(entry: Entry) -> str:
    return entry.name or entry.path.name


def status_text(entry: Entry) -> str:
    """What the Status column says: OK, Incomplete (still downloading) or the error."""
    if entry.error:
        return f"Error: {entry.error}"
    return "OK" if entry.complete else "Incomplete"


def _params(entry: Entry) -> str:
    if not isinstance(entry, Model) or entry.params_total is None:
        return "—"
    total = human_count(entry.params_total)
    if entry.params_active and entry.params_active != entry.params_total:
        return f"{total} / {human_count(entry.params_active)}"
    return total


def _experts(entry: Entry) -> str:
    if not isinstance(entry, Model) or not entry.experts:
        return "—"
    used = entry.experts_used if entry.experts_used is not None else "?"
    return f"{used} / {entry.experts}"


def _model_attr(name: str) -> Callable[[Entry], Any]:
    return lambda e: getattr(e, name, None) if isinstance(e, Model) else None


def _adapter_attr(name: str) -> Callable[[Entry], Any]:
    return lambda e: getattr(e, name, None) if isinstance(e, Adapter) else None


@dataclass(frozen=True)
class Column:
    """One table column: its title, the text a cell shows and the key it sorts by."""

    title: str
    text: Callable[[Entry], str]
    key: Callable[[Entry], Any]
    numeric: bool = False
    tooltip: str = ""


_NAME = Column("Name", entry_name, lambda e: entry_name(e).casefold(), tooltip="Name")
_LAYERS = Column(
    "Layers", lambda e: _number(e.layers), lambda e: e.layers, numeric=True, tooltip="Layers"
)
_SIZE = Column(
    "Size",
    lambda e: human_bytes(e.size_bytes) if e.size_bytes is not None else "—",
    lambda e: e.size_bytes,
    numeric=True,
    tooltip="Size on disk",
)
_SOURCE = Column(
    "Source",
    lambda e: SOURCE_TITLES.get(e.source, e.source),
    lambda e: SOURCE_TITLES.get(e.source, e.source),
    tooltip="Where it was found: a folder of yours, the HF cache, Ollama or LM Studio",
)
_STATUS = Column(
    "Status",
    status_text,
    lambda e: (2 if e.error else 1 if not e.complete else 0, entry_name(e).casefold()),
    tooltip="OK, Incomplete (still being written) or the reason it could not be read",
)

MODEL_COLUMNS: tuple[Column, ...] = (
    _NAME,
    Column(
        "Architecture",
        lambda e: e.architecture or "—",
        lambda e: (e.architecture or "").casefold(),
        tooltip="Architecture",
    ),
    Column(
        "Params",
        _params,
        _model_attr("params_total"),
        numeric=True,
        tooltip="Parameters: total / active per token (mixture-of-experts models)",
    ),
    Column(
        "Experts",
        _experts,
        _model_attr("experts"),
        numeric=True,
        tooltip="Experts: used per token / total",
    ),
    _LAYERS,
    Column(
        "Context",
        lambda e: _number(getattr(e, "context_length", None)),
        _model_attr("context_length"),
        numeric=True,
        tooltip="Trained context length, tokens",
    ),
    Column(
        "Quant",
        lambda e: quant_label(e) if quant_label(e) != "?" else "—",
        lambda e: quant_label(e).casefold() if quant_label(e) != "?" else None,
        tooltip="Quantisation: the GGUF file type, a method and bits, or the weights' dtype",
    ),
    _SIZE,
    _SOURCE,
    _STATUS,
)

ADAPTER_COLUMNS: tuple[Column, ...] = (
    _NAME,
    Column(
        "Format",
        lambda e: FORMAT_TITLES.get(e.format, e.format),
        lambda e: e.format,
        tooltip="PEFT folder or GGUF LoRA file",
    ),
    Column(
        "Rank",
        lambda e: _number(getattr(e, "rank", None)),
        _adapter_attr("rank"),
        numeric=True,
        tooltip="LoRA rank",
    ),
    Column(
        "Alpha",
        lambda e: _number(getattr(e, "alpha", None)),
        _adapter_attr("alpha"),
        numeric=True,
        tooltip="LoRA alpha",
    ),
    Column(
        "Targets",
        lambda e: ", ".join(getattr(e, "target_modules", ())) or "—",
        lambda e: ", ".join(getattr(e, "target_modules", ())).casefold(),
        tooltip="The modules the adapter changes",
    ),
    Column(
        "Base model",
        lambda e: getattr(e, "base_model", None) or "—",
        lambda e: (getattr(e, "base_model", None) or "").casefold(),
        tooltip="The base model named in the adapter (compatibility is checked by shapes)",
    ),
    _LAYERS,
    _SIZE,
    _SOURCE,
    _STATUS,
)


class LibraryTableModel(QAbstractTableModel):
    """The entries of one kind ("model" or "adapter"), in the order they arrived."""

    def __init__(self, feed: LibraryFeed, kind: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.kind = kind
        self.columns = MODEL_COLUMNS if kind == "model" else ADAPTER_COLUMNS
        self._entries: list[Entry] = [e for e in feed.entries if e.kind == kind]
        self._error_icon = standard_icon(QStyle.StandardPixmap.SP_MessageBoxCritical)
        self._warning_icon = standard_icon(QStyle.StandardPixmap.SP_MessageBoxWarning)
        feed.entry_added.connect(self._on_feed_entry_added)
        feed.entry_changed.connect(self._on_feed_entry_changed)
        feed.entry_removed.connect(self._on_feed_entry_removed)
        feed.scanned.connect(self._on_feed_scanned)

    # ------------------------------------------------------------ Qt model
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._entries)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self.columns)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._entries):
            return None
        entry = self._entries[index.row()]
        column = self.columns[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return column.text(entry)
        if role == ENTRY_ROLE:
            return entry
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return _RIGHT if column.numeric else None
        if role == Qt.ItemDataRole.ToolTipRole:
            return entry.error if column is _STATUS and entry.error else str(entry.path)
        return self._status_data(entry, role) if column is _STATUS else None

    def _status_data(self, entry: Entry, role: int) -> Any:
        """Colour and icon that make an error or an incomplete download stand out."""
        if entry.error is None and entry.complete:
            return None
        if role == Qt.ItemDataRole.ForegroundRole:
            return ERROR_COLOUR if entry.error else INCOMPLETE_COLOUR
        if role == Qt.ItemDataRole.DecorationRole:
            return self._error_icon if entry.error else self._warning_icon
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self.columns):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.columns[section].title
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.columns[section].tooltip
        return None

    # ------------------------------------------------------------ reading
    def entry(self, row: int) -> Entry:
        return self._entries[row]

    def sort_key(self, row: int, column: int) -> tuple[int, Any]:
        return _missing_last(self.columns[column].key(self._entries[row]))

    def row_of(self, path: Path) -> int | None:
        for row, entry in enumerate(self._entries):
            if entry.path == path:
                return row
        return None

    # ------------------------------------------------------------ library events
    def _on_feed_entry_added(self, entry: Entry) -> None:
        if entry.kind != self.kind:
            return
        if self.row_of(entry.path) is not None:
            self._on_feed_entry_changed(entry)
            return
        row = len(self._entries)
        self.beginInsertRows(QModelIndex(), row, row)
        self._entries.append(entry)
        self.endInsertRows()

    def _on_feed_entry_changed(self, entry: Entry) -> None:
        row = self.row_of(entry.path)
        if row is None:
            self._on_feed_entry_added(entry)
            return
        if entry.kind != self.kind:  # re-read as the other kind: it moves tables
            self._on_feed_entry_removed(entry)
            return
        self._entries[row] = entry
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.columns) - 1))

    def _on_feed_entry_removed(self, entry: Entry) -> None:
        row = self.row_of(entry.path)
        if row is None:
            return
        self.beginRemoveRows(QModelIndex(), row, row)
        del self._entries[row]
        self.endRemoveRows()

    def _on_feed_scanned(self, report: ScanReport) -> None:
        """Reconcile with the full list: events queued before this model existed are safe."""
        wanted = {e.path: e for e in report.entries if e.kind == self.kind}
        positions = {e.path: row for row, e in enumerate(self._entries)}
        if positions.keys() == wanted.keys() and all(
            self._entries[positions[path]] == entry for path, entry in wanted.items()
        ):
            return  # the usual poll: nothing moved
        for entry in [e for e in self._entries if e.path not in wanted]:
            self._on_feed_entry_removed(entry)
        for path, entry in wanted.items():
            row = self.row_of(path)
            if row is None:
                self._on_feed_entry_added(entry)
            elif self._entries[row] != entry:
                self._on_feed_entry_changed(entry)


class LibraryFilterModel(QSortFilterProxyModel):
    """Filters by words over name, architecture, source (and format, base model); sorts by
    each column's key."""

    def __init__(self, source: LibraryTableModel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._table = source
        self._words: list[str] = []
        self.setSourceModel(source)

    def set_filter_text(self, text: str) -> None:
        self.beginFilterChange()
        self._words = text.casefold().split()
        self.endFilterChange()

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        if not self._words:
            return True
        entry = self._table.entry(source_row)
        haystack = " ".join(
            str(part)
            for part in (
                entry_name(entry),
                entry.path.name,
                entry.architecture or "",
                entry.source,
                SOURCE_TITLES.get(entry.source, ""),
                FORMAT_TITLES.get(entry.format, entry.format),
                getattr(entry, "base_model", None) or "",
            )
        ).casefold()
        return all(word in haystack for word in self._words)

    def lessThan(self, source_left: Index, source_right: Index) -> bool:
        left = self._table.sort_key(source_left.row(), source_left.column())
        right = self._table.sort_key(source_right.row(), source_right.column())
        if left[0] != right[0]:  # unknown values last in both directions
            descending = self.sortOrder() == Qt.SortOrder.DescendingOrder
            return (left[0] < right[0]) != descending
        return bool(left < right)
