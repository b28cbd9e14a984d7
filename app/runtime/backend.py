"""Backend: one LaunchPlan running on a host, with its state as events.

The state machine is starting → loading → ready → stopping → stopped, or failed with a
reason. A Backend is a plain object the UI subscribes to (`state_changed`); the
service is the only writer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from psygnal import Signal


class BackendState(StrEnum):
    STARTING = "starting"
    LOADING = "loading"
    READY = "ready"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"

    @property
    def is_live(self) -> bool:
        return self in (BackendState.STARTING, BackendState.LOADING, BackendState.READY)


UNKNOWN = "unknown — engine unreachable"

LABEL = "rigdeck"
"""Prefix of the labels Rigdeck puts on its containers (`rigdeck.name`, `rigdeck.plan`, …)."""


@dataclass(eq=False)
class Backend:
    """What the user sees of one backend; `ref` is the container id or the process id."""

    name: str
    host: str
    engine: str
    model: str
    port: int
    endpoint_host: str
    ref: str
    plan_json: str = "{}"
    image: str = ""
    gpus: tuple[str, ...] = ()
    started_at: float = field(default_factory=time.time)
    managed: bool = True
    state: BackendState = BackendState.STARTING
    reason: str = ""
    measured_vram_mib: float | None = None
    """What it holds on its fullest GPU (NVML, else its buffers), once it was ready."""
    measured_ram_mib: float | None = None
    """Its engine's host buffers (weights mapped or in RAM, KV and compute on the CPU)."""
    api_key: str | None = field(default=None, repr=False)
    key_persisted: bool = False
    engine_unreachable: str = ""
    """Why its host's engine does not answer now (empty: it answers). The state is then
    the last one seen, and what is shown is "unknown"."""

    state_changed = Signal(object, str)
    """(new state, reason) — emitted only when either changes."""

    @property
    def key(self) -> tuple[str, str]:
        return (self.host, self.name)

    @property
    def base_url(self) -> str:
        return f"http://{self.endpoint_host}:{self.port}"

    @property
    def uptime_s(self) -> float:
        return max(0.0, time.time() - self.started_at)

    @property
    def shown_state(self) -> str:
        """The state as the user is told it: unknown while its engine does not answer."""
        return UNKNOWN if self.engine_unreachable else str(self.state)

    def set_state(self, state: BackendState, reason: str = "") -> None:
        if (state, reason) == (self.state, self.reason):
            return
        self.state = state
        self.reason = reason
        self.state_changed.emit(state, reason)

    def as_dict(self) -> dict[str, Any]:
        """For `rigdeck ps --json` (no API key)."""
        return {
            "name": self.name, "host": self.host, "engine": self.engine, "model": self.model,
            "state": self.shown_state,
            "reason": self.engine_unreachable or self.reason, "port": self.port,
            "url": self.base_url, "gpus": list(self.gpus), "image": self.image,
            "uptime_s": round(self.uptime_s, 1), "managed": self.managed, "ref": self.ref,
            "measured_vram_mib": self.measured_vram_mib,
            "measured_ram_mib": self.measured_ram_mib,
        }
