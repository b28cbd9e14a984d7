"""The composition root: builds the services, the window and the tray, and wires them."""

import logging

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QApplication, QMessageBox, QSystemTrayIcon

from app.paths import AppPaths
from app.runtime.backend import Backend
from ui.main_window import MainWindow
from ui.monitor_tray import TrayMonitor
from ui.questions import stop_asking_first
from ui.role_feed import tray_role_entries
from ui.services import Services
from ui.theme import apply_theme
from ui.tray import TrayIcon

log = logging.getLogger(__name__)


class RigdeckApp:
    """One running Rigdeck: services, main window and (where a tray exists) the tray icon."""

    def __init__(self, qapp: QApplication, paths: AppPaths) -> None:
        self.qapp = qapp
        self.services = Services.build(paths)
        apply_theme(qapp, self.services.settings.get("theme"))
        self.window = MainWindow(self.services)
        self.tray: TrayIcon | None = None
        self.stop_question: QMessageBox | None = None
        """The tray's "Stop NAME?" while a chat reply streams from it (for tests)."""
        if QSystemTrayIcon.isSystemTrayAvailable():
            self.tray = TrayIcon()
            self.tray.open_requested.connect(self.show_window)
            self.tray.quit_requested.connect(self.quit)
            self.tray.gateway_toggled.connect(self._on_tray_gateway_toggled)
            self.services.gateway.state_changed.connect(self.tray.set_gateway)
            self.services.gateway.start_failed.connect(self._on_gateway_start_failed)
            self.tray.show()
        # sampling and alerting go on with the window closed (the "long run" use)
        self.tray_monitor = TrayMonitor(self.services.monitor, self.tray, self.services.notifier)
        self.services.backends.updated.connect(self._on_backends_updated)
        self.services.backends.died.connect(self._on_backends_died)
        # Background work begins once the event loop runs: its imports (docker, NVML) and
        # first readings would otherwise hold the interpreter while the window is built.
        self._start_timer = QTimer(singleShot=True, interval=0)
        self._start_timer.timeout.connect(self._start_watching)
        self._start_timer.start()
        self.services.bench.progress.connect(self._on_bench_progress)
        self.services.bench.finished.connect(self._on_bench_finished)
        self.services.roles.changed.connect(self._on_roles_changed)
        self.services.roles.chosen.connect(self._on_roles_changed)
        self._on_roles_changed()
        qapp.setQuitOnLastWindowClosed(False)
        self.window.close_requested.connect(self._on_window_close_requested)
        # Ctrl+Q quits for good, also where closing the window leaves Rigdeck in the tray
        self._quit_shortcut = QShortcut(QKeySequence("Ctrl+Q"),  # Windows has no standard Quit
                                        self.window)
        self._quit_shortcut.setContext(Qt.ShortcutContext.ApplicationShortcut)
        self._quit_shortcut.activated.connect(self.quit)
        self.services.settings.changed.connect(self._on_settings_changed)
        qapp.styleHints().colorSchemeChanged.connect(self._on_system_colours_changed)
        self._told_about_tray = False
        self.has_quit = False

    def _on_tray_gateway_toggled(self, on: bool) -> None:
        """The tray's Gateway entry: on or off as the Gateway page's switch (a failure is
        told in the banner, as the window may be hidden)."""
        if on:
            self.services.gateway.start(tell=True)
        else:
            self.services.gateway.stop()

    def _on_gateway_start_failed(self, _why: str) -> None:
        if self.tray is not None:
            self.tray.set_gateway("")  # the entry the user ticked is unticked again

    def _on_bench_progress(self, index: int, phase: str, fraction: float) -> None:
        if self.tray is not None:
            self.tray.set_bench_progress(f"variant {index + 1}: {phase} ({fraction:.0%})")

    def _on_bench_finished(self, run: object) -> None:
        if self.tray is not None:
            self.tray.set_bench_progress(None)

    def _start_watching(self) -> None:
        self.services.monitor.start()
        self.services.library.start()  # the Fit, Chat and Roles pages list its models
        # re-attach: backends that outlived the last run are found again and watched
        self.services.backends.start()
        self.services.gateway.start_at_launch()  # when Start with Rigdeck is on

    @property
    def keeps_running_in_tray(self) -> bool:
        """Whether closing the window leaves Rigdeck in the tray."""
        return self.tray is not None and bool(self.services.settings.get("close_to_tray"))

    def show_window(self) -> None:
        log.info("window brought to the front")
        self.window.show()
        self.window.raise_()
        self.window.activateWindow()

    def _on_window_close_requested(self) -> None:
        if not self.keeps_running_in_tray:
            self.quit()
            return
        self.window.hide()
        if self.tray is not None and not self._told_about_tray:
            self._told_about_tray = True
            self.tray.showMessage(
                "Rigdeck is still running",
                "It keeps watching from the tray. Use Quit in the tray menu to stop it.",
                QSystemTrayIcon.MessageIcon.Information,
                4000,
            )

    def _on_backends_updated(self, backends: list[Backend]) -> None:
        if self.tray is None:
            return
        self.tray.set_backends([
            (f"Stop {b.name} ({b.host}, {b.shown_state})",
             lambda _=False, b=b: self.stop_backend(b))
            for b in backends if b.state.is_live and b.managed])

    def stop_backend(self, backend: Backend) -> None:
        """The tray's Stop: as the Backends page's, it asks first while a chat reply streams
        from that backend (a question of its own: the window may be hidden)."""
        self.stop_question = stop_asking_first(
            self.services, backend, None if self.window.isHidden() else self.window)

    def _on_backends_died(self, backend: Backend) -> None:
        """The "backend died" alert (notification, tray; cool-down and switch in the
        settings), saying how it ended."""
        self.services.monitor.service.backend_event(backend.name, "died", backend.reason)

    def _on_roles_changed(self, *_: object) -> None:
        if self.tray is not None:
            self.tray.set_roles(*tray_role_entries(self.services.roles))

    def _on_settings_changed(self, name: str, value: object) -> None:
        if name == "theme":
            apply_theme(self.qapp, str(value))

    def _on_system_colours_changed(self) -> None:
        apply_theme(self.qapp, self.services.settings.get("theme"))

    def quit(self) -> None:
        """Save the window's state, stop workers and leave the event loop (once: the
        window's close and the tray's Quit may both ask)."""
        if self.has_quit:
            return
        self.has_quit = True
        self._start_timer.stop()  # quit before the event loop ran: start nothing
        if self.window.isVisible():
            self.window.save_state()
            self.window.hide()
        if self.tray is not None:
            self.tray.hide()
        self.services.shutdown()
        self.qapp.quit()
