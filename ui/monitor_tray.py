"""Keeps the tray current with the monitor: gauge icon, tooltip, alert notifications.

Runs whether or not the window is open (the long-run use). Alerts go out as desktop
notifications from the tray; without a tray they reach the notifier's banner instead.
"""

from __future__ import annotations

import logging

from PySide6.QtWidgets import QSystemTrayIcon

from app.telemetry.alerts import Alert, Severity
from app.telemetry.snapshot import Snapshot
from app.telemetry.summary import fullest_gpu, tray_tooltip
from ui.monitor_feed import MonitorFeed
from ui.notifier import Level, Notifier
from ui.tray_gauge import gauge_icon, gauge_steps

log = logging.getLogger(__name__)

NOTIFICATION_MS = 8000


class TrayMonitor:
    """Subscribes to the feed; updates the tray each sample and raises the alerts."""

    def __init__(self, feed: MonitorFeed, tray: QSystemTrayIcon | None, notifier: Notifier) -> None:
        self._feed = feed
        self._tray = tray
        self._notifier = notifier
        self._icon_key: tuple[Severity, int] | None = None
        self._tooltip = ""
        self.shown_alerts: list[Alert] = []
        """Every alert this run showed, newest last (bounded)."""
        feed.snapshot_ready.connect(self._on_feed_snapshot_ready)
        feed.alert_raised.connect(self._on_feed_alert_raised)

    def _on_feed_snapshot_ready(self, snapshot: Snapshot) -> None:
        if self._tray is None:
            return
        full = fullest_gpu(snapshot)
        key = (self._feed.service.severity, gauge_steps(full.memory_fraction if full else None))
        if key != self._icon_key:
            self._icon_key = key
            self._tray.setIcon(gauge_icon(*key))
        tooltip = tray_tooltip(snapshot)
        if tooltip != self._tooltip:
            self._tooltip = tooltip
            self._tray.setToolTip(tooltip)

    def _on_feed_alert_raised(self, alert: Alert) -> None:
        self.shown_alerts.append(alert)
        del self.shown_alerts[:-200]
        if self._tray is not None:
            self._tray.showMessage(
                alert.title, alert.message, QSystemTrayIcon.MessageIcon.Warning, NOTIFICATION_MS
            )
        else:
            self._notifier.post(Level.WARNING, f"{alert.title}: {alert.message}")

    @property
    def tooltip(self) -> str:
        return self._tooltip
