"""The one role check: which roles a running backend can serve, and why not the others.

The CLI (`rigdeck roles --url/--backend`), the Roles page and the Chat page's role chip
all ask this. It asks the server what it serves (its own LoRA API), reads the model (for a
backend Rigdeck started: from its launch plan, which also says what the API does not —
vLLM's --max-lora-rank, runtime loading) and every role's adapter files, and judges each
role. Blocking (disk and HTTP): the GUI runs it on the task runner.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from app.engines.plan import LaunchPlan
from app.library.entries import Entry
from app.library.loader import load_entry
from app.roles.binding import read_adapters
from app.roles.requests import Availability, role_availability
from app.roles.role import Role
from app.roles.served import LoraApi, ServedLoras


@dataclass(frozen=True)
class BackendRoles:
    """A backend's answer: what it serves and, per role name, whether it can serve it."""

    url: str
    served: ServedLoras
    availability: dict[str, Availability]
    model: Entry | None = None
    """The model it runs, read from its plan (None for a bare URL)."""


def check_roles(roles: Iterable[Role], url: str, api_key: str | None = None,
                plan: LaunchPlan | None = None) -> BackendRoles:
    """Whether the server at `url` can serve each of `roles`.

    `plan`: the launch plan of a backend Rigdeck started there (its model decides
    compatibility; without it only what the server says is checked).

    Raises:
        UserError: nothing answers at `url`, or it refuses the API key.
    """
    roles = list(roles)
    with LoraApi(url, api_key) as api:
        served = api.served()
    model: Entry | None = None
    if plan is not None:
        served = served.with_launch(max_rank=plan.max_lora_rank,
                                    runtime_loading=bool(plan.adapters))
        model = load_entry(Path(plan.model))
    adapters = read_adapters(roles)
    return BackendRoles(url, served, {
        role.name: role_availability(role, served, model=model, adapters=adapters)
        for role in roles}, model)
