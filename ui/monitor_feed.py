"""The Qt side of the monitor service: builds it from the settings, hops its events to the GUI.

The service samples in its own thread and emits from there; this adapter re-emits on
the GUI thread. Snapshots are coalesced (the latest wins: a slow GUI never queues a
backlog); alerts are each delivered. Settings changes reach the service here.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from app.paths import AppPaths
from app.settings import SettingsStore
from app.telemetry.alerts import Alert, AlertConfig
from app.telemetry.service import MonitorOptions, MonitorService
from app.telemetry.snapshot import Snapshot

log = logging.getLogger(__name__)

REPLAY_ENV = "RIGDECK_MONITOR_REPLAY"
"""A trace file to play instead of the real GPUs (overrides the setting)."""
REPLAY_GPUS_ENV = "RIGDECK_MONITOR_REPLAY_GPUS"
"""Play the trace as this many GPUs (demos, the benchmark)."""
PIDS_ENV = "RIGDECK_MONITOR_PIDS"
"""`pid=name,…`: treat these PIDs as backends (demos, until the backends work feeds it)."""

HISTORY_FILE = "monitor-history.npz"
_ALERT_SETTINGS = {
    "alerts_enabled": "enabled",
    "alert_gpu_temp_margin_c": "gpu_temp_margin_c",
    "alert_vram_pct": "vram_pct",
    "alert_host_ram_pct": "host_ram_pct",
    "alert_swap_growth_mib": "swap_growth_mib",
    "alert_throttling": "throttling",
    "alert_backend": "backend_events",
    "alert_cooldown_s": "cooldown_s",
}


def alert_config(settings: SettingsStore) -> AlertConfig:
    """The alert thresholds the user set."""
    return AlertConfig(**{field: settings.get(name) for name, field in _ALERT_SETTINGS.items()})


def monitor_options(settings: SettingsStore, paths: AppPaths) -> MonitorOptions:
    """Options from the settings and the environment (a replay for demos and screenshots)."""
    replay = os.environ.get(REPLAY_ENV) or settings.get("monitor_replay_file")
    try:
        gpus = int(os.environ.get(REPLAY_GPUS_ENV, "1"))
    except ValueError:
        gpus = 1
    keep = settings.get("monitor_keep_history")
    return MonitorOptions(
        interval_s=float(settings.get("sampling_interval_s")),
        replay=Path(replay).expanduser() if replay else None,
        replay_gpus=max(1, min(gpus, 64)),
        prefill=True,
        history_file=paths.data / HISTORY_FILE if keep else None,
        model_folders=tuple(settings.get("model_folders")),
        alerts=alert_config(settings),
    )


def _pids_from_env() -> dict[int, str]:
    found: dict[int, str] = {}
    for item in os.environ.get(PIDS_ENV, "").split(","):
        pid, _, name = item.partition("=")
        if pid.strip().isdigit() and name.strip():
            found[int(pid)] = name.strip()
    return found


class MonitorFeed(QObject):
    """Owns the `MonitorService` for the app; emits on the GUI thread."""

    snapshot_ready = Signal(object)
    """The latest `Snapshot` (coalesced: at most one waiting at a time)."""
    alert_raised = Signal(object)
    """An `Alert` that fired."""
    _snapshot_waiting = Signal()
    _alert_waiting = Signal(object)

    def __init__(self, service: MonitorService, settings: SettingsStore | None = None) -> None:
        super().__init__()
        self.service = service
        self._settings = settings
        self._pending = threading.Event()
        self._snapshot_waiting.connect(self._on_self_snapshot_waiting)
        self._alert_waiting.connect(self._on_self_alert_waiting)
        service.sampled.connect(self._on_service_sampled)
        service.alerted.connect(self._on_service_alerted)
        if settings is not None:
            settings.changed.connect(self._on_settings_changed)
        pids = _pids_from_env()
        if pids:
            service.set_backend_pids(pids)

    @classmethod
    def build(cls, settings: SettingsStore, paths: AppPaths) -> MonitorFeed:
        """The app's monitor, not yet sampling (the composition root starts it).

        A replay is prefilled after the demo PIDs are set, so its VRAM is attributed.
        """
        options = monitor_options(settings, paths)
        feed = cls(MonitorService.from_options(replace(options, prefill=False)), settings)
        if options.prefill:
            feed.service.prefill()
        return feed

    @property
    def latest(self) -> Snapshot | None:
        return self.service.latest

    def start(self) -> None:
        if self._settings is None or self._settings.get("monitor_enabled"):
            self.service.start()

    def stop(self) -> None:
        """Stop the sampling thread (idempotent); called at quit."""
        self.service.stop()

    # ------------------------------------------------------------------ from the thread
    def _on_service_sampled(self, snapshot: Snapshot) -> None:
        if not self._pending.is_set():
            self._pending.set()
            self._snapshot_waiting.emit()  # queued to the GUI thread

    def _on_service_alerted(self, alert: Alert) -> None:
        self._alert_waiting.emit(alert)

    # ------------------------------------------------------------------ on the GUI thread
    @Slot()
    def _on_self_snapshot_waiting(self) -> None:
        self._pending.clear()
        latest = self.service.latest
        if latest is not None:
            self.snapshot_ready.emit(latest)

    @Slot(object)
    def _on_self_alert_waiting(self, alert: Alert) -> None:
        self.alert_raised.emit(alert)

    def _on_settings_changed(self, name: str, value: object) -> None:
        if name == "sampling_interval_s" and isinstance(value, int | float):
            self.service.set_interval(float(value))
        elif name in _ALERT_SETTINGS and self._settings is not None:
            self.service.set_alert_config(alert_config(self._settings))
        elif name == "model_folders" and isinstance(value, list):
            self.service.set_model_folders([str(v) for v in value])
        elif name == "monitor_enabled":
            if value:
                self.service.start()
            else:
                self.service.stop()
