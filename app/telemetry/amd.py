"""AMD GPUs through amdsmi, where it imports (ROCm installs it; PyPI has no wheel).

Reads VRAM, temperature, power and activity. The import is guarded: without amdsmi
(or its native library) the sampler reports "no AMD driver" as its status.
"""

from __future__ import annotations

import importlib
import logging
import threading
from typing import Any

from app.telemetry.snapshot import GpuReading, Reading, SourceStatus

log = logging.getLogger(__name__)


def load_amdsmi() -> Any | None:
    """The amdsmi module, or None where it (or its native library) is missing."""
    try:
        return importlib.import_module("amdsmi")
    except (ImportError, OSError) as exc:
        log.debug("amdsmi unavailable: %s", exc)
        return None


class AmdSampler:
    """Reads every AMD GPU once per `sample()`; `amdsmi` can be injected for tests."""

    name = "amd"

    def __init__(self, amdsmi: Any = None) -> None:
        self._amdsmi = amdsmi
        self._lock = threading.Lock()
        self._status: SourceStatus | None = None
        self._handles: list[Any] = []
        self._names: list[str] = []
        self._lost: set[int] = set()
        self._logged: set[str] = set()

    def _ensure_started(self) -> SourceStatus:
        with self._lock:
            if self._status is None:
                self._status = self._start()
            return self._status

    def _start(self) -> SourceStatus:
        smi = self._amdsmi if self._amdsmi is not None else load_amdsmi()
        if smi is None:
            return SourceStatus(self.name, False, "no AMD driver (amdsmi is not installed)")
        self._amdsmi = smi
        try:
            smi.amdsmi_init()
            self._handles = list(smi.amdsmi_get_processor_handles())
        except Exception as exc:  # amdsmi raises its own AmdSmiException tree
            return SourceStatus(self.name, False, f"no AMD driver ({exc})")
        for index, handle in enumerate(self._handles):
            info = self._query("amdsmi_get_gpu_asic_info", handle) or {}
            self._names.append(str(info.get("market_name") or f"AMD GPU {index}"))
        if not self._handles:
            return SourceStatus(self.name, False, "no AMD GPU found")
        return SourceStatus(self.name, True)

    def sample(self) -> Reading:
        status = self._ensure_started()
        if not status.available:
            return Reading(status)
        return Reading(status, tuple(self._read(i, h) for i, h in enumerate(self._handles)))

    def _read(self, index: int, handle: Any) -> GpuReading:
        name = self._names[index]
        if index in self._lost:
            return GpuReading("amd", index, name, lost=True)
        smi = self._amdsmi
        vram = self._query("amdsmi_get_gpu_vram_usage", handle)
        if vram is None and self._query("amdsmi_get_gpu_asic_info", handle) is None:
            log.warning("AMD GPU %d stopped answering; marked lost", index)
            self._lost.add(index)
            return GpuReading("amd", index, name, lost=True)
        temp_type = smi.AmdSmiTemperatureType
        metric = smi.AmdSmiTemperatureMetric
        hotspot = getattr(temp_type, "HOTSPOT", getattr(temp_type, "JUNCTION", None))
        temperature = self._query("amdsmi_get_temp_metric", handle, hotspot, metric.CURRENT)
        critical = self._query("amdsmi_get_temp_metric", handle, hotspot, metric.CRITICAL)
        power = self._query("amdsmi_get_power_info", handle) or {}
        activity = self._query("amdsmi_get_gpu_activity", handle) or {}
        draw = power.get("average_socket_power", power.get("current_socket_power"))
        return GpuReading(
            vendor="amd",
            index=index,
            name=name,
            memory_used_mib=_num((vram or {}).get("vram_used")),
            memory_total_mib=_num((vram or {}).get("vram_total")),
            temperature_c=_num(temperature),
            slowdown_c=_num(critical),
            power_w=_num(draw),
            power_limit_w=_num(power.get("power_limit")),
            gpu_util_pct=_num(activity.get("gfx_activity")),
            memory_util_pct=_num(activity.get("umc_activity")),
        )

    def _query(self, function: str, *args: Any) -> Any:
        """One amdsmi call; an error or a missing function gives None (logged once)."""
        call = getattr(self._amdsmi, function, None)
        if call is None:
            self._log_once(function, "amdsmi has no %s", function)
            return None
        try:
            return call(*args)
        except Exception as exc:  # amdsmi's errors share no importable base we can rely on
            self._log_once(function, "amdsmi %s failed: %s", function, exc)
            return None

    def _log_once(self, key: str, message: str, *args: object) -> None:
        if key not in self._logged:
            self._logged.add(key)
            log.info(message, *args)

    def close(self) -> None:
        with self._lock:
            if self._status is not None and self._status.available:
                try:
                    self._amdsmi.amdsmi_shut_down()
                except Exception as exc:  # shutting down must never fail the caller
                    log.debug("amdsmi_shut_down failed: %s", exc)
            self._status = None
            self._handles, self._names = [], []


def _num(value: Any) -> float | None:
    if value is None or isinstance(value, str):  # amdsmi says "N/A" for unsupported
        return None
    return float(value)
