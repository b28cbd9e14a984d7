"""Named presets: request settings (thinking, sampling, output length, system prompt) and
launch settings (context, batch, slots, experts, thinking budget), stored as TOML.

Defaults ship in resources/presets/; the user's own (and edited copies of the defaults)
live in <config>/presets/ and win by name. A default that is edited is saved to the user
folder, so the shipped file is never touched and "reset" is deleting the user's copy.
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import tomli_w

from app.errors import UserError
from app.presets.thinking import sampling_for
from app.user_files import (
    folder_lock,
    read_folder,
    saving_failed,
    write_atomically,
)

log = logging.getLogger(__name__)

SAMPLING_KEYS = ("temperature", "top_p", "top_k", "min_p", "presence_penalty",
                 "repeat_penalty")


@dataclass(frozen=True)
class RequestSettings:
    """What goes into each request. Sampling left out follows the mode's recommendation."""

    thinking: bool | None = None
    sampling: dict[str, float | int] = field(default_factory=dict)
    max_tokens: int | None = None
    system_prompt: str | None = None

    def effective_sampling(self, thinking: bool | None = None) -> dict[str, float | int]:
        """Qwen's sampling for the mode in use (a per-message toggle wins), then overrides."""
        mode = self.thinking if thinking is None else thinking
        return sampling_for(mode, self.sampling)


@dataclass(frozen=True)
class LaunchSettings:
    """What needs a (re)launch of the backend. `context` "max": the largest that fits."""

    context: int | Literal["max"] | None = None
    batch: int | None = None
    ubatch: int | None = None
    parallel: int | None = None
    expert_count: int | None = None
    reasoning_budget: int | None = None

    def sized_to(self, max_context: int) -> LaunchSettings:
        """This launch with the context clamped to what the fit planner says fits."""
        if self.context == "max" or (isinstance(self.context, int)
                                     and self.context > max_context):
            context: int | Literal["max"] | None = max_context
        else:
            context = self.context
        ubatch = self.ubatch
        batch = self.batch
        if isinstance(context, int) and batch is not None and batch > context:
            batch = context
        if batch is not None and ubatch is not None and ubatch > batch:
            ubatch = batch
        return replace(self, context=context, batch=batch, ubatch=ubatch)


@dataclass(frozen=True)
class Preset:
    name: str
    description: str = ""
    request: RequestSettings = field(default_factory=RequestSettings)
    launch: LaunchSettings = field(default_factory=LaunchSettings)
    builtin: bool = False
    """Shipped in resources/ (an edited default is saved as the user's copy)."""

    def to_toml(self) -> str:
        data: dict[str, Any] = {"name": self.name, "description": self.description}
        request = {k: v for k, v in asdict(self.request).items() if v not in (None, {})}
        launch = {k: v for k, v in asdict(self.launch).items() if v is not None}
        if request:
            data["request"] = request
        if launch:
            data["launch"] = launch
        return tomli_w.dumps(data)


class PresetError(UserError):
    """A preset file that cannot be read or a name that cannot be used."""


def preset_from_toml(text: str, *, builtin: bool = False, source: str = "") -> Preset:
    """Parse one preset.

    Raises:
        PresetError: bad TOML, an unknown key or a value of the wrong type.
    """
    try:
        data = tomllib.loads(text)
        request = _table(data, "request")
        sampling = {k: request.pop(k) for k in SAMPLING_KEYS if k in request}
        sampling.update(_table(request, "sampling"))
        request.pop("sampling", None)
        for key, value in sampling.items():
            if key not in SAMPLING_KEYS:
                raise ValueError(f"unknown sampling key {key!r}")
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"sampling {key} must be a number, not {value!r}")
        name, description = data["name"], data.get("description", "")
        if not isinstance(name, str) or not name.strip():
            raise ValueError("name must be non-empty text")
        if not isinstance(description, str):
            raise ValueError(f"description must be text, not {description!r}")
        return Preset(
            name=name,
            description=description,
            request=_checked(RequestSettings(**request, sampling=sampling)),
            launch=_checked(LaunchSettings(**_table(data, "launch"))),
            builtin=builtin,
        )
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise PresetError(f"preset {source or '(text)'} cannot be read: {exc}") from exc


def _table(data: dict[str, Any], key: str) -> dict[str, Any]:
    """A copy of table `key` of `data` (empty if absent).

    Raises:
        ValueError: `key` is there but no table.
    """
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ValueError(f"{key} must be a table, not {value!r}")
    return dict(value)


def _checked(settings: Any) -> Any:
    for name, value in asdict(settings).items():
        if name == "system_prompt" and value is not None and not isinstance(value, str):
            raise ValueError(f"system_prompt must be text, not {value!r}")
        if name == "reasoning_budget" and value is not None and (
                isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"reasoning_budget must be a whole number, not {value!r}")
        if name == "thinking" and value is not None and not isinstance(value, bool):
            raise ValueError("thinking must be true or false")
        if name == "context" and value is not None and value != "max" and (
                isinstance(value, bool) or not isinstance(value, int) or value < 256):
            raise ValueError(f"context must be an integer >= 256 or \"max\", not {value!r}")
        if name in ("batch", "ubatch", "parallel", "expert_count", "max_tokens") and (
                value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                       or value < 1)):
            raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return settings


def _file_name(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    if not slug:
        raise PresetError(f"a preset needs a name with letters or digits, not {name!r}")
    return f"{slug}.toml"


class PresetStore:
    """The shipped presets overlaid with the user's; `problems` lists the user's files
    that could not be read (each by path and why), refreshed by every `all()`."""

    def __init__(self, user_folder: Path) -> None:
        self.user_folder = user_folder
        self.problems: list[str] = []

    def _builtin(self) -> dict[str, Preset]:
        found: dict[str, Preset] = {}
        folder = resources.files("resources") / "presets"
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".toml"):
                preset = preset_from_toml(entry.read_text(encoding="utf-8"), builtin=True,
                                          source=entry.name)
                found[preset.name] = preset
        return found

    def _user_files(self) -> tuple[dict[Path, Preset], dict[Path, str]]:
        """The user's preset files: those read (path → preset) and those not (→ why)."""
        return read_folder(self.user_folder,
                           lambda text, source: preset_from_toml(text, source=source),
                           "preset", (PresetError,))

    def all(self) -> dict[str, Preset]:
        """Every preset by name: shipped ones first (in file order), then the user's."""
        presets = self._builtin()
        found, bad = self._user_files()
        self.problems = list(bad.values())
        for problem in self.problems:
            log.info("%s", problem)  # said by the caller: the window, `rigdeck problems`
        for preset in found.values():
            presets[preset.name] = replace(preset, builtin=preset.name in presets)
        return presets

    def get(self, name: str) -> Preset:
        """Raises PresetError if there is none of that name."""
        presets = self.all()
        try:
            return presets[name]
        except KeyError:
            unread = (f"; {len(self.problems)} preset file(s) could not be read: "
                      + "; ".join(self.problems)) if self.problems else ""
            raise PresetError(f"no preset named {name!r} (known: "
                              f"{', '.join(presets)}){unread}") from None

    def save(self, preset: Preset) -> Path:
        """Write the preset to the user folder (an edited default becomes the user's copy):
        to the file holding it already, else to the file its name makes; a file holding
        another preset, or one that cannot be read, is never overwritten.

        Raises:
            PresetError: the name makes no file name, the file is another preset's, or the
                disk is full (the old file is then unchanged).
        """
        with folder_lock(self.user_folder):
            found, bad = self._user_files()
            path = next((p for p, r in found.items() if r.name == preset.name), None)
            if path is None:
                path = self.user_folder / _file_name(preset.name)
                if path in bad:
                    raise PresetError(f"preset {preset.name!r} would be saved as {path}, "
                                      f"which cannot be read ({bad[path]}); nothing was "
                                      "overwritten: fix or remove that file first")
                if path in found or os.path.lexists(path):
                    other = found[path].name if path in found else "another file"
                    raise PresetError(f"preset {preset.name!r} would be saved as {path.name}"
                                      f", which holds {other!r}; nothing was overwritten: "
                                      "give the preset another name")
            try:
                write_atomically(path, preset.to_toml().encode("utf-8"))
            except OSError as exc:
                raise PresetError(str(saving_failed(f"preset {preset.name!r}", path, exc))
                                  ) from exc
        return path

    def copy(self, name: str, new_name: str) -> Preset:
        """A copy of preset `name` under `new_name`, saved.

        Raises:
            PresetError: no such preset, or `new_name` is taken.
        """
        with folder_lock(self.user_folder):
            if new_name in self.all():
                raise PresetError(f"a preset named {new_name!r} already exists")
            copied = replace(self.get(name), name=new_name, builtin=False)
            self.save(copied)
        return copied

    def delete(self, name: str) -> None:
        """Delete the user's preset (for an edited default: back to the shipped one).

        Raises:
            PresetError: the user has no preset of that name.
        """
        with folder_lock(self.user_folder):
            paths = [p for p, r in self._user_files()[0].items() if r.name == name]
            if not paths:
                raise PresetError(f"{name!r} is not one of your presets")
            for path in paths:
                path.unlink(missing_ok=True)
