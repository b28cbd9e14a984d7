"""Launching "with roles": one backend that preloads every compatible role's adapters.

llama.cpp gets a `--lora` per adapter with `--lora-init-without-apply` (the recipe does
that for `plan.adapters`), so no adapter applies until a request asks for it. vLLM gets
`--enable-lora`, `--max-loras` (the number of adapters) and `--max-lora-rank` (the
largest rank among them, rounded up to a value vLLM accepts).

Only adapters that fit the model are added (app.library.compat: architecture and
shapes), so a role never makes the engine refuse to load — llama-server exits at start
on an adapter for another architecture. The Start dialog offers the roles that fit a
model (`roles_for_model`) and the Roles page relaunches with all of them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from app.engines.plan import LaunchPlan
from app.library.entries import Adapter, Entry, Model
from app.library.loader import load_entry
from app.roles.binding import read_adapters
from app.roles.requests import files_problem
from app.roles.role import Role, RoleError
from app.runtime.backend import Backend
from app.runtime.backends_service import BackendsService, StartResult

log = logging.getLogger(__name__)

VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)
"""The values vLLM's LoRAConfig accepts for max_lora_rank."""


@dataclass(frozen=True)
class RolesLaunch:
    """The plan with the roles' adapters, and the roles left out with the reason."""

    plan: LaunchPlan
    roles: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class RoleFit:
    """A role with adapters and whether they fit the model; `reason` when they do not."""

    role: Role
    reason: str | None = None

    @property
    def fits(self) -> bool:
        return self.reason is None


@dataclass(frozen=True)
class ModelRoles:
    """The roles with adapters judged against one model, with the files read to judge
    them, so the plan is built from them without reading anything again."""

    model_path: str
    model: Entry | None
    adapters: Mapping[str, Entry | None]
    roles: tuple[RoleFit, ...]
    kv_bytes_per_token: int | None = None
    """What one context position of one slot costs in KV cache at f16 (llama.cpp, full
    attention layers); None where the model's header does not say."""

    def plan_with(self, plan: LaunchPlan, names: Iterable[str], *,
                  slot_per_role: bool = False) -> RolesLaunch:
        """`plan` with the adapters of the roles called `names` that fit the model;
        `slot_per_role`: with a slot of its own for each of them beside the base's."""
        wanted = set(names)
        chosen = [fit.role for fit in self.roles if fit.fits and fit.role.name in wanted]
        launch = plan_with_roles(plan, chosen, model=self.model, adapters=self.adapters)
        if slot_per_role and launch.roles:
            launch = replace(launch, plan=with_role_slots(launch.plan, len(launch.roles)))
        return launch

    def slots_kv_mib(self, plan: LaunchPlan, roles: int) -> float | None:
        """The KV cache that `roles` slots of their own add to `plan` (each slot as long
        as the plan's context), at the plan's cache types; None where it cannot be said."""
        if self.kv_bytes_per_token is None or plan.engine != "llamacpp":
            return None
        scale = (_cache_scale(plan.cache_type_k) + _cache_scale(plan.cache_type_v)) / 2
        context = plan.context or DEFAULT_CONTEXT
        return self.kv_bytes_per_token * scale * context * roles / 2**20


DEFAULT_CONTEXT = 4096
"""llama-server's context when the plan sets none (its -c default in this build)."""


def with_role_slots(plan: LaunchPlan, roles: int) -> LaunchPlan:
    """`plan` with one slot per role beside the base model's, each as long as the plan's
    context: llama.cpp divides -c among the slots, so -c grows with them (and the KV cache
    with it). The Gateway then keeps each role on its own slot, whose prompt cache a
    request of another role (another adapter set) would otherwise throw away."""
    slots = roles + 1
    context = plan.context or DEFAULT_CONTEXT
    return replace(plan, parallel=slots, context=context * slots)


def _cache_scale(kind: str | None) -> float:
    """Bytes of a KV type per value, against f16's two."""
    from app.fit.ggml_sim import ggml_type

    found = ggml_type(kind or "f16")
    return found.type_size / found.block_size / 2


def roles_for_model(roles: Iterable[Role], model_path: str) -> ModelRoles:
    """Which of `roles` (those with adapters) can be preloaded with the model at
    `model_path`, and why not the others. Reads the model's header and the adapters'.

    A model that cannot be read here (a typo, a file on a remote host) fits no role:
    nothing could say whether llama-server would accept the adapters.
    """
    with_adapters = [role for role in roles if role.adapters]
    path = model_path.strip()
    model = load_entry(Path(path)) if path else None
    adapters = read_adapters(with_adapters)
    unusable = _unusable_model(path, model)
    fits = []
    for role in with_adapters:
        problem = files_problem(role, model, adapters) if unusable is None else None
        fits.append(RoleFit(role, unusable or (problem.reason if problem else None)))
    return ModelRoles(path, model, adapters, tuple(fits),
                      _kv_bytes_per_token(path) if unusable is None else None)


def _kv_bytes_per_token(path: str) -> int | None:
    """f16 K and V bytes of one context position (the model's header; None if unreadable)."""
    try:
        from app.fit.llamacpp_estimate import kv_bytes_per_cell
        from app.fit.model_info import model_info
        from app.library.gguf import read_gguf_header

        return kv_bytes_per_cell(model_info(read_gguf_header(Path(path))), "f16", "f16")
    except Exception as exc:  # a safetensors folder, a header without the keys
        log.info("no KV size for %s: %s", path, exc)
        return None


def _unusable_model(path: str, model: Entry | None) -> str | None:
    if model is None:
        return "choose a model first"
    if model.error:
        return f"the model cannot be read here: {model.error}"
    if not isinstance(model, Model):
        return f"{Path(path).name} is an adapter, not a model"
    return None


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
                        *, needed: Iterable[str] = (), wait: bool = False) -> StartResult:
    """Stop `backend` and start it again with its plan plus the adapters of every role
    that fits its model; the others are left out.

    `needed`: names of roles that must be among them (the one the user asked for).

    Raises:
        RoleError: a needed role, or every role with adapters, does not fit (why); the
            backend is left running.
        PlanError, UserError: from reading the plan or starting the backend.
    """
    roles = list(roles)
    plan = LaunchPlan.from_json(backend.plan_json)
    launch = plan_with_roles(plan, roles, model=load_entry(Path(plan.model)),
                             adapters=read_adapters(roles))
    required = set(needed)
    refused = [(name, why) for name, why in launch.skipped
               if name in required or not launch.roles]
    if refused:
        raise RoleError("; ".join(f"role {name!r}: {why}" for name, why in refused))
    return service.relaunch(backend, launch.plan, wait=wait)
