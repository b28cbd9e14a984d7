"""The sampling schedule (drift-free, skips rather than queues) and the service's thread."""

import threading
from pathlib import Path

import pytest

from app.telemetry.host import HostSampler
from app.telemetry.replay import ReplaySampler, load_trace
from app.telemetry.sampler_loop import run_schedule
from app.telemetry.service import MonitorOptions, MonitorService
from app.telemetry.snapshot import Reading, Snapshot, SourceStatus
from tests.unit.app.telemetry.shared_data import h100_trace


class FakeTime:
    """A clock and a stop event whose waits advance the clock instead of sleeping."""

    def __init__(self) -> None:
        self.now = 0.0
        self.stopped = False

    def clock(self) -> float:
        return self.now

    def is_set(self) -> bool:
        return self.stopped

    def wait(self, timeout: float | None = None) -> bool:
        self.now += timeout or 0.0
        return self.stopped


def _run(step_cost: float, until: float) -> list[float]:
    fake = FakeTime()
    starts: list[float] = []

    def step(now: float) -> None:
        starts.append(now)
        fake.now += step_cost

    run_schedule(step, lambda: 1.0, fake, clock=fake.clock, deadline=until)
    return starts


def test_the_schedule_does_not_drift_with_the_cost_of_a_step() -> None:
    assert _run(0.3, until=5.5) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


def test_an_overrun_skips_missed_slots_instead_of_bunching() -> None:
    assert _run(2.5, until=10.0) == [0.0, 3.0, 6.0, 9.0]


class BrokenSampler:
    name = "broken"

    def sample(self) -> Reading:
        raise RuntimeError("driver hiccup")

    def close(self) -> None:
        pass


def test_a_failing_sampler_is_a_state_and_the_others_keep_sampling() -> None:
    replay = ReplaySampler(load_trace(h100_trace()), step=True)
    service = MonitorService([BrokenSampler(), replay])
    snapshot = service.step(1000.0)
    assert len(snapshot.gpus) == 1
    assert snapshot.sources[0] == SourceStatus("broken", False, "broken failed: driver hiccup")


def test_the_thread_samples_and_stops_cleanly(tmp_path: Path) -> None:
    got = threading.Event()
    seen: list[Snapshot] = []
    history_file = tmp_path / "history.npz"
    service = MonitorService(
        [ReplaySampler(load_trace(h100_trace()), step=True), HostSampler()],
        interval_s=0.01,
        history_file=history_file,
    )

    def on_sampled(snapshot: Snapshot) -> None:
        seen.append(snapshot)
        if len(seen) >= 5:
            got.set()

    service.sampled.connect(on_sampled)
    service.start()
    assert got.wait(10)
    service.stop()
    assert not service.running
    assert service.latest is not None
    assert service.latest.host is not None
    assert history_file.exists()  # saved at stop, for the next start

    again = MonitorService([HostSampler()], history_file=history_file)
    again.start()
    again.stop()
    window = again.history.window(["nvidia0.power_w"], 60)
    assert len(window.t) >= 5  # the restart kept what was sampled before


def test_prefilled_replay_holds_one_whole_pass() -> None:
    options = MonitorOptions(replay=h100_trace(), prefill=True)
    service = MonitorService.from_options(options)
    window = service.history.window(
        ["nvidia0.power_w", "nvidia0.temperature_c", "nvidia0.memory_used_mib"], 60
    )
    assert len(window.t) == 397
    assert window.high.max(axis=0).tolist() == pytest.approx([253.3, 41.0, 6876.0])
    assert service.history_file is None  # a replay never overwrites the real history
