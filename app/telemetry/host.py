"""The host through psutil: RAM, swap, CPU per core, free disk of the model folders."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import psutil

from app.telemetry.snapshot import DiskFree, HostReading, Reading, SourceStatus

log = logging.getLogger(__name__)

MIB = 1024 * 1024
MAX_DISKS = 16


class HostSampler:
    """psutil readings; CPU percentages are since the previous sample (non-blocking)."""

    name = "host"

    def __init__(self, folders: Sequence[str] = ()) -> None:
        self._lock = threading.Lock()
        self._folders: tuple[str, ...] = tuple(folders)[:MAX_DISKS]
        self._failed: set[str] = set()
        psutil.cpu_percent(percpu=True)  # prime the counters so the first sample is real

    def set_folders(self, folders: Sequence[str]) -> None:
        """The model folders whose disks to watch (from the settings; any thread)."""
        with self._lock:
            self._folders = tuple(folders)[:MAX_DISKS]

    def sample(self) -> Reading:
        memory = psutil.virtual_memory()
        swap = psutil.swap_memory()
        cpu = tuple(float(v) for v in psutil.cpu_percent(percpu=True))
        with self._lock:
            folders = self._folders
        host = HostReading(
            ram_used_mib=(memory.total - memory.available) / MIB,
            ram_total_mib=memory.total / MIB,
            swap_used_mib=swap.used / MIB,
            swap_total_mib=swap.total / MIB,
            cpu_pct=cpu,
            disks=tuple(d for d in (self._disk(f) for f in folders) if d is not None),
        )
        return Reading(SourceStatus(self.name, True), host=host)

    def _disk(self, folder: str) -> DiskFree | None:
        try:
            usage = psutil.disk_usage(str(Path(folder).expanduser()))
        except OSError as exc:
            if folder not in self._failed:
                self._failed.add(folder)
                log.info("cannot read free space of %s: %s", folder, exc)
            return None
        return DiskFree(folder, usage.free / MIB, usage.total / MIB)

    def close(self) -> None:
        """Nothing native to release."""
