"""Alerts on the H100 trace's real values: once per excursion, with a cool-down."""

from dataclasses import replace

import pytest

from app.telemetry.alerts import Alert, AlertConfig, AlertEngine, Severity
from app.telemetry.replay import load_trace
from app.telemetry.snapshot import GpuReading, HostReading, Snapshot
from tests.unit.app.telemetry.shared_data import h100_trace

QUIET = AlertConfig(vram_pct=200, host_ram_pct=200, swap_growth_mib=1e9, cooldown_s=0)


def _play(engine: AlertEngine, passes: int = 1) -> list[Alert]:
    trace = load_trace(h100_trace())
    fired: list[Alert] = []
    t = 0.0
    for _ in range(passes):
        for frame in trace.frames:
            fired += engine.evaluate(Snapshot(t, frame.gpus))
            t += 0.1
    return fired


def test_temperature_near_slowdown_fires_once_per_excursion() -> None:
    # slowdown 89 °C; a 48 °C margin puts the threshold at the trace's 41 °C peak,
    # which it touches many times (41, 40, 41, ...) within one excursion
    engine = AlertEngine(replace(QUIET, gpu_temp_margin_c=48))
    (alert,) = _play(engine)
    assert alert.rule == "gpu_temperature"
    assert alert.value == 41
    assert alert.title == "GPU 0 at 41 °C"
    assert "48 °C from its slowdown threshold (89 °C)" in alert.message

    again = AlertEngine(replace(QUIET, gpu_temp_margin_c=48))
    assert len(_play(again, passes=2)) == 2  # the trace cools to 37 °C, then heats again


def test_the_cooldown_holds_back_a_second_excursion() -> None:
    engine = AlertEngine(replace(QUIET, gpu_temp_margin_c=48, cooldown_s=300))
    assert len(_play(engine, passes=2)) == 1


def test_vram_above_a_lowered_threshold() -> None:
    # the trace holds 6772 MiB, then 6872/6876 MiB of 81559 (8.43 %)
    engine = AlertEngine(replace(QUIET, vram_pct=8.4))
    (alert,) = _play(engine)
    assert alert.rule == "vram"
    assert alert.value == 6872
    assert alert.message == "6.7 of 79.6 GiB used (8 %) on NVIDIA H100 80GB HBM3."


def test_default_thresholds_stay_quiet_on_the_trace() -> None:
    engine = AlertEngine()
    assert _play(engine) == []
    assert engine.severity is Severity.OK


def _host(ram: float, swap: float) -> HostReading:
    return HostReading(ram, 64000.0, swap, 8000.0, (10.0,))


def test_host_ram_and_swap_growth() -> None:
    engine = AlertEngine(AlertConfig(cooldown_s=0, swap_growth_mib=512))
    assert engine.evaluate(Snapshot(0, host=_host(30000, 100))) == []
    (ram,) = engine.evaluate(Snapshot(10, host=_host(60000, 100)))
    assert ram.rule == "host_ram"
    assert engine.severity is Severity.ALERT
    (swap,) = engine.evaluate(Snapshot(60, host=_host(60000, 700)))
    assert swap.rule == "swap_growing"
    assert "+600 MiB" in swap.message
    assert engine.evaluate(Snapshot(70, host=_host(60000, 900))) == []  # same excursion


def test_throttling_and_a_lost_gpu() -> None:
    engine = AlertEngine(AlertConfig(cooldown_s=0))
    gpu = GpuReading("nvidia", 0, "H100", throttle_reasons=("sw_power_cap",))
    assert engine.evaluate(Snapshot(0, (gpu,))) == []  # a power cap under load is normal
    hot = replace(gpu, throttle_reasons=("hw_thermal",))
    (alert,) = engine.evaluate(Snapshot(1, (hot,)))
    assert alert.message == "H100 slowed its clocks: thermal (hardware)."
    (lost,) = engine.evaluate(Snapshot(2, (replace(gpu, lost=True),)))
    assert lost.title == "GPU 0 was lost"


def test_backend_events_cool_down_per_backend() -> None:
    engine = AlertEngine(AlertConfig(cooldown_s=60))
    oom = engine.backend_event("qwen3", "oom", "CUDA out of memory", 0)
    assert oom is not None
    assert oom.title == "Backend qwen3 ran out of memory"
    assert engine.backend_event("qwen3", "oom", "again", 30) is None
    assert engine.backend_event("gemma", "died", "exit 1", 30) is not None
    assert engine.backend_event("qwen3", "oom", "later", 61) is not None


def test_switched_off_alerts_fire_nothing() -> None:
    engine = AlertEngine(replace(QUIET, enabled=False, gpu_temp_margin_c=48))
    assert _play(engine) == []
    assert engine.backend_event("x", "died", "", 0) is None


@pytest.mark.parametrize(("temp", "severity"), [(30, Severity.OK), (80, Severity.WARN)])
def test_severity_for_the_tray(temp: float, severity: Severity) -> None:
    engine = AlertEngine()
    gpu = GpuReading("nvidia", 0, "H100", temperature_c=temp, slowdown_c=89)
    engine.evaluate(Snapshot(0, (gpu,)))
    assert engine.severity is severity
