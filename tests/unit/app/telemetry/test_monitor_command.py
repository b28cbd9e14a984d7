"""`rigdeck monitor`: JSON lines without a GUI, replay, and a missing driver as a message."""

import json
from pathlib import Path

import pytest

from app.cli.main import main
from app.telemetry.snapshot import Snapshot
from tests.unit.app.telemetry.shared_data import h100_trace


def test_json_lines_of_the_replayed_trace(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "monitor",
            "--replay",
            str(h100_trace()),
            "--speed",
            "40",
            "--interval",
            "0.05",
            "--seconds",
            "0.6",
            "--json",
        ]
    )
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    snapshots = [Snapshot.from_dict(json.loads(line)) for line in out]
    assert len(snapshots) >= 3
    gpu = snapshots[0].gpus[0]
    assert gpu.name == "NVIDIA H100 80GB HBM3"
    assert gpu.memory_total_mib == 81559
    assert snapshots[0].host is not None  # the host is read for real beside the replay
    assert [s.t for s in snapshots] == sorted(s.t for s in snapshots)


def test_a_recording_replays(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "monitor",
                "--replay",
                str(h100_trace()),
                "--speed",
                "100",
                "--interval",
                "0.05",
                "--seconds",
                "0.3",
                "--json",
            ]
        )
        == 0
    )
    recording = tmp_path / "rec.jsonl"
    recording.write_text(capsys.readouterr().out, encoding="utf-8")
    assert (
        main(["monitor", "--replay", str(recording), "--seconds", "0.2", "--interval", "0.1"]) == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert "GPU0" in lines[0]
    assert "GiB" in lines[0]


def test_without_a_driver_the_host_is_still_printed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["monitor", "--seconds", "0.15", "--interval", "0.1"]) == 0
    captured = capsys.readouterr()
    assert "RAM" in captured.out
    if "nvidia" in captured.err:
        assert captured.err.count("no NVIDIA driver") == 1


def test_a_bad_replay_file_is_a_user_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["monitor", "--replay", str(tmp_path / "nope.csv")]) == 2
    assert "cannot read the replay file" in capsys.readouterr().err
    assert main(["monitor", "--interval", "0"]) == 2
