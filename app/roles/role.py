"""A role and its TOML form: what a one-click swap changes in each request.

A role names its adapters by path (a GGUF LoRA file or a PEFT folder) with a scale each,
the system prompt and sampling that go with them, the thinking default, and the base
models it was made for. Nothing here touches a server: `requests.py` shapes a request
for an engine, `store.py` keeps the files.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from app.errors import UserError
from app.presets.presets import SAMPLING_KEYS

COLOUR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
DEFAULT_COLOUR = "#64748b"


class RoleError(UserError):
    """A role file that cannot be read, or a role that cannot be used as asked."""


@dataclass(frozen=True)
class RoleAdapter:
    """One adapter of a role: its path on the backend's host and its strength."""

    path: str
    scale: float = 1.0

    @property
    def name(self) -> str:
        """The adapter's name as vLLM serves it: the file or folder name."""
        return Path(self.path.rstrip("/")).name.removesuffix(".gguf")


@dataclass(frozen=True)
class Role:
    """A named way of talking to one base model; `adapters` empty is the base model."""

    name: str
    icon: str = ""
    colour: str = DEFAULT_COLOUR
    description: str = ""
    adapters: tuple[RoleAdapter, ...] = ()
    system_prompt: str = ""
    sampling: dict[str, float | int] = field(default_factory=dict)
    thinking: bool | None = None
    base_models: tuple[str, ...] = ()
    """Paths (or names) of the models the role was made for; empty: any compatible one."""
    builtin: bool = False

    @property
    def label(self) -> str:
        return f"{self.icon} {self.name}".strip()

    def to_toml(self) -> str:
        data: dict[str, Any] = {"name": self.name}
        for key in ("icon", "description", "system_prompt"):
            if getattr(self, key):
                data[key] = getattr(self, key)
        data["colour"] = self.colour
        if self.thinking is not None:
            data["thinking"] = self.thinking
        if self.base_models:
            data["base_models"] = list(self.base_models)
        if self.sampling:
            data["sampling"] = dict(self.sampling)
        if self.adapters:
            data["adapters"] = [{"path": a.path, "scale": a.scale} for a in self.adapters]
        return tomli_w.dumps(data)


def role_from_toml(text: str, *, builtin: bool = False, source: str = "") -> Role:
    """Parse one role.

    Raises:
        RoleError: bad TOML, a missing name, an unknown key or a value of the wrong type.
    """
    where = source or "(text)"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RoleError(f"role {where} is not valid TOML: {exc}") from exc
    try:
        return _role(data, builtin)
    except (KeyError, TypeError, ValueError) as exc:
        raise RoleError(f"role {where} cannot be read: {exc}") from exc


_KEYS = {"name", "icon", "colour", "description", "adapters", "system_prompt", "sampling",
         "thinking", "base_models"}


def _role(data: dict[str, Any], builtin: bool) -> Role:
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_KEYS))}")
    name = data["name"]
    if not isinstance(name, str) or not name.strip():
        raise ValueError("name must be non-empty text")
    texts = {key: data.get(key, "") for key in ("icon", "description", "system_prompt")}
    for key, value in texts.items():
        if not isinstance(value, str):
            raise ValueError(f"{key} must be text, not {_toml_kind(value)}")
    colour = data.get("colour", DEFAULT_COLOUR)
    if not isinstance(colour, str) or not COLOUR_RE.match(colour):
        raise ValueError(f"colour must look like #1e88e5, not {colour!r}")
    thinking = data.get("thinking")
    if thinking is not None and not isinstance(thinking, bool):
        raise ValueError("thinking must be true or false")
    sampling = _sampling(data.get("sampling", {}))
    adapters = _adapters(data.get("adapters", []))
    bases = data.get("base_models", [])
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ValueError("base_models must be a list of paths")
    return Role(name=name.strip(), icon=texts["icon"], colour=colour,
                description=texts["description"], adapters=tuple(adapters),
                system_prompt=texts["system_prompt"], sampling=sampling,
                thinking=thinking, base_models=tuple(bases), builtin=builtin)


def _sampling(raw: Any) -> dict[str, float | int]:
    if not isinstance(raw, dict):
        raise ValueError(f"sampling must be a table, not {_toml_kind(raw)}")
    for key, value in raw.items():
        if key not in SAMPLING_KEYS:
            raise ValueError(f"unknown sampling key {key!r}; known: {', '.join(SAMPLING_KEYS)}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"sampling {key} must be a number, not {value!r}")
    return dict(raw)


def _adapters(raw: Any) -> list[RoleAdapter]:
    if not isinstance(raw, list):
        raise ValueError(f"adapters must be a list of tables ([[adapters]]), not "
                         f"{_toml_kind(raw)}")
    adapters = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise ValueError(f"an adapter must be a table with a path, not {_toml_kind(entry)}")
        path = entry["path"]
        scale = entry.get("scale", 1.0)
        if not isinstance(path, str) or not path.strip():
            raise ValueError("an adapter needs a path")
        if isinstance(scale, bool) or not isinstance(scale, int | float):
            raise ValueError(f"adapter scale must be a number, not {scale!r}")
        adapters.append(RoleAdapter(path, float(scale)))
    return adapters


def _toml_kind(value: object) -> str:
    """A TOML value's kind in words, for messages ("a list", "a number")."""
    kinds = ((bool, "true/false"), (int | float, "a number"), (str, "text"),
             (list, "a list"), (dict, "a table"))
    return next((name for kind, name in kinds if isinstance(value, kind)), "a date or time")
