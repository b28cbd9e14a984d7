"""A role against a running backend: can it be served, and what each request carries.

llama.cpp: every adapter was preloaded with `--lora-init-without-apply`, so a request
names its adapters in `lora` ([{id, scale}], every other adapter at scale 0). vLLM: a
request names one adapter as its `model`; one not yet loaded is loaded first through
`/v1/load_lora_adapter`. Either way the role's system prompt, sampling and thinking
default go into the request too (see app.chat.session.build_request).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from app.library.compat import check_compatibility
from app.library.entries import Adapter, Entry
from app.roles.role import Role, RoleAdapter, RoleError
from app.roles.served import ServedLoras

Fix = Literal["relaunch"]

BASE_MODEL = Role(name="")
"""No role: the base model alone. On llama.cpp it still needs a `lora` list with every
preloaded adapter at scale 0: a request without one runs with the adapters at their load
scale (1.0), even under --lora-init-without-apply, which only skips applying them at
start (server-context.cpp: `slot.lora = params_base.lora_adapters`)."""


@dataclass(frozen=True)
class Availability:
    """Whether the backend can serve the role; `reason` and `fix` when it cannot."""

    ok: bool
    reason: str = ""
    fix: Fix | None = None
    to_load: tuple[RoleAdapter, ...] = ()
    """vLLM adapters to load at run time before the first request."""


@dataclass(frozen=True)
class RoleRequest:
    """What a role puts into each request on one backend."""

    role: Role
    extra: dict[str, Any] = field(default_factory=dict)
    model: str | None = None


def role_availability(role: Role, served: ServedLoras, *, model: Entry | None = None,
                      adapters: Mapping[str, Entry | None] | None = None) -> Availability:
    """Can `served` (a backend running `model`) serve `role`? The first reason it cannot.

    `adapters` maps each of the role's adapter paths to its library entry (None: the
    file is missing); without it, only what the server says is checked.
    """
    if not role.adapters:
        return Availability(True)
    problem = files_problem(role, model, adapters)
    if problem is not None:
        return problem
    if served.engine == "none":
        return Availability(False, f"no LoRA support: {served.reason}")
    if served.engine == "llamacpp":
        missing = [a for a in role.adapters if served.find(a.path) is None]
        if missing:
            return Availability(False, f"not loaded: {_names(missing)} was not preloaded "
                                       "when the backend started", "relaunch")
        return Availability(True)
    return _vllm(role, served, adapters or {})


def _names(adapters: list[RoleAdapter]) -> str:
    return ", ".join(a.name for a in adapters)


def files_problem(role: Role, model: Entry | None,
                  adapters: Mapping[str, Entry | None] | None) -> Availability | None:
    """Why the role's adapter files cannot serve `model` (missing, unreadable, not an
    adapter, incompatible), or None when they can (or `adapters` is not known)."""
    if adapters is None:
        return None
    for wanted in role.adapters:
        problem = _adapter_file(wanted, adapters.get(wanted.path), model)
        if problem is not None:
            return problem
    if model is not None and role.base_models and not any(
            base in (str(model.path), model.name, model.path.name) for base in role.base_models):
        return Availability(False, f"incompatible base: the role is for "
                                   f"{', '.join(role.base_models)}, not {model.name}")
    return None


def _adapter_file(wanted: RoleAdapter, entry: Entry | None, model: Entry | None
                  ) -> Availability | None:
    if entry is None:
        return Availability(False, f"adapter file missing: {wanted.path}")
    if entry.error:
        return Availability(False, f"adapter {wanted.name} cannot be read: {entry.error}")
    if not isinstance(entry, Adapter):
        return Availability(False, f"{wanted.path} is a model, not a LoRA adapter")
    if model is not None:
        verdict = check_compatibility(entry, model)
        if verdict.fits is False:
            return Availability(False, f"incompatible base: {verdict.reason}")
    return None


def _vllm(role: Role, served: ServedLoras,  # noqa: PLR0911 (one reason per return)
          entries: Mapping[str, Entry | None]) -> Availability:
    if len(role.adapters) > 1:
        return Availability(False, "vLLM applies one adapter per request; this role has "
                                   f"{len(role.adapters)}")
    wanted = role.adapters[0]
    if wanted.scale != 1.0:
        return Availability(False, f"vLLM applies an adapter at scale 1 only (the role "
                                   f"asks {wanted.scale:g})")
    if not served.lora_enabled:
        return Availability(False, "not loaded: the backend was started without "
                                   "--enable-lora", "relaunch")
    entry = entries.get(wanted.path)
    rank = entry.rank if isinstance(entry, Adapter) else None
    if rank is not None and served.max_rank is not None and rank > served.max_rank:
        return Availability(False, f"rank too large: {wanted.name} has rank {rank}, the "
                                   f"backend serves up to --max-lora-rank {served.max_rank}",
                            "relaunch")
    if served.find(wanted.path) is not None:
        return Availability(True)
    if not served.runtime_loading:
        return Availability(False, f"not loaded: {wanted.name} is not loaded and the "
                                   "backend does not allow loading at run time", "relaunch")
    return Availability(True, to_load=(wanted,))


def role_request(role: Role, served: ServedLoras) -> RoleRequest:
    """The request fields of `role` on `served` (call after a successful availability).

    Raises:
        RoleError: an adapter of the role is not on the server.
    """
    if served.engine == "llamacpp":
        return RoleRequest(role, {"lora": _llama_lora(role, served)})
    if not role.adapters:
        return RoleRequest(role)
    if served.engine == "vllm":
        wanted = role.adapters[0]
        found = served.find(wanted.path)
        return RoleRequest(role, model=found.name if found else wanted.name)
    raise RoleError(f"role {role.name!r} needs LoRA adapters; {served.reason}")


def _llama_lora(role: Role, served: ServedLoras) -> list[dict[str, Any]]:
    """Every preloaded adapter with its scale for this role (0 for the others), so no
    adapter stays applied from an earlier request or a global scale."""
    scales: dict[int, float] = {}
    for wanted in role.adapters:
        found = served.find(wanted.path)
        if found is None or found.id is None:
            raise RoleError(f"adapter {wanted.name} is not loaded on this backend; "
                            "relaunch it with the role's adapters")
        scales[found.id] = wanted.scale
    return [{"id": a.id, "scale": scales.get(a.id, 0.0)}
            for a in served.adapters if a.id is not None]
