"""The main window: a navigation rail on the left, one page per area, a notice banner."""

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QSize, Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ui.icons import app_icon, standard_icon
from ui.notifier import Level, Notice
from ui.pages.registry import PAGE_NAMES, PAGES
from ui.services import Services

if TYPE_CHECKING:
    from ui.pages.fit_page import ChosenPlan

log = logging.getLogger(__name__)

_BANNER_COLOURS = {
    Level.INFO: ("#dbeafe", "#1e3a8a"),
    Level.WARNING: ("#fef3c7", "#78350f"),
    Level.ERROR: ("#fee2e2", "#7f1d1d"),
}


class NoticeBanner(QFrame):
    """Shows the latest notice above the page until the user dismisses it."""

    def __init__(self) -> None:
        super().__init__()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 6, 6, 6)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.label, 1)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.hide)
        layout.addWidget(close)
        self.hide()

    def show_notice(self, notice: Notice) -> None:
        background, text = _BANNER_COLOURS[notice.level]
        self.setStyleSheet(
            f"NoticeBanner {{ background: {background}; border-radius: 6px; }}"
            f"QLabel, QToolButton {{ color: {text}; }}"
        )
        self.label.setText(notice.text)
        self.show()


class LazyPages(dict[str, QWidget]):
    """The window's pages by name, each built the first time it is asked for (`[name]` or
    `get`): building all of them, and importing their modules, at start-up doubled the
    time to a window."""

    def __init__(self, build: Callable[[str], QWidget]) -> None:
        super().__init__()
        self._build = build

    def __missing__(self, name: str) -> QWidget:
        if name not in PAGE_NAMES:
            raise KeyError(name)
        page = self._build(name)
        self[name] = page
        return page

    # dict.get's overloads differ only in typing; this one builds the page as [] does
    def get(self, name: str, default: QWidget | None = None) -> QWidget | None:  # type: ignore[override]
        return self[name] if name in PAGE_NAMES else default


class MainWindow(QMainWindow):
    """Holds the pages; remembers its geometry and last page in the settings."""

    close_requested = Signal()
    """Emitted when the user closes the window; the application decides hide or quit."""

    def __init__(self, services: Services) -> None:
        super().__init__()
        self._services = services
        self.setWindowTitle("Rigdeck")
        self.setWindowIcon(app_icon())
        self.setMinimumSize(QSize(720, 480))

        self.rail = QListWidget()
        self.rail.setObjectName("navigationRail")
        self.rail.setFixedWidth(168)
        self.rail.setIconSize(QSize(22, 22))
        self.rail.setFrameShape(QFrame.Shape.NoFrame)
        self.rail.setStyleSheet("QListWidget#navigationRail::item { padding: 9px 6px; }")
        self.stack = QStackedWidget()
        self._stand_ins: dict[str, QWidget] = {}
        for spec in PAGES:
            QListWidgetItem(standard_icon(spec.icon), spec.title, self.rail)
            self._stand_ins[spec.name] = QWidget()  # until the page is first asked for
            self.stack.addWidget(self._stand_ins[spec.name])
        self.pages = LazyPages(self._build_page)

        self.banner = NoticeBanner()
        content = QWidget()
        content_layout = QVBoxLayout(content)
        content_layout.addWidget(self.banner)
        content_layout.addWidget(self.stack, 1)
        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.rail)
        layout.addWidget(content, 1)
        self.setCentralWidget(central)

        self.rail.currentRowChanged.connect(self._on_rail_row_changed)
        services.notifier.posted.connect(self.banner.show_notice)
        for notice in services.notifier.history:
            self.banner.show_notice(notice)
        self._restore_state()

    # ------------------------------------------------------------------ pages
    def _build_page(self, name: str) -> QWidget:
        index = PAGE_NAMES.index(name)
        page = PAGES[index].build(self._services, lambda: self.show_page("settings"))
        page.setObjectName(f"{name}Page")
        stand_in = self._stand_ins.pop(name)
        current = self.stack.currentIndex()
        self.stack.insertWidget(index, page)
        self.stack.removeWidget(stand_in)
        stand_in.deleteLater()
        self.stack.setCurrentIndex(current)
        if name == "fit":
            from ui.pages.fit_page import FitPage

            assert isinstance(page, FitPage)
            # Fit's "Start with this plan" opens the Backends page's Start dialog.
            page.plan_started.connect(self._on_fit_plan_started)
        return page

    def _on_fit_plan_started(self, chosen: "ChosenPlan") -> None:
        from ui.pages.backends_page import BackendsPage

        backends = self.pages["backends"]
        if isinstance(backends, BackendsPage):
            backends.start_chosen_plan(chosen)

    @property
    def current_page(self) -> str:
        return PAGE_NAMES[self.stack.currentIndex()]

    def show_page(self, name: str) -> None:
        """Switch to page `name` (one of PAGE_NAMES)."""
        self.rail.setCurrentRow(PAGE_NAMES.index(name))

    def _on_rail_row_changed(self, row: int) -> None:
        if row < 0:
            return
        self.stack.setCurrentWidget(self.pages[PAGE_NAMES[row]])
        self._services.settings.set("last_page", PAGE_NAMES[row])

    # ------------------------------------------------------------------ state
    def _restore_state(self) -> None:
        settings = self._services.settings
        geometry = settings.get("window_geometry")
        if not geometry or not self.restoreGeometry(QByteArray.fromBase64(geometry.encode())):
            self.resize(1200, 780)
        last = settings.get("last_page")
        self.show_page(last if last in PAGE_NAMES else PAGE_NAMES[0])

    def save_state(self) -> None:
        """Store size and position in the settings (called on close and quit)."""
        encoded = bytes(self.saveGeometry().toBase64().data()).decode("ascii")
        self._services.settings.set("window_geometry", encoded)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_state()
        event.ignore()
        self.close_requested.emit()
