"""A 24-hour run compressed in time: memory stays flat once the arrays exist."""

import tracemalloc

from app.telemetry.alerts import AlertConfig
from app.telemetry.replay import ReplaySampler, load_trace
from app.telemetry.service import MonitorService
from app.telemetry.snapshot import HostReading, Reading, SourceStatus
from tests.unit.app.telemetry.shared_data import h100_trace

INTERVAL_S = 10.0
DAY_S = 24 * 3600


class SteadyHost:
    """A host whose swap creeps up and RAM wanders, so every alert path runs."""

    name = "host"

    def __init__(self) -> None:
        self.n = 0

    def sample(self) -> Reading:
        self.n += 1
        host = HostReading(
            ram_used_mib=50000.0 + (self.n % 500) * 20,
            ram_total_mib=64000.0,
            swap_used_mib=float(self.n % 2000),
            swap_total_mib=8192.0,
            cpu_pct=(12.0, 40.0, 3.0, 80.0),
        )
        return Reading(SourceStatus(self.name, True), host=host)

    def close(self) -> None:
        pass


def test_a_day_at_high_speed_keeps_memory_flat() -> None:
    replay = ReplaySampler(load_trace(h100_trace()), gpu_count=2, step=True)
    config = AlertConfig(gpu_temp_margin_c=48, vram_pct=8.4, cooldown_s=600)
    service = MonitorService([replay, SteadyHost()], interval_s=INTERVAL_S, alerts=config)
    alerts: list[object] = []
    service.alerted.connect(alerts.append)
    service.set_backend_pids({7628: "moe30"})
    t = 1_700_000_000.0
    for _ in range(int(3600 / INTERVAL_S)):  # the first hour allocates everything
        service.step(t)
        t += INTERVAL_S
    ceiling = service.history.nbytes
    fired_first_hour = len(alerts)
    alerts.clear()

    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        for _ in range(int((DAY_S - 3600) / INTERVAL_S)):
            service.step(t)
            t += INTERVAL_S
            alerts.clear()
        grown, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert service.history.nbytes == ceiling
    assert grown - start < 256 * 1024, f"grew by {grown - start} bytes"
    assert fired_first_hour > 0  # the pipeline really alerted along the way
    day = service.history.window(["nvidia0.temperature_c", "nvidia0.vram.moe30"], DAY_S)
    assert day.decimated
    assert day.high[:, 0].max() == 41.0
    assert day.high[:, 1].max() == 6388.0
    assert day.t[-1] - day.t[0] > 23 * 3600
