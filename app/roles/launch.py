"""Launching "with roles": one backend that preloads every compatible role's adapters.

llama.cpp gets a `--lora` per adapter with `--lora-init-without-apply` (the recipe does
that for `plan.adapters`), so no adapter applies until a request asks for it. vLLM gets
`--enable-lora`, `--max-loras` (the number of adapters) and `--max-lora-rank` (the
largest rank among them, rounded up to a value vLLM accepts).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from app.engines.plan import LaunchPlan
from app.library.entries import Adapter, Entry
from app.library.loader import load_entry
from app.roles.binding import read_adapters
from app.roles.requests import files_problem
from app.roles.role import Role, RoleError
from app.runtime.backend import Backend
from app.runtime.backends_service import BackendsService, StartResult

VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)
"""The values vLLM's LoRAConfig accepts for max_lora_rank."""


@dataclass(frozen=True)
class RolesLaunch:
    """The plan with the roles' adapters, and the roles left out with the reason."""

    plan: LaunchPlan
    roles: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]


def vllm_max_rank(ranks: Iterable[int]) -> int:
    """The smallest rank vLLM accepts that holds every rank given (16: vLLM's default)."""
    largest = max(ranks, default=16)
    for allowed in VLLM_LORA_RANKS:
        if allowed >= largest:
            return allowed
    return largest  # vLLM will refuse it with its own message


def plan_with_roles(plan: LaunchPlan, roles: Iterable[Role], *, model: Entry | None,
                    adapters: Mapping[str, Entry | None]) -> RolesLaunch:
    """`plan` with every adapter of the roles that fit `model` added (each once)."""
    paths = list(plan.adapters)
    included: list[str] = []
    skipped: list[tuple[str, str]] = []
    for role in roles:
        if not role.adapters:
            continue
        problem = files_problem(role, model, adapters)
        if problem is not None:
            skipped.append((role.name, problem.reason))
            continue
        included.append(role.name)
        paths += [a.path for a in role.adapters if a.path not in paths]
    new = replace(plan, adapters=tuple(paths))
    if plan.engine == "vllm" and paths:
        ranks = [e.rank for p in paths if isinstance(e := adapters.get(p), Adapter) and e.rank]
        new = replace(new, max_lora_rank=vllm_max_rank(ranks))
    return RolesLaunch(new, tuple(included), tuple(skipped))


def relaunch_with_roles(service: BackendsService, backend: Backend, roles: Iterable[Role],
                        *, wait: bool = False) -> StartResult:
    """Stop `backend` and start it again with its plan plus the roles' adapters.

    Raises:
        RoleError: none of the roles can be served by the backend's model (why).
        PlanError, UserError: from reading the plan or starting the backend.
    """
    roles = list(roles)
    plan = LaunchPlan.from_json(backend.plan_json)
    launch = plan_with_roles(plan, roles, model=load_entry(Path(plan.model)),
                             adapters=read_adapters(roles))
    if launch.skipped:
        raise RoleError("; ".join(f"role {name!r}: {why}" for name, why in launch.skipped))
    return service.relaunch(backend, launch.plan, wait=wait)
