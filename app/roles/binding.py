"""Binding a role to a running backend: read its adapter files, ask the server what it
serves, load a vLLM adapter that is not loaded yet, and give the request fields.

Blocking (disk and HTTP): the GUI calls it on the task runner, the CLI directly.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from app.errors import UserError
from app.library.entries import Entry
from app.library.loader import load_entry
from app.roles.requests import BASE_MODEL, RoleRequest, role_availability, role_request
from app.roles.role import Role, RoleError
from app.roles.served import LoraApi, ServedLoras


def read_adapters(roles: Iterable[Role]) -> dict[str, Entry | None]:
    """Each adapter path of the roles → its library entry (None: no such file)."""
    found: dict[str, Entry | None] = {}
    for role in roles:
        for adapter in role.adapters:
            if adapter.path not in found:
                path = Path(adapter.path)
                found[adapter.path] = load_entry(path) if path.exists() else None
    return found


def bind_role(role: Role, api: LoraApi, *, served: ServedLoras | None = None,
              model: Entry | None = None) -> RoleRequest:
    """The request fields of `role` on the server behind `api`.

    Raises:
        RoleError: the backend cannot serve the role; the message says why and what fixes it.
        UserError: a vLLM adapter could not be loaded at run time.
    """
    served = served or api.served()
    verdict = role_availability(role, served, model=model, adapters=read_adapters([role]))
    if not verdict.ok:
        fix = " (relaunch the backend with this role's adapters)" if verdict.fix else ""
        raise RoleError(f"role {role.name!r} cannot be used on this backend: "
                        f"{verdict.reason}{fix}")
    for adapter in verdict.to_load:
        api.load_vllm_adapter(adapter.name, adapter.path)
    return role_request(role, served)


def bind_role_at(url: str, api_key: str | None, role: Role, served: ServedLoras
                 ) -> RoleRequest:
    """`bind_role` against the server at `url` (the chat chip, once a role is chosen).

    Raises:
        RoleError, UserError: as `bind_role`.
    """
    with LoraApi(url, api_key) as api:
        return bind_role(role, api, served=served)


def base_request(api: LoraApi) -> RoleRequest | None:
    """The request fields for "no role": every adapter a llama.cpp server preloaded at
    scale 0 (see BASE_MODEL). None where it holds none, or cannot be asked (the chat
    request then says what is wrong with the server)."""
    try:
        served = api.served()
    except UserError:
        return None
    if served.engine != "llamacpp" or not served.adapters:
        return None
    return role_request(BASE_MODEL, served)
