"""The tray icon: keeps Rigdeck reachable when the window is closed."""

from PySide6.QtCore import Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from ui.icons import app_icon


class TrayIcon(QSystemTrayIcon):
    """Icon plus menu: Open, the running backends, the roles, the Gateway, Quit.

    The backends and roles sections are filled by their pages through `set_backends` and
    `set_roles`; each entry is (label, callback).
    """

    open_requested = Signal()
    quit_requested = Signal()
    gateway_toggled = Signal(bool)
    """The Gateway entry was ticked (on) or unticked (off)."""

    def __init__(self) -> None:
        super().__init__(app_icon())
        self._bench: str | None = None
        self._base_tooltip = "Rigdeck"
        self.setToolTip("Rigdeck")
        self.menu = QMenu()
        self.open_action = QAction("Open Rigdeck", self.menu)
        self.open_action.triggered.connect(self.open_requested)
        self.menu.addAction(self.open_action)
        self.menu.addSeparator()
        self.backends_menu = self.menu.addMenu("Backends")
        self.roles_menu = self.menu.addMenu("Roles")
        self.gateway_action = QAction("Gateway", self.menu)
        self.gateway_action.setCheckable(True)
        self.gateway_action.triggered.connect(self.gateway_toggled)
        self.menu.addAction(self.gateway_action)
        self.menu.addSeparator()
        self.quit_action = QAction("Quit", self.menu)
        self.quit_action.triggered.connect(self.quit_requested)
        self.menu.addAction(self.quit_action)
        self.setContextMenu(self.menu)
        self.activated.connect(self._on_self_activated)
        self.set_backends([])
        self.set_roles([])

    @staticmethod
    def _fill(menu: QMenu, entries: list[tuple[str, object]], empty: str) -> None:
        menu.clear()
        if not entries:
            placeholder = menu.addAction(empty)
            placeholder.setEnabled(False)
            return
        for label, callback in entries:
            action = menu.addAction(label)
            action.triggered.connect(callback)

    def set_backends(self, entries: list[tuple[str, object]]) -> None:
        self._fill(self.backends_menu, entries, "No backends running")

    def set_roles(self, entries: list[tuple[str, object]], current: str | None = None) -> None:
        """The roles section; the entry labelled `current` is shown checked."""
        self._fill(self.roles_menu, entries, "No roles yet")
        for action in self.roles_menu.actions():
            if current is not None and action.text() == current:
                action.setCheckable(True)
                action.setChecked(True)

    def set_gateway(self, url: str) -> None:
        """The Gateway entry: ticked with its URL while it serves."""
        self.gateway_action.setChecked(bool(url))
        self.gateway_action.setText(f"Gateway at {url}" if url else "Gateway")

    def set_bench_progress(self, text: str | None) -> None:
        """Show a long bench run's progress on the icon's tooltip (None: it ended); the
        monitor's readings keep it as they replace the rest."""
        self._bench = text
        self.setToolTip(self._base_tooltip)

    def setToolTip(self, tip: str) -> None:
        self._base_tooltip = tip
        super().setToolTip(tip if self._bench is None else f"{tip}\nBench: {self._bench}")

    def _on_self_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason == QSystemTrayIcon.ActivationReason.Trigger:
            self.open_requested.emit()
