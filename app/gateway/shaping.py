"""What a request becomes on its way to the backend: the route's role applied for this
request only, the backend's own model name, the role's slot.

- llama.cpp: `lora` lists every adapter the server preloaded, the role's at their scales
  and every other at 0 (an omitted adapter would run at its load scale); vLLM: `model` is
  the role's adapter.
- The role's system prompt goes first: before the client's own system message, in one
  system message (many chat templates take one, at the start, only).
- The role's sampling is a default: what the request says wins.
- The role's thinking default applies where the template has a switch and the request
  does not say (`chat_template_kwargs.enable_thinking`, else the /no_think soft switch).
- `id_slot` keeps each role on its own slot where the plan has slots, so switching roles
  does not throw away another role's prompt cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.presets.thinking import ThinkingSupport, ThinkSwitch, apply_thinking
from app.roles.requests import RoleRequest
from app.roles.role import Role


@dataclass(frozen=True)
class Shaping:
    """What the route puts into every request to one backend."""

    model: str
    """The `model` the backend expects (vLLM: the base's served name or the adapter)."""
    role: Role | None
    role_request: RoleRequest | None
    support: ThinkingSupport
    slot: int | None = None


def shape_body(body: dict[str, Any], shaping: Shaping, *, chat: bool) -> dict[str, Any]:
    """The body to send upstream; `body` is not changed."""
    out = dict(body)
    out["model"] = shaping.model
    if shaping.role_request is not None:
        out.update(shaping.role_request.extra)
    role = shaping.role
    if role is not None:
        for key, value in role.sampling.items():
            out.setdefault(key, value)
        if chat and isinstance(out.get("messages"), list):
            out["messages"] = _with_system(out["messages"], role.system_prompt)
            out = _with_thinking(out, role.thinking, shaping.support)
    if shaping.slot is not None:
        out.setdefault("id_slot", shaping.slot)
    return out


def _with_system(messages: list[Any], prompt: str) -> list[Any]:
    if not prompt:
        return messages
    first = messages[0] if messages else None
    if isinstance(first, dict) and first.get("role") == "system" \
            and isinstance(first.get("content"), str):
        return [{**first, "content": f"{prompt}\n\n{first['content']}"}, *messages[1:]]
    return [{"role": "system", "content": prompt}, *messages]


def _with_thinking(out: dict[str, Any], thinking: bool | None, support: ThinkingSupport
                   ) -> dict[str, Any]:
    kwargs = out.get("chat_template_kwargs")
    said = isinstance(kwargs, dict) and "enable_thinking" in kwargs
    if thinking is None or said or support.switch is ThinkSwitch.NONE:
        return out
    messages, template_kwargs = apply_thinking(out["messages"], thinking, support)
    out["messages"] = messages
    if template_kwargs is not None:
        out["chat_template_kwargs"] = {**(kwargs if isinstance(kwargs, dict) else {}),
                                       **template_kwargs}
    return out
