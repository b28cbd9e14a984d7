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
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from app.engines.llamacpp_log import BufferReport
from app.engines.plan import LaunchPlan

log = logging.getLogger(__name__)

FILE_NAME = "fit-calibration.json"
MAX_RECORDS = 500
CPU_MODEL = "CPU"
"""The GPU model of a key whose backend ran on the host's CPU only."""


def plan_key(plan: LaunchPlan) -> str:
    """What identifies a plan's memory: its model and the fields that size the buffers,
    the same for the plan the Fit page shows and the backend started from it (its name,
    port, image, threads and labels do not count)."""
    if plan.engine == "llamacpp":
        from app.fit.launch import fit_plan_of, launch_plan

        normal = launch_plan(Path(plan.model), fit_plan_of(plan))
        plan = replace(normal, adapters=plan.adapters, extra_args=plan.extra_args)
    return replace(plan, name="", image="", port=None, threads=None, labels={},
                   reasoning_format=None).to_json()


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
    plan: str = ""
    """`plan_key` of the plan that ran."""
    start: str = ""
    """Which start of which backend it measured (host, ref, start time): one record each."""
    source: str = ""
    """Where the measurement came from: "nvml" (the process's GPU memory) or "engine"
    (the sum of the engine's own buffers)."""
    prompt_tps: float | None = None
    """Prompt processing tokens/s the Bench measured on this start (the server's own
    timings, the median of its repetitions); None where it was not benched."""
    decode_tps: float | None = None
    """Decode tokens/s, likewise."""

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
                        str(r.get("plan", "")),
                        str(r.get("start", "")),
                        str(r.get("source", "")),
                        _rate(r.get("prompt_tps")),
                        _rate(r.get("decode_tps")),
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
        *,
        plan: str = "",
        start: str = "",
        source: str = "",
    ) -> CalibrationRecord:
        """Add one observation; the oldest go once there are more than MAX_RECORDS."""
        buffers: dict[str, float] = {}
        if report is not None:
            for kind in ("model", "kv", "compute", "output"):
                for buft, mib in report.by_kind(kind).items():
                    buffers[f"{kind}:{buft}"] = mib
        rec = CalibrationRecord(key, estimated_mib, measured_mib, buffers, time.time(),
                                plan, start, source)
        self._save([*self._load(), rec][-MAX_RECORDS:])
        return rec

    def _save(self, records: list[CalibrationRecord]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps([asdict(r) for r in records], indent=1), encoding="utf-8")
        tmp.replace(self.path)

    def set_speed(self, start: str, prompt_tps: float | None,
                  decode_tps: float | None) -> CalibrationRecord | None:
        """Add the speed the Bench measured to the record of that start of a backend (its
        memory was recorded when it became ready); None when no record has that start."""
        records = self._load()
        for index, rec in enumerate(records):
            if rec.start == start:
                records[index] = replace(rec, prompt_tps=prompt_tps, decode_tps=decode_tps)
                self._save(records)
                return records[index]
        return None

    def has_start(self, start: str) -> bool:
        """Whether this start of a backend was recorded already (a Rigdeck that restarts
        finds its backends again; their start is not a new observation)."""
        return any(r.start == start for r in self._load())

    def runs(self, host: str, gpu_models: tuple[str, ...]) -> list[CalibrationRecord]:
        """The records of this host on these GPU models, newest last."""
        return [r for r in self._load() if r.key.host == host and r.key.gpu_model in gpu_models]

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

    def machine_residual(self, host: str, gpu_model: str, engine: str) -> float | None:
        """The residual of this machine's engine in the version it ran last (the version
        a start is about to run is known only once it logs): what corrects its next
        estimate, or None before the first measured run."""
        last = self.last_run(host, gpu_model, engine)
        return None if last is None else self.residual_mib(last.key)


def _rate(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None


def last_run_of_plan(records: list[CalibrationRecord], gpu_model: str, engine: str,
                     plan: str, *, benched: bool = False) -> CalibrationRecord | None:
    """The newest of `records` that ran `plan` with `engine` on `gpu_model` (`benched`:
    the newest whose speed the Bench measured)."""
    match = [r for r in records
             if (r.key.gpu_model, r.key.engine, r.plan) == (gpu_model, engine, plan)
             and (not benched or r.decode_tps is not None)]
    return max(match, key=lambda r: r.at) if match else None
