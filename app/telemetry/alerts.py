"""Alert rules over snapshots: fire once per excursion, with a cool-down per rule and subject.

A condition that becomes true fires an `Alert` unless the same rule fired for the same
subject (a GPU, the host, a backend) less than `cooldown_s` ago; it fires again only
after the value has gone back below the threshold by a small hysteresis. So a value
flapping around a threshold does not spam the user.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from app.telemetry.snapshot import GpuReading, HostReading, Snapshot

log = logging.getLogger(__name__)

THROTTLE_ALERT_REASONS = {
    "hw_slowdown": "hardware slowdown",
    "sw_thermal": "thermal (driver)",
    "hw_thermal": "thermal (hardware)",
    "hw_power_brake": "power brake",
}
"""Throttle reasons worth a notification; a power cap under load is normal and left out."""

SWAP_WINDOW_S = 300.0
TEMP_HYSTERESIS_C = 2.0
PCT_HYSTERESIS = 1.0
GIB = 1024.0

_Make = Callable[[], tuple[str, str, float | None]]
"""Builds an alert's title, message and value (only when it fires)."""
_Check = Callable[[str, str, bool, bool, "_Make | None"], None]


class Severity(IntEnum):
    """The worst state at a glance (the tray's colour)."""

    UNKNOWN = 0
    OK = 1
    WARN = 2
    ALERT = 3


@dataclass(frozen=True)
class AlertConfig:
    """Thresholds and switches (from the settings); replaced whole when the user edits them."""

    enabled: bool = True
    gpu_temp_margin_c: float = 5.0
    vram_pct: float = 95.0
    host_ram_pct: float = 90.0
    swap_growth_mib: float = 512.0
    throttling: bool = True
    backend_events: bool = True
    cooldown_s: float = 300.0


@dataclass(frozen=True)
class Alert:
    """One notification: `rule` and `subject` identify the excursion."""

    rule: str
    subject: str
    title: str
    message: str
    t: float
    value: float | None = None


def _gpu_label(gpu: GpuReading) -> str:
    return f"GPU {gpu.index}"


def _gib(mib: float) -> str:
    return f"{mib / GIB:.1f}"


class AlertEngine:
    """Evaluates the rules on each snapshot (in the sampling thread)."""

    def __init__(self, config: AlertConfig | None = None) -> None:
        self.config = config or AlertConfig()
        self._active: set[tuple[str, str]] = set()
        self._last_fired: dict[tuple[str, str], float] = {}
        self._swap: deque[tuple[float, float]] = deque(maxlen=64)
        self.severity = Severity.UNKNOWN

    def evaluate(self, snapshot: Snapshot) -> list[Alert]:
        """Alerts that start with this snapshot; also updates `severity`."""
        config = self.config
        fired: list[Alert] = []
        warn = False
        seen: set[tuple[str, str]] = set()

        def check(rule: str, subject: str, on: bool, off: bool, make: _Make | None) -> None:
            """`on`: the condition holds; `off`: it has cleared past the hysteresis."""
            key = (rule, subject)
            seen.add(key)
            if on:
                if key not in self._active:
                    self._active.add(key)
                    alert = self._fire(key, snapshot.t, make) if config.enabled else None
                    if alert is not None:
                        fired.append(alert)
            elif off:
                self._active.discard(key)

        for gpu in snapshot.gpus:
            check("gpu_lost", gpu.key, gpu.lost, not gpu.lost, _lost_message(gpu))
            if gpu.lost:
                continue
            warn |= self._check_temperature(gpu, check)
            warn |= self._check_vram(gpu, check)
            if config.throttling and gpu.throttle_reasons is not None:
                reasons = [
                    THROTTLE_ALERT_REASONS[r]
                    for r in gpu.throttle_reasons
                    if r in THROTTLE_ALERT_REASONS
                ]
                check(
                    "throttling",
                    gpu.key,
                    bool(reasons),
                    not reasons,
                    _throttle_message(gpu, reasons),
                )
        if snapshot.host is not None:
            warn |= self._check_host(snapshot.host, snapshot.t, check)

        # a subject that vanished (GPU gone, rule switched off) starts afresh when it returns
        self._active &= seen
        if not snapshot.gpus and snapshot.host is None:
            self.severity = Severity.UNKNOWN
        elif self._active:
            self.severity = Severity.ALERT
        else:
            self.severity = Severity.WARN if warn else Severity.OK
        return fired

    def _check_temperature(self, gpu: GpuReading, check: _Check) -> bool:
        if gpu.temperature_c is None or gpu.slowdown_c is None:
            return False
        slowdown = gpu.slowdown_c
        limit = slowdown - self.config.gpu_temp_margin_c
        temp = gpu.temperature_c
        check(
            "gpu_temperature",
            gpu.key,
            temp >= limit,
            temp < limit - TEMP_HYSTERESIS_C,
            lambda: (
                f"{_gpu_label(gpu)} at {temp:.0f} °C",
                f"{gpu.name} is {slowdown - temp:.0f} °C from its slowdown threshold "
                f"({slowdown:.0f} °C).",
                temp,
            ),
        )
        return temp >= limit - self.config.gpu_temp_margin_c

    def _check_vram(self, gpu: GpuReading, check: _Check) -> bool:
        fraction = gpu.memory_fraction
        if fraction is None or gpu.memory_used_mib is None or gpu.memory_total_mib is None:
            return False
        pct = fraction * 100.0
        limit = self.config.vram_pct
        used, total = gpu.memory_used_mib, gpu.memory_total_mib
        check(
            "vram",
            gpu.key,
            pct >= limit,
            pct < limit - PCT_HYSTERESIS,
            lambda: (
                f"VRAM nearly full on {_gpu_label(gpu)}",
                f"{_gib(used)} of {_gib(total)} GiB used ({pct:.0f} %) on {gpu.name}.",
                used,
            ),
        )
        return pct >= limit - 10.0

    def _check_host(self, host: HostReading, t: float, check: _Check) -> bool:
        warn = False
        fraction = host.ram_fraction
        if fraction is not None:
            pct = fraction * 100.0
            limit = self.config.host_ram_pct
            check(
                "host_ram",
                "host",
                pct >= limit,
                pct < limit - PCT_HYSTERESIS,
                lambda: (
                    "Host RAM nearly full",
                    f"{_gib(host.ram_used_mib)} of {_gib(host.ram_total_mib)} GiB used "
                    f"({pct:.0f} %).",
                    host.ram_used_mib,
                ),
            )
            warn = pct >= limit - 10.0
        if not self._swap or t - self._swap[-1][0] >= SWAP_WINDOW_S / 30:
            self._swap.append((t, host.swap_used_mib))
        while self._swap and self._swap[0][0] < t - SWAP_WINDOW_S:
            self._swap.popleft()
        lowest = min((used for _, used in self._swap), default=host.swap_used_mib)
        growth = host.swap_used_mib - lowest
        limit_mib = self.config.swap_growth_mib
        check(
            "swap_growing",
            "host",
            growth >= limit_mib,
            growth < limit_mib / 2,
            lambda: (
                "Swap is growing",
                f"+{growth:.0f} MiB in the last {SWAP_WINDOW_S / 60:.0f} minutes "
                f"(now {_gib(host.swap_used_mib)} GiB): the host is short of RAM.",
                host.swap_used_mib,
            ),
        )
        return warn

    def backend_event(self, backend: str, kind: str, detail: str, t: float) -> Alert | None:
        """A backend died (`kind` "died") or hit OOM ("oom"): an alert unless cooling down.

        The composition root calls this on `BackendsService.died`, with its reason.
        """
        if not (self.config.enabled and self.config.backend_events):
            return None
        title = (
            f"Backend {backend} ran out of memory"
            if kind == "oom"
            else f"Backend {backend} died"
        )
        return self._fire((f"backend_{kind}", backend), t, lambda: (title, detail, None))

    def _fire(self, key: tuple[str, str], t: float, make: _Make | None) -> Alert | None:
        last = self._last_fired.get(key)
        if last is not None and t - last < self.config.cooldown_s:
            log.debug("alert %s suppressed: cooling down", key)
            return None
        self._last_fired[key] = t
        assert make is not None
        title, message, value = make()
        log.info("alert: %s — %s", title, message)
        return Alert(key[0], key[1], title, message, t, value)


def _lost_message(gpu: GpuReading) -> _Make:
    return lambda: (
        f"{_gpu_label(gpu)} was lost",
        f"{gpu.name} fell off the bus; the other GPUs are still watched.",
        None,
    )


def _throttle_message(gpu: GpuReading, reasons: list[str]) -> _Make:
    return lambda: (
        f"{_gpu_label(gpu)} is throttling",
        f"{gpu.name} slowed its clocks: {', '.join(reasons)}.",
        None,
    )
