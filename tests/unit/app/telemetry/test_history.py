"""The history: raw window, min/max/mean tiers, a memory ceiling, persistence."""

from pathlib import Path

import numpy as np
import pytest

from app.telemetry.history import History, TierSpec


def test_the_recent_window_holds_every_sample() -> None:
    history = History(1.0)
    for i in range(100):
        history.append(1000.0 + i, {"a": float(i), "b": None if i % 2 else 1.0})
    window = history.window(["a", "b", "never"], 10)
    assert not window.decimated
    assert window.t.tolist() == [1089.0 + i for i in range(11)]
    assert window.mean[:, 0].tolist() == list(range(89, 100))
    assert np.isnan(window.mean[0, 1])  # None (at 1089) is a gap, not zero
    assert window.mean[1, 1] == 1.0
    assert np.isnan(window.mean[:, 2]).all()


def test_longer_ranges_read_decimated_min_max_mean() -> None:
    history = History(1.0, recent_s=60, tiers=(TierSpec(10.0, 100), TierSpec(100.0, 50)))
    for i in range(600):
        history.append(float(i), {"v": float(i % 10)})  # a saw tooth 0..9 every 10 s
    window = history.window(["v"], 300)
    assert window.decimated
    assert (window.low[:-1, 0] == 0).all()
    assert (window.high[:-1, 0] == 9).all()
    assert window.mean[:-1, 0] == pytest.approx(4.5)
    assert window.t[-2] - window.t[-3] == 10.0


def test_the_longest_range_falls_back_to_the_coarsest_tier() -> None:
    history = History(1.0, recent_s=60, tiers=(TierSpec(10.0, 30), TierSpec(100.0, 50)))
    for i in range(2000):
        history.append(float(i), {"v": 1.0})
    window = history.window(["v"], 1500)
    assert window.t[1] - window.t[0] == 100.0


def test_memory_has_a_ceiling_whatever_the_run_length() -> None:
    history = History(1.0)
    keys = {f"nvidia{g}.{f}": 1.0 for g in range(8) for f in range(12)}
    for i in range(5000):
        history.append(float(i), keys)
    ceiling = history.nbytes
    for i in range(5000, 30000, 7):
        history.append(float(i), keys)
    assert history.nbytes == ceiling
    assert ceiling < 16 * 1024 * 1024


def test_a_new_metric_mid_run_joins_without_losing_the_others() -> None:
    history = History(1.0)
    for i in range(10):
        history.append(float(i), {"a": 1.0})
    for i in range(10, 20):
        history.append(float(i), {"a": 2.0, **{f"new{j}": float(j) for j in range(40)}})
    window = history.window(["a", "new39"], 100)
    assert window.mean[:, 0].tolist() == [1.0] * 10 + [2.0] * 10
    assert np.isnan(window.mean[:10, 1]).all()
    assert (window.mean[10:, 1] == 39).all()


def test_a_restart_keeps_the_last_day(tmp_path: Path) -> None:
    path = tmp_path / "history.npz"
    history = History(1.0)
    for i in range(3000):
        history.append(10_000.0 + i, {"temp": 40.0 + i % 5})
    history.save(path)

    restored = History(1.0)
    assert restored.load(path, newer_than=0.0)
    before = history.window(["temp"], 3600)
    after = restored.window(["temp"], 3600)
    assert after.decimated
    # every closed bucket comes back; the open one (last in `before`) was not saved
    assert after.t.tolist() == before.t[:-1].tolist()
    assert after.high[:, 0].tolist() == before.high[:-1, 0].tolist()
    assert restored.window(["temp"], 60).mean[:, 0].tolist() == (
        history.window(["temp"], 60).mean[:, 0].tolist()
    )
    assert not History(1.0).load(tmp_path / "missing.npz", newer_than=0.0)
