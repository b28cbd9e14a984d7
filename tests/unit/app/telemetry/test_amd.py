"""The AMD sampler: import-guarded, and its readings through a stand-in amdsmi."""

import sys
from enum import Enum
from typing import Any

import pytest

from app.telemetry.amd import AmdSampler, load_amdsmi


def test_without_amdsmi_the_state_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "amdsmi", None)  # import fails as where ROCm is absent
    assert load_amdsmi() is None
    reading = AmdSampler().sample()
    assert not reading.status.available
    assert reading.status.message == "no AMD driver (amdsmi is not installed)"
    assert reading.gpus == ()


class _TempType(Enum):
    EDGE = 0
    HOTSPOT = 1


class _TempMetric(Enum):
    CURRENT = 0
    CRITICAL = 1


class FakeAmdSmi:
    AmdSmiTemperatureType = _TempType
    AmdSmiTemperatureMetric = _TempMetric

    def __init__(self) -> None:
        self.shut = False

    def amdsmi_init(self) -> None:
        pass

    def amdsmi_shut_down(self) -> None:
        self.shut = True

    def amdsmi_get_processor_handles(self) -> list[str]:
        return ["h0"]

    def amdsmi_get_gpu_asic_info(self, handle: str) -> dict[str, Any]:
        return {"market_name": "AMD Instinct MI210"}

    def amdsmi_get_gpu_vram_usage(self, handle: str) -> dict[str, int]:
        return {"vram_used": 30000, "vram_total": 65520}

    def amdsmi_get_temp_metric(self, handle: str, kind: _TempType, metric: _TempMetric) -> int:
        return 71 if metric is _TempMetric.CURRENT else 105

    def amdsmi_get_power_info(self, handle: str) -> dict[str, Any]:
        return {"average_socket_power": 212, "power_limit": 300}

    def amdsmi_get_gpu_activity(self, handle: str) -> dict[str, Any]:
        return {"gfx_activity": 87, "umc_activity": "N/A"}


def test_readings_through_amdsmi() -> None:
    smi = FakeAmdSmi()
    sampler = AmdSampler(smi)
    reading = sampler.sample()
    assert reading.status.available
    (gpu,) = reading.gpus
    assert (gpu.vendor, gpu.name, gpu.key) == ("amd", "AMD Instinct MI210", "amd0")
    assert (gpu.memory_used_mib, gpu.memory_total_mib) == (30000, 65520)
    assert (gpu.temperature_c, gpu.slowdown_c) == (71, 105)
    assert (gpu.power_w, gpu.power_limit_w) == (212, 300)
    assert gpu.gpu_util_pct == 87
    assert gpu.memory_util_pct is None  # "N/A" from amdsmi becomes None
    sampler.close()
    assert smi.shut
