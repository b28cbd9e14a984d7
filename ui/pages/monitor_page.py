"""The Monitor page: live graphs per GPU and for the host, over 1 min to 24 h.

One QTimer redraws from the history's ring buffers, only while the page is visible and
only when a sample arrived since the last redraw; panels scrolled out of view are
skipped. The page never talks to NVML: it reads the monitor's latest snapshot and its
history.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.settings import setting_place
from app.telemetry.snapshot import Snapshot
from ui.monitor_feed import MonitorFeed
from ui.services import Services

if TYPE_CHECKING:
    from ui.monitor_plots import GpuPanel, HostPanel

log = logging.getLogger(__name__)

RANGES: tuple[tuple[str, float], ...] = (
    ("1 min", 60.0),
    ("10 min", 600.0),
    ("1 h", 3600.0),
    ("24 h", 86400.0),
)
MIN_REDRAW_S = 0.2
MAX_REDRAW_S = 2.0


class MonitorPage(QWidget):
    """Graphs of the monitor's history; says plainly when there are no GPU readings."""

    def __init__(self, services: Services) -> None:
        super().__init__()
        self._feed: MonitorFeed = services.monitor
        self._settings = services.settings
        self.range_s = RANGES[0][1]
        self._drawn_version = -1
        self._drawn_range = -1.0

        outer = QVBoxLayout(self)
        header = QHBoxLayout()
        title = QLabel("Monitor")
        title.setStyleSheet("font-size: 16pt; font-weight: 600;")
        header.addWidget(title)
        header.addStretch(1)
        self.range_buttons = QButtonGroup(self)
        for index, (label, _seconds) in enumerate(RANGES):
            button = QPushButton(label)
            button.setCheckable(True)
            button.setChecked(index == 0)
            self.range_buttons.addButton(button, index)
            header.addWidget(button)
        self.range_buttons.idClicked.connect(self._on_range_buttons_clicked)
        outer.addLayout(header)

        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.status_label.setStyleSheet(
            "QLabel { background: rgba(245, 158, 11, 40); border-radius: 6px; padding: 6px; }"
        )
        self.status_label.hide()
        outer.addWidget(self.status_label)

        self.scroll_area = QScrollArea()
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setFrameShape(QScrollArea.Shape.NoFrame)
        body = QWidget()
        self.panels_layout = QVBoxLayout(body)
        self.panels_layout.setContentsMargins(0, 0, 0, 0)
        self.scroll_area.setWidget(body)
        self.scroll_area.verticalScrollBar().valueChanged.connect(self._on_scroll_moved)
        outer.addWidget(self.scroll_area, 1)

        self.gpu_panels: dict[str, GpuPanel] = {}
        self._drawn: set[QWidget] = set()
        self._host_panel: HostPanel | None = None  # built on first show: a faster start

        self.timer = QTimer(self)
        self.timer.timeout.connect(self._on_timer_timeout)
        self._apply_interval(float(self._settings.get("sampling_interval_s")))
        self._settings.changed.connect(self._on_settings_changed)
        self.redraws = 0
        """How many times the graphs were redrawn (for tests and the benchmark)."""

    @property
    def host_panel(self) -> HostPanel:
        """The host's panel, built the first time it is needed."""
        if self._host_panel is None:
            from ui.monitor_plots import HostPanel  # pyqtgraph loads when first needed

            self._host_panel = HostPanel()
            self._host_panel.setMinimumHeight(220)
            self.panels_layout.addWidget(self._host_panel)
            self._host_panel.show()
        return self._host_panel

    # ------------------------------------------------------------------ visibility
    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.timer.start()
        self.redraw()

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        self.timer.stop()

    def _apply_interval(self, seconds: float) -> None:
        self.timer.setInterval(int(1000 * min(max(seconds, MIN_REDRAW_S), MAX_REDRAW_S)))

    def _on_settings_changed(self, name: str, value: object) -> None:
        if name == "sampling_interval_s" and isinstance(value, int | float):
            self._apply_interval(float(value))

    def _on_range_buttons_clicked(self, index: int) -> None:
        self.set_range(RANGES[index][1])

    def set_range(self, seconds: float) -> None:
        """Show the last `seconds` (one of RANGES)."""
        self.range_s = seconds
        button = self.range_buttons.button([s for _l, s in RANGES].index(seconds))
        button.setChecked(True)
        self.redraw()

    def _on_scroll_moved(self, _value: int) -> None:
        self.redraw(force=True)

    def _on_timer_timeout(self) -> None:
        if self.isVisible():
            self.redraw()

    # ------------------------------------------------------------------ drawing
    def redraw(self, *, force: bool = False) -> None:
        """Draw the history's latest state (skipped when nothing changed)."""
        from ui.monitor_plots import gpu_by_key, panel_visible

        history = self._feed.service.history
        version = history.version
        if not force and version == self._drawn_version and self.range_s == self._drawn_range:
            return
        self._drawn_version, self._drawn_range = version, self.range_s
        latest = self._feed.latest
        self._sync_panels(latest)
        end = history.latest_t if history.version else time.time()
        start = end - self.range_s
        for panel in self.gpu_panels.values():
            if panel in self._drawn and not panel_visible(panel):
                continue  # scrolled away: drawn again when it comes back
            self._drawn.add(panel)
            window = history.window(panel.metric_names(history), self.range_s, now=end)
            panel.set_range(start, end)
            panel.update_from(window, gpu_by_key(latest, panel.key))
        host = self.host_panel
        if host not in self._drawn or panel_visible(host):
            self._drawn.add(host)
            window = history.window(host.metric_names(history), self.range_s, now=end)
            host.set_range(start, end)
            host.update_from(window, latest.host if latest is not None else None)
        self.redraws += 1

    def _sync_panels(self, latest: Snapshot | None) -> None:
        """Add a panel for each GPU seen; say what is missing when there is none."""
        if latest is None:
            off = not self._settings.get("monitor_enabled")
            self._show_status(
                f"Sampling is off ({setting_place('monitor_enabled')})."
                if off
                else "Waiting for the first reading…"
            )
            return
        from ui.monitor_plots import GpuPanel

        for gpu in latest.gpus:
            if gpu.key not in self.gpu_panels:
                panel = GpuPanel(gpu)
                panel.setMinimumHeight(400)
                self.gpu_panels[gpu.key] = panel
                self.panels_layout.insertWidget(len(self.gpu_panels) - 1, panel)
                panel.show()  # a layout shows a new child only later, after the event loop
        problems = []
        if not latest.gpus:
            reasons = [s.message for s in latest.sources if not s.available and s.message]
            problems.append(
                "No GPU readings: "
                + ("; ".join(reasons) or "no GPU found")
                + ". Host readings continue below."
            )
        problems += [
            s.message for s in latest.sources if s.available and s.message and "lost" in s.message
        ]
        problems += self._feed.service.problems
        replaying = [s.message for s in latest.sources if s.name == "replay" and s.message]
        if problems:
            self._show_status("\n".join(problems))
        elif replaying:
            self._show_status(f"Demo: {replaying[0]} (not this machine's GPUs).")
        else:
            self.status_label.hide()

    def _show_status(self, text: str) -> None:
        if self.status_label.text() != text:
            self.status_label.setText(text)
        self.status_label.setVisible(True)
        self.status_label.setAlignment(Qt.AlignmentFlag.AlignLeft)


def monitor_page(services: Services, open_settings: object) -> QWidget:
    """The registry's factory for the Monitor page."""
    return MonitorPage(services)
