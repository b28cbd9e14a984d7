"""Replaying the real H100 trace and Rigdeck's own recordings through the Sampler interface."""

import json
from pathlib import Path

import pytest

from app.errors import UserError
from app.telemetry.replay import ReplaySampler, load_trace
from app.telemetry.snapshot import Snapshot
from tests.unit.app.telemetry.shared_data import h100_trace


def test_the_csv_trace_loads_with_its_board_facts() -> None:
    trace = load_trace(h100_trace())
    assert len(trace.frames) == 397
    assert trace.period == pytest.approx(0.1, abs=0.002)
    gpus = [frame.gpus[0] for frame in trace.frames]
    assert max(g.power_w or 0 for g in gpus) == pytest.approx(253.3)
    assert max(g.temperature_c or 0 for g in gpus) == 41
    assert max(g.memory_used_mib or 0 for g in gpus) == 6876
    assert gpus[0].memory_total_mib == 81559
    assert gpus[0].fan_pct is None  # the empty column: not reported on this board
    assert (gpus[0].slowdown_c, gpus[0].power_limit_w) == (89, 700)
    assert gpus[0].processes is not None
    assert gpus[0].processes[0].pid == 7628


def test_stepping_plays_every_frame_in_order_and_loops() -> None:
    trace = load_trace(h100_trace())
    sampler = ReplaySampler(trace, step=True)
    powers = [sampler.sample().gpus[0].power_w for _ in range(len(trace.frames) + 1)]
    assert powers[:-1] == [f.gpus[0].power_w for f in trace.frames]
    assert powers[-1] == trace.frames[0].gpus[0].power_w


def test_the_clock_drives_the_position() -> None:
    now = [100.0]
    trace = load_trace(h100_trace())
    sampler = ReplaySampler(trace, speed=2.0, clock=lambda: now[0])
    sampler.sample()
    now[0] += 6.26  # 12.52 s into the trace at twice real time
    gpu = sampler.sample().gpus[0]
    assert gpu.power_w == pytest.approx(253.3)  # the peak is at t = 12.51 s


def test_several_gpus_are_shifted_copies() -> None:
    sampler = ReplaySampler(load_trace(h100_trace()), gpu_count=8, step=True)
    gpus = sampler.sample().gpus
    assert [g.key for g in gpus] == [f"nvidia{i}" for i in range(8)]
    assert len({g.power_w for g in gpus}) > 1


def test_own_recordings_play_back(tmp_path: Path) -> None:
    source = ReplaySampler(load_trace(h100_trace()), step=True)
    lines = []
    for i in range(5):
        reading = source.sample()
        snapshot = Snapshot(1000.0 + i, reading.gpus, reading.host, (reading.status,))
        lines.append(json.dumps(snapshot.to_dict()))
    recording = tmp_path / "rec.jsonl"
    recording.write_text("\n".join(lines) + "\n", encoding="utf-8")

    trace = load_trace(recording)
    assert [f.t for f in trace.frames] == [0.0, 1.0, 2.0, 3.0, 4.0]
    again = ReplaySampler(trace, step=True)
    assert again.sample().gpus == tuple(Snapshot.from_dict(json.loads(lines[0])).gpus)


@pytest.mark.parametrize("content", ["", "t_s,nothing\n1,2\n", "{not json"])
def test_a_bad_file_is_a_user_error(tmp_path: Path, content: str) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(content, encoding="utf-8")
    with pytest.raises(UserError):
        load_trace(bad)
    with pytest.raises(UserError, match="cannot read"):
        load_trace(tmp_path / "missing.csv")
