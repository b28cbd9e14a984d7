"""The main window: a navigation rail on the left, one page per area, a notice banner."""

import logging

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
from ui.pages.backends_page import BackendsPage
from ui.pages.fit_page import FitPage
from ui.pages.registry import PAGE_NAMES, PAGES
from ui.services import Services

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
        self.pages: dict[str, QWidget] = {}
        for spec in PAGES:
            QListWidgetItem(standard_icon(spec.icon), spec.title, self.rail)
            page = spec.build(services, lambda: self.show_page("settings"))
            page.setObjectName(f"{spec.name}Page")
            self.pages[spec.name] = page
            self.stack.addWidget(page)

        self._connect_pages()
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
    def _connect_pages(self) -> None:
        """Fit's "Start with this plan" opens the Backends page's Start dialog."""
        fit, backends = self.pages.get("fit"), self.pages.get("backends")
        if isinstance(fit, FitPage) and isinstance(backends, BackendsPage):
            fit.plan_started.connect(backends.start_chosen_plan)

    @property
    def current_page(self) -> str:
        return PAGE_NAMES[self.stack.currentIndex()]

    def show_page(self, name: str) -> None:
        """Switch to page `name` (one of PAGE_NAMES)."""
        self.rail.setCurrentRow(PAGE_NAMES.index(name))

    def _on_rail_row_changed(self, row: int) -> None:
        if row < 0:
            return
        self.stack.setCurrentIndex(row)
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
