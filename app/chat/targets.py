"""What the chat can talk to: a running Rigdeck backend, a saved endpoint or a bare URL.

A backend Rigdeck started is found by name (or `host/name`) and brings its own API key
from where Rigdeck keeps it — the key keeper (keyring, or the container's or process's
environment for a backend found again) — so the user never types or sees it. A saved
endpoint brings the key stored for it in the keyring; a URL has none, unless it is the
address of a backend Rigdeck runs, which is then chosen instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from app.chat.base_url import normalise_base_url
from app.chat.endpoints import Endpoint
from app.engines.plan import LaunchPlan
from app.runtime.backend import Backend

TargetKind = Literal["backend", "endpoint", "url"]


@dataclass(frozen=True)
class ChatTarget:
    """One entry of the Chat page's backend picker (and of `rigdeck chat --backend`)."""

    name: str
    """What the user picks or types, and what a conversation stores."""
    url: str
    kind: TargetKind
    backend: Backend | None = field(default=None, compare=False)
    endpoint: Endpoint | None = field(default=None, compare=False)

    @property
    def plan(self) -> LaunchPlan | None:
        """The plan a Rigdeck backend was started with (None for an endpoint or URL)."""
        return LaunchPlan.from_json(self.backend.plan_json) if self.backend else None

    @property
    def label(self) -> str:
        """Name, model, host and role support, as the picker lists it."""
        backend = self.backend
        if backend is None:
            return self.name if self.kind == "url" else f"{self.name} — {self.url}"
        model = Path(backend.model).name or backend.model
        return f"{self.name} — {model} on {backend.host} ({role_support(self.plan)})"


def role_support(plan: LaunchPlan | None) -> str:
    """How a backend serves roles, in a few words."""
    if plan is None:
        return "roles: unknown"
    if plan.engine == "vllm":
        return "roles: LoRA loaded at run time" if plan.adapters else "roles: prompt only"
    count = len(plan.adapters)
    if not count:
        return "roles: prompt only"
    return f"roles: {count} adapter{'s' if count != 1 else ''} preloaded"


def backend_target(backend: Backend, *, qualified: bool = False) -> ChatTarget:
    """The target of a Rigdeck backend; `qualified` names it `host/name` (a name used on
    several hosts)."""
    name = f"{backend.host}/{backend.name}" if qualified else backend.name
    return ChatTarget(name, normalise_base_url(backend.base_url), "backend", backend=backend)


def endpoint_target(endpoint: Endpoint) -> ChatTarget:
    return ChatTarget(endpoint.name, endpoint.url, "endpoint", endpoint=endpoint)
