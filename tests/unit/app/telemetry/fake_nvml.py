"""A stand-in for the pynvml module that answers from a recorded trace.

It raises pynvml's own exception classes, so the sampler meets the real library's
error behaviour: NotSupported for the fan (the H100 has none), GpuIsLost on demand,
and v1 memory that (like the real driver) counts reserved memory the v2 call leaves out.
"""

from types import SimpleNamespace
from typing import Any

import pynvml

from app.telemetry.replay import Trace
from app.telemetry.snapshot import GpuReading

MIB = 1024 * 1024
RESERVED_MIB = 512


class FakeNvml:
    NVMLError = pynvml.NVMLError
    NVMLError_GpuIsLost = pynvml.NVMLError_GpuIsLost
    NVMLError_LibraryNotFound = pynvml.NVMLError_LibraryNotFound
    NVMLError_DriverNotLoaded = pynvml.NVMLError_DriverNotLoaded
    NVMLError_NoPermission = pynvml.NVMLError_NoPermission
    NVML_ERROR_NOT_SUPPORTED = pynvml.NVML_ERROR_NOT_SUPPORTED
    NVML_TEMPERATURE_GPU = pynvml.NVML_TEMPERATURE_GPU
    NVML_TEMPERATURE_THRESHOLD_SLOWDOWN = pynvml.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN
    NVML_TEMPERATURE_THRESHOLD_SHUTDOWN = pynvml.NVML_TEMPERATURE_THRESHOLD_SHUTDOWN
    NVML_CLOCK_SM = pynvml.NVML_CLOCK_SM
    NVML_CLOCK_MEM = pynvml.NVML_CLOCK_MEM
    nvmlMemory_v2 = pynvml.nvmlMemory_v2  # noqa: N815  (pynvml's own name)

    def __init__(self, trace: Trace, gpus: int = 1) -> None:
        self.trace = trace
        self.gpus = gpus
        self.row = 0
        self.lost: set[int] = set()
        self.throttle_mask = 0
        self.initialised = False
        self.shutdowns = 0

    def _frame(self, handle: int) -> GpuReading:
        if handle in self.lost:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)
        return self.trace.frames[self.row % len(self.trace.frames)].gpus[0]

    def nvmlInit(self) -> None:
        self.initialised = True

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlSystemGetDriverVersion(self) -> str:
        return "580.159.04"

    def nvmlDeviceGetCount(self) -> int:
        return self.gpus

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetName(self, handle: int) -> str:
        return "NVIDIA H100 80GB HBM3"

    def nvmlDeviceGetUUID(self, handle: int) -> str:
        return f"GPU-{handle:08d}"

    def nvmlDeviceGetTemperatureThreshold(self, handle: int, kind: int) -> int:
        return 89 if kind == pynvml.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN else 95

    def nvmlDeviceGetMemoryInfo(self, handle: int, version: int | None = None) -> Any:
        gpu = self._frame(handle)
        used = (gpu.memory_used_mib or 0) + (0 if version else RESERVED_MIB)
        return SimpleNamespace(used=int(used * MIB), total=int((gpu.memory_total_mib or 0) * MIB))

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        return int(self._frame(handle).temperature_c or 0)

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        return round((self._frame(handle).power_w or 0) * 1000)

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: int) -> int:
        return 700_000

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> Any:
        gpu = self._frame(handle)
        return SimpleNamespace(gpu=int(gpu.gpu_util_pct or 0), memory=int(gpu.memory_util_pct or 0))

    def nvmlDeviceGetClockInfo(self, handle: int, clock: int) -> int:
        gpu = self._frame(handle)
        return int(gpu.sm_clock_mhz or 0) if clock == pynvml.NVML_CLOCK_SM else 2619

    def nvmlDeviceGetFanSpeed(self, handle: int) -> int:
        self._frame(handle)
        raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: int) -> int:
        self._frame(handle)
        return self.throttle_mask

    def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list[Any]:
        return [
            SimpleNamespace(pid=p.pid, usedGpuMemory=int((p.used_mib or 0) * MIB))
            for p in self._frame(handle).processes or ()
        ]
