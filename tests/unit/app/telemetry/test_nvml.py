"""The NVML sampler: the real library without a driver, and a trace through NVML's API."""

import logging

import pynvml
import pytest

from app.telemetry.nvml import NvmlSampler
from app.telemetry.replay import load_trace
from tests.unit.app.telemetry.fake_nvml import FakeNvml
from tests.unit.app.telemetry.shared_data import h100_trace


@pytest.fixture
def fake() -> FakeNvml:
    return FakeNvml(load_trace(h100_trace()))


def _driver_present() -> bool:
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return False
    pynvml.nvmlShutdown()
    return True


@pytest.mark.skipif(_driver_present(), reason="this machine has an NVIDIA driver")
def test_without_a_driver_the_real_library_gives_a_state_not_an_exception() -> None:
    with pytest.raises(pynvml.NVMLError_LibraryNotFound):
        pynvml.nvmlInit()  # what the real library does here
    sampler = NvmlSampler()
    reading = sampler.sample()
    assert not reading.status.available
    assert reading.status.message == "no NVIDIA driver (the NVML library was not found)"
    assert reading.gpus == ()
    assert sampler.sample().status == reading.status  # tried once, not every sample
    sampler.close()
    sampler.close()


def test_a_driver_that_is_not_loaded_is_said_so(fake: FakeNvml) -> None:
    def fail() -> None:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_DRIVER_NOT_LOADED)

    fake.nvmlInit = fail  # type: ignore[method-assign]
    reading = NvmlSampler(fake).sample()
    assert reading.status.message == "no NVIDIA driver loaded"


def test_readings_follow_the_trace(fake: FakeNvml) -> None:
    sampler = NvmlSampler(fake)
    fake.row = 124  # the power peak
    (gpu,) = sampler.sample().gpus
    assert gpu.name == "NVIDIA H100 80GB HBM3"
    assert gpu.power_w == pytest.approx(253.3)
    assert gpu.power_limit_w == 700.0
    assert gpu.slowdown_c == 89.0
    assert gpu.shutdown_c == 95.0
    assert gpu.memory_total_mib == pytest.approx(81559)
    assert gpu.memory_used_mib == pytest.approx(6876)  # v2: matches nvidia-smi
    assert gpu.sm_clock_mhz == 1980
    assert gpu.memory_clock_mhz == 2619
    assert gpu.fan_pct is None  # not supported on this board: None, not "N/A"
    assert gpu.throttle_reasons == ()
    assert gpu.processes is not None
    assert [(p.pid, round(p.used_mib or 0)) for p in gpu.processes] == [(7628, 6388)]
    sampler.close()
    assert fake.shutdowns == 1


def test_throttle_reasons_are_named(fake: FakeNvml) -> None:
    fake.throttle_mask = 0x4 | 0x40
    (gpu,) = NvmlSampler(fake).sample().gpus
    assert gpu.throttle_reasons == ("sw_power_cap", "hw_thermal")


def test_a_lost_gpu_is_marked_and_the_others_keep_sampling(
    fake: FakeNvml, caplog: pytest.LogCaptureFixture
) -> None:
    fake.gpus = 2
    sampler = NvmlSampler(fake)
    assert [g.lost for g in sampler.sample().gpus] == [False, False]
    fake.lost.add(1)
    fake.row = 124
    with caplog.at_level(logging.WARNING):
        reading = sampler.sample()
    first, second = reading.gpus
    assert second.lost
    assert second.temperature_c is None
    assert first.power_w == pytest.approx(253.3)
    assert reading.status.message == "GPU 1 lost (fell off the bus)"
    assert "GPU 1" in caplog.text
    fake.lost.clear()
    assert sampler.sample().gpus[1].lost  # stays lost: no retry against a dead bus


def test_a_function_missing_from_the_library_reads_none_and_is_logged_once(
    fake: FakeNvml, caplog: pytest.LogCaptureFixture
) -> None:
    fake.nvmlDeviceGetEnforcedPowerLimit = None  # type: ignore[assignment,method-assign]
    sampler = NvmlSampler(fake)
    with caplog.at_level(logging.INFO, logger="app.telemetry.nvml"):
        for _ in range(3):
            (gpu,) = sampler.sample().gpus
    assert gpu.power_limit_w is None
    assert gpu.power_w is not None
    assert caplog.text.count("nvmlDeviceGetEnforcedPowerLimit") == 1
