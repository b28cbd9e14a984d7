"""NVIDIA GPUs through NVML (nvidia-ml-py), wrapped in this one module.

NVML is initialised lazily under a lock on the first sample (in the sampling thread,
never the GUI thread) and shut down by `close`. One query helper maps "not supported"
to `None` and logs a missing function once. A missing library or driver becomes a
status ("no NVIDIA driver"), never an exception; a GPU that falls off the bus
(GPUIsLost) is marked lost while the others keep sampling.
"""

from __future__ import annotations

import importlib
import logging
import threading
from dataclasses import dataclass
from typing import Any

from app.telemetry.snapshot import GpuProcess, GpuReading, Reading, SourceStatus

log = logging.getLogger(__name__)

MIB = 1024 * 1024

# Clock-event (throttle) reason bits, as NVML defines them; names are ours.
THROTTLE_REASONS: dict[int, str] = {
    0x0000000000000001: "gpu_idle",
    0x0000000000000002: "applications_clocks",
    0x0000000000000004: "sw_power_cap",
    0x0000000000000008: "hw_slowdown",
    0x0000000000000010: "sync_boost",
    0x0000000000000020: "sw_thermal",
    0x0000000000000040: "hw_thermal",
    0x0000000000000080: "hw_power_brake",
    0x0000000000000100: "display_clocks",
}


class _GpuLostError(Exception):
    """Raised inside a device's batch when NVML says the GPU is lost."""


@dataclass
class _Device:
    index: int
    handle: Any
    name: str
    uuid: str | None
    slowdown_c: float | None
    shutdown_c: float | None
    lost: bool = False


class NvmlSampler:
    """Reads every NVIDIA GPU once per `sample()`; the `nvml` module can be injected for tests."""

    name = "nvidia"

    def __init__(self, nvml: Any = None) -> None:
        self._nvml = nvml
        self._lock = threading.Lock()
        self._started = False
        self._status: SourceStatus | None = None
        self._devices: list[_Device] = []
        self._logged: set[str] = set()

    # ------------------------------------------------------------------ lifecycle
    def _module(self) -> Any:
        if self._nvml is None:
            self._nvml = importlib.import_module("pynvml")
        return self._nvml

    def _ensure_started(self) -> SourceStatus:
        """Initialise NVML once; the outcome (working or why not) is kept as the status."""
        with self._lock:
            if self._status is not None:
                return self._status
            self._status = self._start()
            return self._status

    def _start(self) -> SourceStatus:
        try:
            nvml = self._module()
        except ImportError:
            return SourceStatus(self.name, False, "nvidia-ml-py is not installed")
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as exc:
            return SourceStatus(self.name, False, _init_failure(nvml, exc))
        self._started = True
        try:
            count = int(nvml.nvmlDeviceGetCount())
        except nvml.NVMLError as exc:
            return SourceStatus(self.name, False, f"NVML could not count GPUs: {exc}")
        for index in range(count):
            self._devices.append(self._open_device(nvml, index))
        if not self._devices:
            return SourceStatus(self.name, False, "no NVIDIA GPU found")
        version = self._query("nvmlSystemGetDriverVersion")
        log.info("NVML started: %d GPU(s), driver %s", count, version)
        return SourceStatus(self.name, True, None)

    def _open_device(self, nvml: Any, index: int) -> _Device:
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
        except nvml.NVMLError as exc:
            log.warning("GPU %d cannot be opened: %s", index, exc)
            return _Device(index, None, f"GPU {index}", None, None, None, lost=True)
        try:
            name = _text(self._query("nvmlDeviceGetName", handle)) or f"GPU {index}"
            uuid = _text(self._query("nvmlDeviceGetUUID", handle))
            slowdown = self._query(
                "nvmlDeviceGetTemperatureThreshold",
                handle,
                nvml.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN,
            )
            shutdown = self._query(
                "nvmlDeviceGetTemperatureThreshold",
                handle,
                nvml.NVML_TEMPERATURE_THRESHOLD_SHUTDOWN,
            )
        except _GpuLostError:
            return _Device(index, handle, f"GPU {index}", None, None, None, lost=True)
        return _Device(index, handle, name, uuid, _num(slowdown), _num(shutdown))

    def close(self) -> None:
        """Shut NVML down if it was started (safe to call more than once)."""
        with self._lock:
            if self._started:
                try:
                    self._module().nvmlShutdown()
                except Exception as exc:  # shutting down must never fail the caller
                    log.debug("nvmlShutdown failed: %s", exc)
            self._started = False
            self._status = None
            self._devices = []

    # ------------------------------------------------------------------ reading
    def sample(self) -> Reading:
        status = self._ensure_started()
        if not status.available:
            return Reading(status)
        gpus = tuple(self._read(device) for device in self._devices)
        lost = [g.index for g in gpus if g.lost]
        if lost:
            message = ", ".join(f"GPU {i}" for i in lost) + " lost (fell off the bus)"
            return Reading(SourceStatus(self.name, True, message), gpus)
        return Reading(status, gpus)

    def _read(self, device: _Device) -> GpuReading:
        lost = GpuReading("nvidia", device.index, device.name, device.uuid, lost=True)
        if device.lost:
            return lost
        try:
            return self._read_batch(device)
        except _GpuLostError:
            log.warning("GPU %d (%s) is lost; the others keep sampling", device.index, device.name)
            device.lost = True
            return lost

    def _read_batch(self, device: _Device) -> GpuReading:
        """All of one device's queries for one sample (about 25 µs on an H100)."""
        nvml = self._nvml
        handle = device.handle
        used, total = self._memory(handle)
        power = _num(self._query("nvmlDeviceGetPowerUsage", handle))
        limit = _num(self._query("nvmlDeviceGetEnforcedPowerLimit", handle))
        util = self._query("nvmlDeviceGetUtilizationRates", handle)
        return GpuReading(
            vendor="nvidia",
            index=device.index,
            name=device.name,
            uuid=device.uuid,
            memory_used_mib=used,
            memory_total_mib=total,
            temperature_c=_num(
                self._query("nvmlDeviceGetTemperature", handle, nvml.NVML_TEMPERATURE_GPU)
            ),
            slowdown_c=device.slowdown_c,
            shutdown_c=device.shutdown_c,
            power_w=None if power is None else power / 1000.0,
            power_limit_w=None if limit is None else limit / 1000.0,
            gpu_util_pct=None if util is None else float(util.gpu),
            memory_util_pct=None if util is None else float(util.memory),
            sm_clock_mhz=_num(self._query("nvmlDeviceGetClockInfo", handle, nvml.NVML_CLOCK_SM)),
            memory_clock_mhz=_num(
                self._query("nvmlDeviceGetClockInfo", handle, nvml.NVML_CLOCK_MEM)
            ),
            fan_pct=_num(self._query("nvmlDeviceGetFanSpeed", handle)),
            throttle_reasons=self._throttle_reasons(handle),
            processes=self._processes(handle),
        )

    def _memory(self, handle: Any) -> tuple[float | None, float | None]:
        """Used/total MiB from the v2 call (matches nvidia-smi); v1 on an old driver."""
        version = getattr(self._nvml, "nvmlMemory_v2", None)
        info = None
        if version is not None:
            info = self._query("nvmlDeviceGetMemoryInfo", handle, version)
        if info is None:
            info = self._query("nvmlDeviceGetMemoryInfo", handle)
        if info is None:
            return None, None
        return info.used / MIB, info.total / MIB

    def _throttle_reasons(self, handle: Any) -> tuple[str, ...] | None:
        name = "nvmlDeviceGetCurrentClocksEventReasons"
        if not hasattr(self._nvml, name):
            name = "nvmlDeviceGetCurrentClocksThrottleReasons"
        mask = self._query(name, handle)
        if mask is None:
            return None
        return tuple(label for bit, label in THROTTLE_REASONS.items() if int(mask) & bit)

    def _processes(self, handle: Any) -> tuple[GpuProcess, ...] | None:
        found = self._query("nvmlDeviceGetComputeRunningProcesses", handle)
        if found is None:
            return None
        return tuple(
            GpuProcess(int(p.pid), None if p.usedGpuMemory is None else p.usedGpuMemory / MIB)
            for p in found
        )

    def _query(self, function: str, *args: Any) -> Any:
        """Call one NVML function: "not supported" and missing functions give None.

        Raises:
            _GpuLostError: the GPU fell off the bus (the caller marks it lost).
        """
        nvml = self._nvml
        call = getattr(nvml, function, None)
        if call is None:
            self._log_once(function, "NVML has no %s in this nvidia-ml-py", function)
            return None
        try:
            return call(*args)
        except nvml.NVMLError_GpuIsLost as exc:
            raise _GpuLostError from exc
        except nvml.NVMLError as exc:
            if exc.value not in (nvml.NVML_ERROR_NOT_SUPPORTED,):
                self._log_once(f"{function}:{exc.value}", "NVML %s failed: %s", function, exc)
            return None

    def _log_once(self, key: str, message: str, *args: object) -> None:
        if key not in self._logged:
            self._logged.add(key)
            log.info(message, *args)


def _init_failure(nvml: Any, exc: Any) -> str:
    """The user's words for why NVML did not start."""
    if isinstance(exc, nvml.NVMLError_LibraryNotFound):
        return "no NVIDIA driver (the NVML library was not found)"
    if isinstance(exc, nvml.NVMLError_DriverNotLoaded):
        return "no NVIDIA driver loaded"
    if isinstance(exc, nvml.NVMLError_NoPermission):
        return "no permission to read the NVIDIA GPUs"
    return f"NVML could not start: {exc}"


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)
