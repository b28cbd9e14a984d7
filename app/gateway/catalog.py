"""The Gateway's model ids: every backend's model and every role, each bound to a backend.

A backend — running, or known by its saved plan so it can start on demand — is the id of
its name (`host/name` where a name is used on several hosts). A role is the id of its name
in lower case with dashes (`sports-coach`) where exactly one backend serves it; it is
always also `role@backend`, which is what is listed when several could. A backend serves
a role when the role's adapters were preloaded by its plan (llama.cpp) or its plan enables
LoRA (vLLM), and the role's base models, where it names any, include the backend's model.
A role that changes nothing (no adapter, prompt, sampling or thinking default) is the
base model and gets no id of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from app.engines.plan import LaunchPlan
from app.roles.role import Role
from app.runtime.backend import Backend
from app.runtime.saved_plans import SavedPlan


@dataclass(frozen=True)
class Served:
    """One backend the Gateway can reach: running now (`backend`), or startable from its
    saved plan (`saved`), or both."""

    name: str
    host: str
    plan: LaunchPlan
    backend: Backend | None = None
    saved: SavedPlan | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.host, self.name)

    @property
    def running(self) -> bool:
        return self.backend is not None and self.backend.state.is_live

    @property
    def created(self) -> int:
        """When it was started, or its plan saved (OpenAI's `created`)."""
        if self.backend is not None:
            return int(self.backend.started_at)
        return int(self.saved.saved_at) if self.saved is not None else 0

    @property
    def model_name(self) -> str:
        return Path(self.plan.model.rstrip("/")).name


@dataclass(frozen=True)
class Route:
    """What a model id reaches: a backend, and the role applied there (None: the base)."""

    id: str
    served: Served
    role: Role | None = None
    listed: bool = True

    def describe(self) -> dict[str, object]:
        """What `GET /v1/models` says of the id beside OpenAI's own fields."""
        return {"base": self.served.model_name, "role": self.role.name if self.role else None,
                "backend": self.served.name, "host": self.served.host,
                "engine": self.served.plan.engine, "running": self.served.running}


def role_slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def changes_anything(role: Role) -> bool:
    return bool(role.adapters or role.system_prompt or role.sampling
                or role.thinking is not None)


def serves_role(plan: LaunchPlan, role: Role) -> bool:
    """Whether a backend of `plan` can serve `role` without a relaunch (by the plan)."""
    if role.base_models and not any(
            base in (plan.model, Path(plan.model).name, Path(plan.model).stem)
            for base in role.base_models):
        return False
    if not role.adapters:
        return True
    if plan.engine == "vllm":
        return plan.max_lora_rank is not None or bool(plan.adapters)
    preloaded = {p.rstrip("/") for p in plan.adapters}
    names = {PurePosixPath(p.rstrip("/")).name for p in plan.adapters}
    return all(a.path.rstrip("/") in preloaded or PurePosixPath(a.path.rstrip("/")).name in names
               for a in role.adapters)


def served_backends(backends: Iterable[Backend], saved: Iterable[SavedPlan]) -> list[Served]:
    """Running backends first (with their saved plan where there is one), then saved plans
    that may start on demand, newest first."""
    plans = {p.key: p for p in saved}
    out: dict[tuple[str, str], Served] = {}
    for backend in backends:
        if not backend.state.is_live or not backend.plan_json.strip("{} "):
            continue
        try:
            plan = LaunchPlan.from_json(backend.plan_json)
        except ValueError:
            continue
        out[backend.key] = Served(backend.name, backend.host, plan, backend,
                                  plans.get(backend.key))
    for saved_plan in sorted(plans.values(), key=lambda p: -p.saved_at):
        if saved_plan.key not in out and saved_plan.on_demand:
            out[saved_plan.key] = Served(saved_plan.name, saved_plan.host, saved_plan.plan,
                                         None, saved_plan)
    return list(out.values())


def build_routes(served: list[Served], roles: Iterable[Role]) -> dict[str, Route]:
    """Every model id → its route, in the order `GET /v1/models` lists them."""
    routes: dict[str, Route] = {}
    names = [s.name for s in served]
    for target in served:
        shared = names.count(target.name) > 1
        bare = f"{target.host}/{target.name}" if shared else target.name
        routes[bare] = Route(bare, target)
    for role in roles:
        if not changes_anything(role):
            continue
        slug = role_slug(role.name)
        candidates = [s for s in served if serves_role(s.plan, role)]
        if not slug or not candidates:
            continue
        for target in candidates:
            routes[f"{slug}@{target.name}"] = Route(f"{slug}@{target.name}", target, role,
                                                    listed=len(candidates) > 1)
        if len(candidates) == 1 and slug not in routes:
            routes[slug] = Route(slug, candidates[0], role)
    return routes


def role_slots(routes: dict[str, Route], served: Served) -> dict[str, int]:
    """The slot each role of `served` calls home (by role name), so a role's prompt cache
    survives other roles' requests: llama.cpp drops a slot's cache when its adapter set
    changes. Slot 0 is left to the base model and anything else; with more roles than
    slots, roles share. Empty where the plan has one slot (or is not llama.cpp)."""
    slots = served.plan.parallel or 1
    if served.plan.engine != "llamacpp" or slots < 2:
        return {}
    names: list[str] = []
    for route in routes.values():
        if route.served.key == served.key and route.role is not None \
                and route.role.name not in names:
            names.append(route.role.name)
    return {name: 1 + index % (slots - 1) for index, name in enumerate(names)}
