"""What a runtime sees of a backend right now (one container or one process)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Observed:
    """A running or finished backend as its runtime reports it.

    `status` is "created", "running", "exited" or "gone"; `labels` are the rigdeck.*
    labels it was started with (for a process, the same keys from its pid file).
    `exit_code` of an exited one: a container's code (128 + N after signal N) or a
    process's wait status (-N after signal N); None when nobody could learn it.
    """

    ref: str
    labels: dict[str, str]
    status: str
    exit_code: int | None = None
    oom_killed: bool = False
    started_at: float | None = None
    api_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Foreign:
    """A container Rigdeck did not start: listed read-only."""

    host: str
    name: str
    image: str
    status: str
    ports: str = ""
