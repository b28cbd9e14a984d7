"""The Library page: every model and LoRA adapter found, in sortable, filterable tables.

The tables are Qt models over the library's entry list (`ui.library_table`), fed by the
`LibraryFeed` on the GUI thread, so files that appear, change or vanish show without a
click. Until the library has an entry the page shows its empty state, with the way to
add a folder.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QItemSelection, QModelIndex, Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QSplitter,
    QStyle,
    QTableView,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.engines.plan import LaunchPlan
from app.library.entries import Adapter, Entry, Model
from app.library.library import ScanReport
from ui.icons import standard_icon
from ui.library_details import LibraryDetailsPanel
from ui.library_feed import LibraryFeed
from ui.library_table import ENTRY_ROLE, LibraryFilterModel, LibraryTableModel
from ui.pages.placeholders import EmptyPage, library_empty_state
from ui.services import Services

log = logging.getLogger(__name__)

NAME_WIDTH = 260


class LibraryPage(EmptyPage):
    """The tables, the details of the selected entry, and the scan's progress and problems.

    It is an `EmptyPage` whose empty state gives way to the tables once anything is found.
    """

    def __init__(self, services: Services, feed: LibraryFeed) -> None:
        super().__init__(library_empty_state(self._on_add_folder_clicked))
        self._services = services
        self.feed = feed
        self._picked_first = False
        layout = self.layout()
        assert isinstance(layout, QVBoxLayout)
        layout.insertWidget(0, self._build_status_row())
        self.problems_list = QListWidget()
        self.problems_list.setMaximumHeight(90)
        self.problems_list.hide()
        layout.insertWidget(1, self.problems_list)
        self.content = self._build_content()
        layout.addWidget(self.content, 1)

        feed.scanning_changed.connect(self._on_feed_scanning_changed)
        feed.scanned.connect(self._on_feed_scanned)
        for table in (self.models, self.adapters):
            table.rowsInserted.connect(self._on_table_rows_changed)
            table.rowsRemoved.connect(self._on_table_rows_changed)
            table.dataChanged.connect(self._on_table_data_changed)
        self._show_problems(feed.problems)
        self._update_state()

    # ------------------------------------------------------------------ building
    def _build_status_row(self) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter by name, architecture or source")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self._on_filter_edit_text_changed)
        layout.addWidget(self.filter_edit, 1)
        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)  # busy: a scan cannot know its total in advance
        self.busy_bar.setMaximumWidth(90)
        self.busy_bar.setMaximumHeight(12)
        self.busy_bar.setTextVisible(False)
        layout.addWidget(self.busy_bar)
        self.scan_label = QLabel()
        layout.addWidget(self.scan_label)
        self.problems_button = QToolButton()
        self.problems_button.setIcon(standard_icon(QStyle.StandardPixmap.SP_MessageBoxWarning))
        self.problems_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.problems_button.setAutoRaise(True)
        self.problems_button.setCheckable(True)
        self.problems_button.toggled.connect(self._on_problems_button_toggled)
        layout.addWidget(self.problems_button)
        self.status_row = row
        return row

    def _build_content(self) -> QWidget:
        self.models = LibraryTableModel(self.feed, "model", self)
        self.adapters = LibraryTableModel(self.feed, "adapter", self)
        self.models_proxy = LibraryFilterModel(self.models, self)
        self.adapters_proxy = LibraryFilterModel(self.adapters, self)
        self.models_view = self._table_view(self.models_proxy)
        self.adapters_view = self._table_view(self.adapters_proxy)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.models_view, "Models")
        self.tabs.addTab(self.adapters_view, "Adapters")
        self.tabs.currentChanged.connect(self._on_tabs_current_changed)
        self.details = LibraryDetailsPanel()
        self.details.fit_button.clicked.connect(self._on_fit_button_clicked)
        self.details.start_button.clicked.connect(self._on_start_button_clicked)
        self.details.folder_button.clicked.connect(self._on_folder_button_clicked)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.tabs)
        splitter.addWidget(self.details)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([380, 340])
        splitter.setChildrenCollapsible(False)
        return splitter

    def _table_view(self, proxy: LibraryFilterModel) -> QTableView:
        view = QTableView()
        view.setModel(proxy)
        view.setSortingEnabled(True)
        view.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        view.setAlternatingRowColors(True)
        view.setWordWrap(False)
        view.verticalHeader().hide()
        header = view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(0, NAME_WIDTH)
        header.setStretchLastSection(True)  # the status: an error's reason gets the rest
        view.selectionModel().selectionChanged.connect(self._on_view_selection_changed)
        return view

    # ------------------------------------------------------------------ reading
    @property
    def current_view(self) -> QTableView:
        return self.models_view if self.tabs.currentIndex() == 0 else self.adapters_view

    def selected_entry(self) -> Entry | None:
        rows = self.current_view.selectionModel().selectedRows()
        if not rows:
            return None
        entry = rows[0].data(ENTRY_ROLE)
        return entry if isinstance(entry, Entry) else None

    def select(self, path: Path) -> bool:
        """Select the entry at `path` (switching tabs); False when it is not listed."""
        for tab, table, proxy, view in (
            (0, self.models, self.models_proxy, self.models_view),
            (1, self.adapters, self.adapters_proxy, self.adapters_view),
        ):
            row = table.row_of(path)
            if row is None:
                continue
            index = proxy.mapFromSource(table.index(row, 0))
            if not index.isValid():
                return False
            self.tabs.setCurrentIndex(tab)
            view.selectRow(index.row())
            return True
        return False

    # ------------------------------------------------------------------ state
    def _update_state(self) -> None:
        has_entries = bool(self.models.rowCount() or self.adapters.rowCount())
        self.empty_state.setVisible(not has_entries)
        self.content.setVisible(has_entries)
        self.filter_edit.setVisible(has_entries)
        self.tabs.setTabText(0, f"Models ({self.models.rowCount()})")
        self.tabs.setTabText(1, f"Adapters ({self.adapters.rowCount()})")
        found = self.models.rowCount() + self.adapters.rowCount()
        scanning = self.feed.scanning
        self.busy_bar.setVisible(scanning)
        if scanning:
            self.scan_label.setText(f"Scanning… {found} found")
        else:
            self.scan_label.setText(
                f"{self.models.rowCount()} models, {self.adapters.rowCount()} adapters"
                if has_entries
                else ""
            )
        self.scan_label.setVisible(bool(self.scan_label.text()))
        self.status_row.setVisible(has_entries or scanning or self.problems_list.count() > 0)

    def _show_problems(self, problems: tuple[str, ...]) -> None:
        current = [self.problems_list.item(i).text() for i in range(self.problems_list.count())]
        if current != list(problems):
            self.problems_list.clear()
            self.problems_list.addItems(list(problems))
        count = len(problems)
        self.problems_button.setVisible(count > 0)
        self.problems_button.setText(f"{count} scan problem{'s' if count != 1 else ''}")
        self.problems_button.setToolTip("\n".join(problems))
        if not count:
            self.problems_button.setChecked(False)

    def _refresh_details(self) -> None:
        entry = self.selected_entry()
        compat = self.feed.library.compatible_models(entry) if isinstance(entry, Adapter) else []
        self.details.show_entry(entry, compat)

    # ------------------------------------------------------------------ events
    def _on_feed_scanning_changed(self, scanning: bool) -> None:
        self._update_state()

    def _on_feed_scanned(self, report: ScanReport) -> None:
        self._show_problems(report.problems)
        self._update_state()
        models_moved = any(
            e.kind == "model" for e in (*report.added, *report.changed, *report.removed)
        )
        if isinstance(self.details.entry, Adapter) and models_moved:
            self._refresh_details()  # re-check it against the models now in the library

    def _on_table_rows_changed(self, parent: QModelIndex, first: int, last: int) -> None:
        self._update_state()
        if not self._picked_first and self.current_view.model().rowCount():
            self._picked_first = True  # once: the details are never empty for no reason
            self.current_view.selectRow(0)
        if self.details.entry is not None and self.selected_entry() != self.details.entry:
            self._refresh_details()

    def _on_table_data_changed(self, top: QModelIndex, bottom: QModelIndex, roles: Any) -> None:
        if self.selected_entry() != self.details.entry:  # the shown entry was read again
            self._refresh_details()

    def _on_filter_edit_text_changed(self, text: str) -> None:
        self.models_proxy.set_filter_text(text)
        self.adapters_proxy.set_filter_text(text)

    def _on_tabs_current_changed(self, index: int) -> None:
        self._refresh_details()

    def _on_view_selection_changed(
        self, selected: QItemSelection, deselected: QItemSelection
    ) -> None:
        self._refresh_details()

    def _on_problems_button_toggled(self, checked: bool) -> None:
        self.problems_list.setVisible(checked)

    # ------------------------------------------------------------------ actions
    def _on_fit_button_clicked(self) -> None:
        entry = self.details.entry
        if not isinstance(entry, Model):
            return
        self._services.settings.set("fit_model_path", str(entry.path))
        fit = self._page("fit")
        # The Fit page has no "pick this model" slot yet; load_model shows the model.
        load = getattr(fit, "pick_model", None) or getattr(fit, "load_model", None)
        if callable(load):
            load(entry.path)
        self._show_page("fit")

    def _on_start_button_clicked(self) -> None:
        entry = self.details.entry
        if not isinstance(entry, Model):
            return
        plan = LaunchPlan(
            model=str(entry.path), engine="llamacpp" if entry.format == "gguf" else "vllm"
        )
        self._show_page("backends")
        open_dialog = getattr(self._page("backends"), "open_start_dialog", None)
        if callable(open_dialog):
            open_dialog(plan)

    def _on_folder_button_clicked(self) -> None:
        entry = self.details.entry
        if entry is None:
            return
        folder = entry.path if entry.path.is_dir() else entry.path.parent
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))):
            self._services.notifier.warning(f"Could not open {folder} in a file manager.")

    def _on_add_folder_clicked(self) -> None:
        """The empty state's "Add a model folder…": a folder picker, then the setting."""
        folder = QFileDialog.getExistingDirectory(self, "Add a model folder", str(Path.home()))
        if folder:
            self.feed.add_folder(folder)

    def _page(self, name: str) -> QWidget | None:
        """Another page of the main window (the window holds them by name)."""
        pages = getattr(self.window(), "pages", None)
        page = pages.get(name) if isinstance(pages, dict) else None
        return page if isinstance(page, QWidget) else None

    def _show_page(self, name: str) -> None:
        show_page = getattr(self.window(), "show_page", None)
        if callable(show_page):
            show_page(name)


def library_page(services: Services, _open_settings: Callable[[], None]) -> QWidget:
    """The registry's factory: shows the app's library and starts its first scan."""
    page = LibraryPage(services, services.library)
    services.library.start()
    return page

