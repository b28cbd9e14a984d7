"""Plays a recorded trace through the `Sampler` interface: for tests, demos and screenshots.

Two formats: the NVML CSV trace of shared/data (one GPU at 10 Hz: time, memory,
utilisation, temperature, power, SM clock, fan, `pid:MiB` processes) and Rigdeck's own
recordings, the JSON lines of `rigdeck monitor --json` (any GPUs, and the host).
The board's fixed facts (name, slowdown threshold, power limit) are not in the CSV; they
default to the H100 the trace was taken on, as shared/data/README.md states them.
"""

from __future__ import annotations

import bisect
import csv
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from app.errors import UserError
from app.telemetry.snapshot import (
    GpuProcess,
    GpuReading,
    HostReading,
    Reading,
    Snapshot,
    SourceStatus,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BoardInfo:
    """Facts a CSV trace does not carry."""

    name: str = "NVIDIA H100 80GB HBM3"
    slowdown_c: float = 89.0
    shutdown_c: float = 95.0
    power_limit_w: float = 700.0


@dataclass(frozen=True)
class Frame:
    """One recorded moment: seconds since the trace began, its GPUs and (maybe) host."""

    t: float
    gpus: tuple[GpuReading, ...]
    host: HostReading | None = None


@dataclass(frozen=True)
class Trace:
    """A recording: frames in time order; `period` is the typical step between them."""

    name: str
    frames: tuple[Frame, ...]

    @property
    def duration(self) -> float:
        """Length of one pass, counting the last frame's own step."""
        return self.frames[-1].t + self.period

    @property
    def period(self) -> float:
        if len(self.frames) < 2:
            return 1.0
        return (self.frames[-1].t - self.frames[0].t) / (len(self.frames) - 1)

    @property
    def has_host(self) -> bool:
        return any(frame.host is not None for frame in self.frames)


def load_trace(path: Path, board: BoardInfo | None = None) -> Trace:
    """Read a CSV trace or a JSON-lines recording.

    Raises:
        UserError: the file is missing, empty or not a trace.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read the replay file {path}: {exc}") from None
    try:
        if text.lstrip().startswith("{"):
            frames = _frames_from_jsonl(text)
        else:
            frames = _frames_from_csv(text, board or BoardInfo())
    except (KeyError, ValueError, TypeError) as exc:
        raise UserError(f"{path} is not a Rigdeck or NVML trace: {exc}") from None
    if not frames:
        raise UserError(f"the replay file {path} holds no samples")
    return Trace(path.name, tuple(frames))


def _opt(text: str) -> float | None:
    return float(text) if text.strip() else None


def _frames_from_csv(text: str, board: BoardInfo) -> list[Frame]:
    frames: list[Frame] = []
    start: float | None = None
    for row in csv.DictReader(text.splitlines()):
        t = float(row["t_s"])
        start = t if start is None else start
        processes = tuple(
            GpuProcess(int(pid), float(mib))
            for pid, mib in (item.split(":") for item in row["procs"].split() if item)
        )
        gpu = GpuReading(
            vendor="nvidia",
            index=0,
            name=board.name,
            memory_used_mib=float(row["mem_used_mib"]),
            memory_total_mib=float(row["mem_total_mib"]),
            temperature_c=float(row["temp_c"]),
            slowdown_c=board.slowdown_c,
            shutdown_c=board.shutdown_c,
            power_w=float(row["power_w"]),
            power_limit_w=board.power_limit_w,
            gpu_util_pct=float(row["gpu_util_pct"]),
            memory_util_pct=float(row["mem_util_pct"]),
            sm_clock_mhz=_opt(row["sm_clock_mhz"]),
            fan_pct=_opt(row.get("fan_pct") or ""),
            throttle_reasons=None,
            processes=processes,
        )
        frames.append(Frame(t - start, (gpu,)))
    return frames


def _frames_from_jsonl(text: str) -> list[Frame]:
    snapshots = [Snapshot.from_dict(json.loads(line)) for line in text.splitlines() if line.strip()]
    if not snapshots:
        return []
    start = snapshots[0].t
    # attribution is recomputed live, so recorded attributions are not kept
    return [Frame(s.t - start, s.gpus, s.host) for s in snapshots]


class ReplaySampler:
    """Returns the trace's reading for "now", looping, through the `Sampler` interface.

    By default the position follows `clock` at `speed` times real time. With
    `step=True` each `sample()` returns the next frame (tests, compressed-time runs).
    `gpu_count` > 1 plays the trace as that many GPUs, each shifted in phase, for
    multi-GPU demos and benchmarks.
    """

    name = "replay"

    def __init__(
        self,
        trace: Trace,
        *,
        speed: float = 1.0,
        gpu_count: int = 1,
        step: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.trace = trace
        self.speed = speed
        self.gpu_count = max(1, gpu_count)
        self._step = step
        self._clock = clock
        self._start: float | None = None
        self._next = 0
        self._times = [frame.t for frame in trace.frames]
        self._copies: dict[tuple[int, int], tuple[GpuReading, ...]] = {}
        self._status = SourceStatus(self.name, True, f"replaying {trace.name}")

    def _index_at(self, position: float) -> int:
        position %= self.trace.duration
        return max(0, bisect.bisect_right(self._times, position) - 1)

    def _index_for(self, copy: int) -> int:
        count = len(self.trace.frames)
        if self._step:
            return (self._next + copy * count // self.gpu_count) % count
        now = self._clock()
        if self._start is None:
            self._start = now
        position = (now - self._start) * self.speed
        return self._index_at(position + copy * self.trace.duration / self.gpu_count)

    def _gpus(self, index: int, copy: int) -> tuple[GpuReading, ...]:
        """Frame `index`'s GPUs renumbered as copy `copy` (cached: replace() is slow)."""
        found = self._copies.get((index, copy))
        if found is None:
            gpus = self.trace.frames[index].gpus
            found = tuple(_as_copy(gpu, copy, len(gpus), self.gpu_count) for gpu in gpus)
            self._copies[(index, copy)] = found
        return found

    def sample(self) -> Reading:
        gpus: list[GpuReading] = []
        host = None
        for copy in range(self.gpu_count):
            index = self._index_for(copy)
            if copy == 0:
                host = self.trace.frames[index].host
            gpus.extend(self._gpus(index, copy))
        self._next += 1
        return Reading(self._status, tuple(gpus), host)

    def backfill(self, end: float) -> Iterator[tuple[float, Reading]]:
        """Every frame of one pass, stamped to end at `end` (to fill the history at once)."""
        frames = self.trace.frames
        offset = end - frames[-1].t
        for frame in frames:
            gpus: list[GpuReading] = []
            for copy in range(self.gpu_count):
                index = self._index_at(frame.t + copy * self.trace.duration / self.gpu_count)
                gpus.extend(self._gpus(index, copy))
            yield offset + frame.t, Reading(self._status, tuple(gpus), frame.host)

    def close(self) -> None:
        """Nothing to release."""


def _as_copy(gpu: GpuReading, copy: int, per_copy: int, copies: int) -> GpuReading:
    if copies == 1:
        return gpu
    return replace(gpu, index=copy * per_copy + gpu.index, uuid=None)
