"""Frozen readings: one `Snapshot` per sample, made of GPU and host readings.

A value a device does not report is `None` (never a string such as "N/A"), so the UI
and the alerts can tell "not supported" from zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

SCHEMA = 1
"""Version of the JSON form written by `Snapshot.to_dict` (recordings, `monitor --json`)."""


@dataclass(frozen=True, slots=True)
class GpuProcess:
    """A process holding GPU memory, by its host PID (NVML reports host PIDs)."""

    pid: int
    used_mib: float | None


@dataclass(frozen=True, slots=True)
class GpuReading:
    """One GPU at one moment. `lost` marks a GPU that fell off the bus (no values then)."""

    vendor: str
    index: int
    name: str
    uuid: str | None = None
    lost: bool = False
    memory_used_mib: float | None = None
    memory_total_mib: float | None = None
    temperature_c: float | None = None
    slowdown_c: float | None = None
    shutdown_c: float | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    gpu_util_pct: float | None = None
    memory_util_pct: float | None = None
    sm_clock_mhz: float | None = None
    memory_clock_mhz: float | None = None
    fan_pct: float | None = None
    throttle_reasons: tuple[str, ...] | None = None
    processes: tuple[GpuProcess, ...] | None = None

    @property
    def key(self) -> str:
        """Stable id within one machine: vendor and index ("nvidia0")."""
        return f"{self.vendor}{self.index}"

    @property
    def memory_fraction(self) -> float | None:
        if self.memory_used_mib is None or not self.memory_total_mib:
            return None
        return self.memory_used_mib / self.memory_total_mib


@dataclass(frozen=True, slots=True)
class DiskFree:
    """Free space of the disk holding a model folder."""

    path: str
    free_mib: float
    total_mib: float


@dataclass(frozen=True, slots=True)
class HostReading:
    """The host: RAM, swap, CPU per core, free disk of the model folders."""

    ram_used_mib: float
    ram_total_mib: float
    swap_used_mib: float
    swap_total_mib: float
    cpu_pct: tuple[float, ...]
    disks: tuple[DiskFree, ...] = ()

    @property
    def ram_fraction(self) -> float | None:
        return self.ram_used_mib / self.ram_total_mib if self.ram_total_mib else None

    @property
    def cpu_mean_pct(self) -> float | None:
        return sum(self.cpu_pct) / len(self.cpu_pct) if self.cpu_pct else None


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """Whether a sampler works; `message` says what is missing ("no NVIDIA driver")."""

    name: str
    available: bool
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Reading:
    """What one sampler returns for one sample."""

    status: SourceStatus
    gpus: tuple[GpuReading, ...] = ()
    host: HostReading | None = None


class Sampler(Protocol):
    """The one interface every source implements: NVML, amdsmi, psutil, a replay."""

    name: str

    def sample(self) -> Reading:
        """Read now. Never raises for a missing driver: that is a status."""
        ...

    def close(self) -> None:
        """Release the native library (called once, from the sampling thread)."""
        ...


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything read at time `t` (seconds since the epoch)."""

    t: float
    gpus: tuple[GpuReading, ...] = ()
    host: HostReading | None = None
    sources: tuple[SourceStatus, ...] = field(default=())
    vram_by_backend: Mapping[str, tuple[tuple[str, float], ...]] = field(default_factory=dict)
    """Per GPU key: MiB per backend name, then "other" (filled by attribution)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (one line of `rigdeck monitor --json`, or of a recording)."""
        data = asdict(self)
        data["schema"] = SCHEMA
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Snapshot:
        """Inverse of `to_dict`; raises KeyError/TypeError/ValueError on a malformed line."""
        gpus = tuple(_gpu_from_dict(g) for g in data.get("gpus", ()))
        host_data = data.get("host")
        host = None
        if host_data is not None:
            host = HostReading(
                ram_used_mib=float(host_data["ram_used_mib"]),
                ram_total_mib=float(host_data["ram_total_mib"]),
                swap_used_mib=float(host_data["swap_used_mib"]),
                swap_total_mib=float(host_data["swap_total_mib"]),
                cpu_pct=tuple(float(v) for v in host_data["cpu_pct"]),
                disks=tuple(DiskFree(**d) for d in host_data.get("disks", ())),
            )
        sources = tuple(SourceStatus(**s) for s in data.get("sources", ()))
        shares = {
            str(key): tuple((str(name), float(mib)) for name, mib in value)
            for key, value in (data.get("vram_by_backend") or {}).items()
        }
        return cls(float(data["t"]), gpus, host, sources, shares)


def _gpu_from_dict(data: dict[str, Any]) -> GpuReading:
    values = dict(data)
    if values.get("throttle_reasons") is not None:
        values["throttle_reasons"] = tuple(values["throttle_reasons"])
    if values.get("processes") is not None:
        values["processes"] = tuple(GpuProcess(**p) for p in values["processes"])
    return GpuReading(**values)
