"""Remember how far estimates were from what the engine really took on this machine.

Each record holds an estimate and a measurement (the process's GPU memory, and the engine's
own buffer sizes from its log) for one host, GPU model, engine and engine version. The
mean residual of the records that match is added to later estimates there: it absorbs
what no source code says, chiefly the CUDA runtime's own memory on that driver and GPU.
Stored as one JSON file in the data folder; no Qt.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from app.engines.llamacpp_log import BufferReport

log = logging.getLogger(__name__)

FILE_NAME = "fit-calibration.json"
MAX_RECORDS = 500


@dataclass(frozen=True)
class CalibrationKey:
    host: str
    gpu_model: str
    engine: str
    engine_version: str


@dataclass(frozen=True)
class CalibrationRecord:
    key: CalibrationKey
    estimated_mib: float
    measured_mib: float
    buffers: dict[str, float]
    at: float

    @property
    def residual_mib(self) -> float:
        return self.measured_mib - self.estimated_mib


class CalibrationStore:
    """A small JSON store of estimate-vs-measured records."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / FILE_NAME

    def _load(self) -> list[CalibrationRecord]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable calibration file %s: %s", self.path, exc)
            return []
        out = []
        for r in raw if isinstance(raw, list) else []:
            try:
                out.append(
                    CalibrationRecord(
                        CalibrationKey(**r["key"]),
                        float(r["estimated_mib"]),
                        float(r["measured_mib"]),
                        dict(r.get("buffers", {})),
                        float(r.get("at", 0)),
                    )
                )
            except (KeyError, TypeError, ValueError):
                continue
        return out

    def record(
        self,
        key: CalibrationKey,
        estimated_mib: float,
        measured_mib: float,
        report: BufferReport | None = None,
    ) -> CalibrationRecord:
        """Add one observation; the oldest go once there are more than MAX_RECORDS."""
        buffers: dict[str, float] = {}
        if report is not None:
            for kind in ("model", "kv", "compute", "output"):
                for buft, mib in report.by_kind(kind).items():
                    buffers[f"{kind}:{buft}"] = mib
        rec = CalibrationRecord(key, estimated_mib, measured_mib, buffers, time.time())
        records = [*self._load(), rec][-MAX_RECORDS:]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps([asdict(r) for r in records], indent=1), encoding="utf-8")
        tmp.replace(self.path)
        return rec

    def residual_mib(self, key: CalibrationKey) -> float | None:
        """Mean residual of matching records (same host, GPU, engine and version), or None."""
        match = [r.residual_mib for r in self._load() if r.key == key]
        return sum(match) / len(match) if match else None

    def apply(self, key: CalibrationKey, total_mib: float) -> float:
        """An estimated total corrected by this machine's residual (unchanged if none)."""
        res = self.residual_mib(key)
        return total_mib if res is None else total_mib + res

    def last_run(self, host: str, gpu_model: str, engine: str) -> CalibrationRecord | None:
        """The newest record for this host, GPU model and engine, any engine version.

        The Fit page shows it as "measured last time": a version bump rarely moves the
        runtime's own memory, and an older run is better than none.
        """
        match = [
            r
            for r in self._load()
            if (r.key.host, r.key.gpu_model, r.key.engine) == (host, gpu_model, engine)
        ]
        return max(match, key=lambda r: r.at) if match else None
