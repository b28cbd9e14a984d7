"""Fixed-size history of every metric: a raw ring at the sampling rate, then decimated tiers.

The raw ring holds the recent window at the sampling rate. Each tier keeps, per bucket
of `width` seconds, the min, max and mean of every metric, in a ring of fixed length
(hours, then days). All arrays are allocated up front (columns grow in blocks as new
metrics appear, up to `max_columns`), so memory has a ceiling whatever the run length.
The sampling thread appends; the UI reads copies, under one lock.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

COLUMN_BLOCK = 32
"""Columns are added this many at a time, so new metrics rarely reallocate."""


@dataclass(frozen=True)
class TierSpec:
    """A decimated tier: buckets of `width` seconds, `length` of them kept."""

    width: float
    length: int


DEFAULT_TIERS = (
    TierSpec(5.0, 1440),  # 2 hours in 5 s buckets
    TierSpec(60.0, 1560),  # 26 hours in 1 min buckets
    TierSpec(600.0, 1008),  # 7 days in 10 min buckets
)
RECENT_S = 600.0
MAX_RAW_ROWS = 6000


@dataclass(frozen=True)
class Window:
    """Copies for plotting: `t` (n,), and per requested key `mean`, `low`, `high` (n, k)."""

    t: F64
    mean: F32
    low: F32
    high: F32
    decimated: bool


class _Ring:
    """A ring of rows (time + one or three value planes)."""

    def __init__(self, length: int, columns: int, planes: int) -> None:
        self.length = length
        self.t = np.full(length, np.nan, dtype=np.float64)
        self.planes = [np.full((length, columns), np.nan, dtype=np.float32) for _ in range(planes)]
        self.head = 0  # next row to write
        self.count = 0

    def grow(self, columns: int) -> None:
        for i, plane in enumerate(self.planes):
            extra = np.full((self.length, columns - plane.shape[1]), np.nan, dtype=np.float32)
            self.planes[i] = np.hstack([plane, extra])

    def push(self, t: float, rows: Sequence[F32]) -> None:
        self.t[self.head] = t
        for plane, row in zip(self.planes, rows, strict=True):
            plane[self.head] = row
        self.head = (self.head + 1) % self.length
        self.count = min(self.count + 1, self.length)

    def oldest(self) -> float:
        if self.count == 0:
            return math.inf
        return float(self.t[(self.head - self.count) % self.length])

    def since(self, start: float, columns: list[int]) -> tuple[F64, list[F32]]:
        """Rows with t >= start, oldest first, for the given columns."""
        order = (np.arange(self.count) + self.head - self.count) % self.length
        times = self.t[order]
        keep = order[times >= start]
        cols = np.asarray(columns, dtype=np.intp)
        return self.t[keep], [plane[np.ix_(keep, cols)] for plane in self.planes]


class _Tier:
    """One decimated tier with its open bucket."""

    def __init__(self, spec: TierSpec, columns: int) -> None:
        self.spec = spec
        self.ring = _Ring(spec.length, columns, 3)
        self.bucket = -1
        self.low = np.full(columns, np.nan, dtype=np.float32)
        self.high = np.full(columns, np.nan, dtype=np.float32)
        self.total = np.zeros(columns, dtype=np.float64)
        self.count = np.zeros(columns, dtype=np.int32)

    def grow(self, columns: int) -> None:
        self.ring.grow(columns)
        extra = columns - self.low.shape[0]
        self.low = np.concatenate([self.low, np.full(extra, np.nan, dtype=np.float32)])
        self.high = np.concatenate([self.high, np.full(extra, np.nan, dtype=np.float32)])
        self.total = np.concatenate([self.total, np.zeros(extra)])
        self.count = np.concatenate([self.count, np.zeros(extra, dtype=np.int32)])

    def add(self, t: float, row: F32, present: npt.NDArray[np.bool_]) -> None:
        bucket = math.floor(t / self.spec.width)
        if bucket != self.bucket:
            self.flush()
            self.bucket = bucket
        np.fmin(self.low, row, out=self.low)
        np.fmax(self.high, row, out=self.high)
        self.total[present] += row[present]
        self.count += present

    def open_row(self) -> tuple[float, F32, F32, F32] | None:
        if self.bucket < 0 or not self.count.any():
            return None
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = (self.total / self.count).astype(np.float32)
        return (self.bucket + 0.5) * self.spec.width, self.low, self.high, mean

    def flush(self) -> None:
        row = self.open_row()
        if row is not None:
            t, low, high, mean = row
            self.ring.push(t, [low.copy(), high.copy(), mean])
        self.low.fill(np.nan)
        self.high.fill(np.nan)
        self.total.fill(0.0)
        self.count.fill(0)


class History:
    """Every metric's history, by name ("nvidia0.temperature_c"); thread-safe."""

    def __init__(
        self,
        interval_s: float = 1.0,
        *,
        recent_s: float = RECENT_S,
        tiers: Sequence[TierSpec] = DEFAULT_TIERS,
        max_columns: int = 1024,
    ) -> None:
        self._lock = threading.Lock()
        self.max_columns = max_columns
        # a little over the window, so the window itself never needs a coarser tier
        wanted = math.ceil(1.05 * recent_s / max(interval_s, 1e-3)) + 1
        raw_rows = int(min(MAX_RAW_ROWS, max(60, wanted)))
        self._columns: dict[str, int] = {}
        self._capacity = COLUMN_BLOCK
        self._raw = _Ring(raw_rows, self._capacity, 1)
        self._tiers = [_Tier(spec, self._capacity) for spec in tiers]
        self._dropped: set[str] = set()
        self.version = 0
        """Bumped on every append, so a reader can skip a redraw when nothing changed."""
        self.latest_t = math.nan

    # ------------------------------------------------------------------ writing
    def append(self, t: float, values: Mapping[str, float | None]) -> None:
        """Store one sample; a metric not in `values` (or None) is missing at `t`."""
        with self._lock:
            row = np.full(self._capacity, np.nan, dtype=np.float32)
            for key, value in values.items():
                if value is None:
                    continue
                column = self._columns.get(key)
                if column is None:
                    column = self._add_column(key)
                    if column is None:
                        continue
                    if column >= row.shape[0]:
                        row = np.concatenate(
                            [row, np.full(self._capacity - row.shape[0], np.nan, dtype=np.float32)]
                        )
                row[column] = value
            present = ~np.isnan(row)
            self._raw.push(t, [row])
            for tier in self._tiers:
                tier.add(t, row, present)
            self.version += 1
            self.latest_t = t

    def _add_column(self, key: str) -> int | None:
        if len(self._columns) >= self.max_columns:
            if key not in self._dropped:
                self._dropped.add(key)
                log.warning("history is full (%d metrics); %s is not kept", self.max_columns, key)
            return None
        column = len(self._columns)
        self._columns[key] = column
        if column >= self._capacity:
            self._capacity += COLUMN_BLOCK
            self._raw.grow(self._capacity)
            for tier in self._tiers:
                tier.grow(self._capacity)
        return column

    # ------------------------------------------------------------------ reading
    def names(self) -> list[str]:
        with self._lock:
            return list(self._columns)

    def window(self, keys: Sequence[str], seconds: float, now: float | None = None) -> Window:
        """The last `seconds` of `keys`, from the finest tier that covers the range.

        A key never seen reads as NaN. The open bucket of a tier is included, so the
        newest point is never more than one bucket old.
        """
        with self._lock:
            end = self.latest_t if now is None else now
            start = end - seconds
            columns = [self._columns.get(k, -1) for k in keys]
            safe = [c if c >= 0 else 0 for c in columns]
            missing = [i for i, c in enumerate(columns) if c < 0]
            raw_covers = self._raw.count < self._raw.length or self._raw.oldest() <= start
            if raw_covers or not self._tiers:
                t, (values,) = self._raw.since(start, safe)
                values = values.copy()
                values[:, missing] = np.nan
                return Window(t, values, values, values, decimated=False)
            tier = next(
                (
                    tier
                    for tier in self._tiers
                    if tier.ring.count < tier.ring.length or tier.ring.oldest() <= start
                ),
                self._tiers[-1],
            )
            t, (low, high, mean) = tier.ring.since(start, safe)
            open_row = tier.open_row()
            if open_row is not None:
                t = np.append(t, open_row[0])
                low, high, mean = (
                    np.vstack([plane, extra[safe][None, :]])
                    for plane, extra in zip((low, high, mean), open_row[1:], strict=True)
                )
            for plane in (low, high, mean):
                plane[:, missing] = np.nan
            return Window(t, mean, low, high, decimated=True)

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays (the memory ceiling, for tests and the benchmark)."""
        with self._lock:
            rings = [self._raw, *(tier.ring for tier in self._tiers)]
            total = sum(r.t.nbytes + sum(p.nbytes for p in r.planes) for r in rings)
            total += sum(t.low.nbytes * 2 + t.total.nbytes + t.count.nbytes for t in self._tiers)
            return total

    # ------------------------------------------------------------------ persistence
    def save(self, path: Path) -> None:
        """Write the tiers (and raw ring) to `path` atomically (np.savez)."""
        with self._lock:
            arrays: dict[str, npt.NDArray[np.generic]] = {
                "columns": np.array(list(self._columns), dtype=str),
                "raw_t": _ordered(self._raw, self._raw.t),
                "raw_v": _ordered(self._raw, self._raw.planes[0]),
            }
            for i, tier in enumerate(self._tiers):
                arrays[f"tier{i}_width"] = np.array(tier.spec.width)
                arrays[f"tier{i}_t"] = _ordered(tier.ring, tier.ring.t)
                for name, plane in zip(("low", "high", "mean"), tier.ring.planes, strict=True):
                    arrays[f"tier{i}_{name}"] = _ordered(tier.ring, plane)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        with tmp.open("wb") as handle:
            np.savez(handle, **arrays)  # type: ignore[arg-type]
        tmp.replace(path)

    def load(self, path: Path, *, newer_than: float) -> bool:
        """Restore what `save` wrote, keeping rows newer than `newer_than`; False if unusable."""
        try:
            with np.load(path, allow_pickle=False) as data:
                names = [str(n) for n in data["columns"]]
                with self._lock:
                    for name in names:
                        if name not in self._columns:
                            self._add_column(name)
                    index = [self._columns.get(n, -1) for n in names]
                    self._restore(self._raw, data["raw_t"], [data["raw_v"]], index, newer_than)
                    for i, tier in enumerate(self._tiers):
                        if (
                            f"tier{i}_t" not in data
                            or float(data[f"tier{i}_width"]) != tier.spec.width
                        ):
                            continue
                        planes = [data[f"tier{i}_{n}"] for n in ("low", "high", "mean")]
                        self._restore(tier.ring, data[f"tier{i}_t"], planes, index, newer_than)
                    self.version += 1
        except (OSError, KeyError, ValueError) as exc:
            log.warning("monitor history %s not restored: %s", path, exc)
            return False
        return True

    def _restore(
        self,
        ring: _Ring,
        times: F64,
        planes: Sequence[F32],
        index: list[int],
        newer_than: float,
    ) -> None:
        rows = np.flatnonzero(times > newer_than)[-ring.length :]
        sources = [i for i, target in enumerate(index) if target >= 0]
        targets = [index[i] for i in sources]
        full_planes = []
        for plane in planes:
            full = np.full((len(rows), self._capacity), np.nan, dtype=np.float32)
            full[:, targets] = plane[np.ix_(rows, np.asarray(sources, dtype=np.intp))]
            full_planes.append(full)
        for n, row in enumerate(rows):
            ring.push(float(times[row]), [full[n] for full in full_planes])
        if len(rows):
            newest = float(times[rows[-1]])
            self.latest_t = newest if math.isnan(self.latest_t) else max(self.latest_t, newest)


def _ordered(ring: _Ring, array: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
    order = (np.arange(ring.count) + ring.head - ring.count) % ring.length
    return array[order]
