"""The monitor service: samplers → attribution → history → alerts, on one sampling thread.

Built once by the composition root (or the CLI). Listeners subscribe to `sampled` and
`alerted`, which are emitted from the sampling thread: a Qt adapter must hop to the GUI
thread. Readers take `latest` (the latest snapshot wins) and `history` whenever they
like; neither ever calls a native library.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from psygnal import Signal

from app.errors import UserError
from app.telemetry.alerts import Alert, AlertConfig, AlertEngine, Severity
from app.telemetry.amd import AmdSampler, load_amdsmi
from app.telemetry.attribution import attribute_vram
from app.telemetry.history import History
from app.telemetry.host import HostSampler
from app.telemetry.metrics import flatten
from app.telemetry.nvml import NvmlSampler
from app.telemetry.replay import ReplaySampler, load_trace
from app.telemetry.sampler_loop import SamplerLoop
from app.telemetry.snapshot import GpuReading, Reading, Sampler, Snapshot, SourceStatus

log = logging.getLogger(__name__)

SAVE_EVERY_S = 600.0
KEEP_ON_RESTART_S = 24 * 3600.0


@dataclass(frozen=True)
class MonitorOptions:
    """How to build the service (from the settings, the environment or the CLI)."""

    interval_s: float = 1.0
    replay: Path | None = None
    replay_speed: float = 1.0
    replay_gpus: int = 1
    prefill: bool = False
    """Fill the history with one pass of the replay at start (demos, screenshots)."""
    history_file: Path | None = None
    """Where the history is kept across restarts; None keeps nothing."""
    model_folders: tuple[str, ...] = ()
    alerts: AlertConfig = field(default_factory=AlertConfig)
    amd: bool = True


@dataclass
class SampleCost:
    """CPU time the sampling thread spent per sample (sample, store, alert, publish)."""

    samples: int = 0
    cpu_s: float = 0.0

    @property
    def per_sample_s(self) -> float:
        return self.cpu_s / self.samples if self.samples else 0.0


def build_samplers(options: MonitorOptions) -> tuple[list[Sampler], list[str]]:
    """The samplers for `options` and the problems met (shown to the user, not raised)."""
    problems: list[str] = []
    if options.replay is not None:
        try:
            trace = load_trace(options.replay)
        except UserError as exc:
            problems.append(f"{exc}; showing this machine's readings instead")
        else:
            replay = ReplaySampler(trace, speed=options.replay_speed, gpu_count=options.replay_gpus)
            samplers: list[Sampler] = [replay]
            if not trace.has_host:
                samplers.append(HostSampler(options.model_folders))
            return samplers, problems
    samplers = [NvmlSampler()]
    if options.amd and load_amdsmi() is not None:
        samplers.append(AmdSampler())
    samplers.append(HostSampler(options.model_folders))
    return samplers, problems


class MonitorService:
    """Samples on a drift-free schedule in one thread; keeps the history; raises alerts."""

    sampled = Signal(object)
    """A new `Snapshot` (emitted in the sampling thread)."""
    alerted = Signal(object)
    """An `Alert` that starts now (emitted in the sampling thread)."""

    def __init__(
        self,
        samplers: Sequence[Sampler],
        *,
        interval_s: float = 1.0,
        alerts: AlertConfig | None = None,
        history_file: Path | None = None,
        wall: Callable[[], float] = time.time,
        problems: Sequence[str] = (),
    ) -> None:
        self.samplers = list(samplers)
        self.interval_s = interval_s
        self.history = History(interval_s)
        self.alerts = AlertEngine(alerts)
        self.history_file = history_file
        self.problems = list(problems)
        self.latest: Snapshot | None = None
        self.cost = SampleCost()
        self._wall = wall
        self._lock = threading.Lock()  # guards the alert engine and the pid map
        self._backend_pids: dict[int, str] = {}
        self._loop: SamplerLoop | None = None
        self._last_save = 0.0
        self._failed: set[str] = set()
        self._restored = False

    @classmethod
    def from_options(cls, options: MonitorOptions) -> MonitorService:
        samplers, problems = build_samplers(options)
        replaying = any(isinstance(s, ReplaySampler) for s in samplers)
        service = cls(
            samplers,
            interval_s=options.interval_s,
            alerts=options.alerts,
            history_file=None if replaying else options.history_file,
            problems=problems,
        )
        if replaying and options.prefill:
            service.prefill()
        return service

    # ------------------------------------------------------------------ settings
    def set_interval(self, seconds: float) -> None:
        self.interval_s = seconds
        if self._loop is not None:
            self._loop.interval_s = seconds

    def set_alert_config(self, config: AlertConfig) -> None:
        with self._lock:
            self.alerts.config = config

    def set_backend_pids(self, backends_by_pid: Mapping[int, str]) -> None:
        """Which host PIDs belong to which backend (fed by the backends work)."""
        with self._lock:
            self._backend_pids = dict(backends_by_pid)

    def set_model_folders(self, folders: Sequence[str]) -> None:
        for sampler in self.samplers:
            if isinstance(sampler, HostSampler):
                sampler.set_folders(folders)

    def backend_event(self, backend: str, kind: str, detail: str) -> None:
        """Report a backend that died or hit OOM; alerts subscribers unless cooling down."""
        with self._lock:
            alert = self.alerts.backend_event(backend, kind, detail, self._wall())
        if alert is not None:
            self.alerted.emit(alert)

    @property
    def severity(self) -> Severity:
        return self.alerts.severity

    # ------------------------------------------------------------------ sampling
    def read(self, t: float) -> Snapshot:
        """Ask every sampler once; a failing sampler becomes a status, never an exception."""
        gpus: list[GpuReading] = []
        host = None
        sources: list[SourceStatus] = []
        for sampler in self.samplers:
            reading = self._read_one(sampler)
            sources.append(reading.status)
            gpus.extend(reading.gpus)
            host = reading.host if reading.host is not None else host
        return self._attribute(Snapshot(t, tuple(gpus), host, tuple(sources)))

    def _read_one(self, sampler: Sampler) -> Reading:
        try:
            return sampler.sample()
        except Exception as exc:  # a broken sampler must not stop the others
            if sampler.name not in self._failed:
                self._failed.add(sampler.name)
                log.exception("sampler %s failed", sampler.name)
            return Reading(SourceStatus(sampler.name, False, f"{sampler.name} failed: {exc}"))

    def _attribute(self, snapshot: Snapshot) -> Snapshot:
        with self._lock:
            pids = self._backend_pids
        shares = {}
        for gpu in snapshot.gpus:
            found = None if gpu.lost else attribute_vram(gpu, pids)
            if found is not None:
                shares[gpu.key] = found
        return replace(snapshot, vram_by_backend=shares)

    def step(self, t: float | None = None) -> Snapshot:
        """One whole sample: read, store, alert, publish. `t` defaults to the wall clock."""
        started = time.thread_time()
        snapshot = self.read(self._wall() if t is None else t)
        self.record(snapshot)
        self.cost.samples += 1
        self.cost.cpu_s += time.thread_time() - started
        return snapshot

    def record(self, snapshot: Snapshot, *, alert: bool = True) -> None:
        """Store a snapshot, evaluate the alerts on it and tell subscribers."""
        self.history.append(snapshot.t, flatten(snapshot))
        fired: list[Alert] = []
        if alert:
            with self._lock:
                fired = self.alerts.evaluate(snapshot)
        self.latest = snapshot
        self.sampled.emit(snapshot)
        for item in fired:
            self.alerted.emit(item)
        if self.history_file is not None and snapshot.t - self._last_save >= SAVE_EVERY_S:
            if self._last_save:
                self._save()
            self._last_save = snapshot.t

    def prefill(self) -> None:
        """Put one pass of the replay into the history at once, ending now (no alerts)."""
        for sampler in self.samplers:
            if isinstance(sampler, ReplaySampler):
                for t, reading in sampler.backfill(self._wall()):
                    snapshot = Snapshot(t, reading.gpus, reading.host, (reading.status,))
                    self.record(self._attribute(snapshot), alert=False)

    # ------------------------------------------------------------------ thread
    @property
    def running(self) -> bool:
        return self._loop is not None and self._loop.running

    def start(self) -> None:
        """Start the sampling thread (again after `stop`, if the user turns sampling back on)."""
        if self._loop is not None and self._loop.running:
            return
        self._loop = SamplerLoop(
            self._on_loop_tick,
            self.interval_s,
            "rigdeck-monitor",
            before=self._restore,
            after=self._finish,
        )
        self._loop.start()

    def stop(self) -> None:
        """Stop sampling, save the history and release the native libraries."""
        if self._loop is not None:
            self._loop.stop()
        else:
            self._finish()

    def _on_loop_tick(self, _monotonic: float) -> None:
        self.step()

    def _restore(self) -> None:
        if self._restored:
            return
        self._restored = True
        file = self.history_file
        if file is None or not file.exists():
            return
        if self.history.load(file, newer_than=self._wall() - KEEP_ON_RESTART_S):
            log.info("monitor history restored from %s", file)

    def _finish(self) -> None:
        if self.history_file is not None and self.history.version:
            self._save()
        for sampler in self.samplers:
            sampler.close()

    def _save(self) -> None:
        assert self.history_file is not None
        try:
            self.history.save(self.history_file)
        except OSError as exc:
            log.warning("monitor history not saved to %s: %s", self.history_file, exc)
