"""The Bench's matrix: variations of a base plan, written `KEY=V1,V2,…`, and the variants
their product makes.

Each key maps onto one LaunchPlan field (a relaunch of the backend with other flags) or,
for `think`, onto a per-request `chat_template_kwargs.enable_thinking` (no relaunch). The
CLI's `--vary` and the Bench page's matrix editor write the same text, parsed here once.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from app.engines.plan import KV_TYPES, LaunchPlan, PlanError, check_plan
from app.errors import UserError

MAX_VARIANTS = 64
"""A matrix larger than this is a typo (each variant starts a backend and measures it)."""


@dataclass(frozen=True)
class Axis:
    """One key of the matrix: what it is called, what it changes, what a value may be."""

    key: str
    title: str
    fields: tuple[str, ...]
    """The plan fields it sets (empty: a per-request setting)."""
    kind: str
    """"int", "switch" (on/off), "kv" (a KV cache type) or "path" (another model file)."""
    aliases: tuple[str, ...] = ()


AXES: tuple[Axis, ...] = (
    Axis("experts", "experts per token", ("experts",), "int"),
    Axis("think", "thinking (per request)", (), "switch"),
    Axis("ctk", "K cache type", ("cache_type_k",), "kv", ("cache_type_k",)),
    Axis("ctv", "V cache type", ("cache_type_v",), "kv", ("cache_type_v",)),
    Axis("kv", "K and V cache type", ("cache_type_k", "cache_type_v"), "kv"),
    Axis("fa", "flash attention", ("flash_attn",), "switch", ("flash_attn",)),
    Axis("ctx", "context", ("context",), "int", ("context", "c")),
    Axis("ncmoe", "MoE layers in RAM", ("n_cpu_moe",), "int", ("n-cpu-moe", "n_cpu_moe")),
    Axis("ngl", "layers on the GPUs", ("gpu_layers",), "int", ("gpu_layers",)),
    Axis("ubatch", "micro-batch", ("ubatch",), "int", ("ub",)),
    Axis("parallel", "parallel slots", ("parallel",), "int", ("np",)),
    Axis("quant", "model file (a quant of the same model)", ("model",), "path", ("model",)),
)
_BY_NAME = {name: axis for axis in AXES for name in (axis.key, *axis.aliases)}
_ON = ("on", "true", "yes", "1")
_OFF = ("off", "false", "no", "0")


def axis(name: str) -> Axis:
    """The axis called `name` (or one of its aliases).

    Raises:
        UserError: no such key; the message lists the keys there are.
    """
    found = _BY_NAME.get(name.strip().lower())
    if found is None:
        raise UserError(f"--vary {name}: unknown key; use one of "
                        f"{', '.join(a.key for a in AXES)}")
    return found


@dataclass(frozen=True)
class Variation:
    """One `--vary KEY=V1,V2`: the axis and its values as typed (checked)."""

    axis: Axis
    values: tuple[str, ...]


def _value(ax: Axis, text: str) -> str:
    """`text` as a checked value of `ax` (switches as on/off, paths absolute)."""
    text = text.strip()
    if ax.kind == "int":
        try:
            number = int(text)
        except ValueError:
            raise UserError(f"--vary {ax.key}: {text!r} is not a whole number") from None
        if number < 0 or (number == 0 and ax.key not in ("ncmoe", "ngl")):
            raise UserError(f"--vary {ax.key}: {number} is out of range")
        return str(number)
    if ax.kind == "switch":
        if text.lower() in _ON:
            return "on"
        if text.lower() in _OFF:
            return "off"
        raise UserError(f"--vary {ax.key}: {text!r} is neither on nor off")
    if ax.kind == "kv":
        if text not in KV_TYPES:
            raise UserError(f"--vary {ax.key}: {text!r} is not a KV cache type "
                            f"({', '.join(KV_TYPES)})")
        return text
    return str(Path(text).expanduser().absolute())


def parse_variation(text: str) -> Variation:
    """One `KEY=V1,V2,…`.

    Raises:
        UserError: no `=`, an unknown key, no values, a value repeated or of the wrong kind.
    """
    key, sep, rest = text.partition("=")
    if not sep:
        raise UserError(f"--vary {text!r}: write KEY=V1,V2 (e.g. experts=2,4,8)")
    ax = axis(key)
    values = tuple(_value(ax, v) for v in rest.split(",") if v.strip())
    if not values:
        raise UserError(f"--vary {ax.key}: give at least one value")
    if len(set(values)) != len(values):
        raise UserError(f"--vary {ax.key}: a value is given twice ({', '.join(values)})")
    return Variation(ax, values)


def parse_matrix(texts: Iterable[str]) -> tuple[Variation, ...]:
    """Every `--vary`; a key given twice is refused (it would multiply the matrix by
    itself).

    Raises:
        UserError: as parse_variation, or a key given twice.
    """
    found = tuple(parse_variation(t) for t in texts)
    keys = [v.axis.key for v in found]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise UserError(f"--vary {', '.join(twice)} is given more than once: list all its "
                        "values in one --vary")
    return found


@dataclass(frozen=True)
class Variant:
    """One cell of the matrix: the settings it changes, as (key, value) pairs."""

    settings: tuple[tuple[str, str], ...]

    @property
    def label(self) -> str:
        """"experts=2 ctk=q8_0" (a model file by its name), or "base" for no change."""
        parts = [f"{k}={Path(v).name if axis(k).kind == 'path' else v}"
                 for k, v in self.settings]
        return " ".join(parts) or "base"

    @property
    def think(self) -> bool | None:
        """The per-request thinking switch, None where the variant leaves it alone."""
        for key, value in self.settings:
            if key == "think":
                return value == "on"
        return None

    def plan(self, base: LaunchPlan) -> LaunchPlan:
        """`base` with this variant's plan fields set.

        Raises:
            PlanError: the values conflict (a quantised V cache with flash attention off).
        """
        changes: dict[str, Any] = {}
        for key, value in self.settings:
            ax = axis(key)
            for name in ax.fields:
                changes[name] = (value == "on" if ax.kind == "switch"
                                 else int(value) if ax.kind == "int" else value)
        plan = replace(base, **changes)
        check_plan(plan)
        return plan


def expand(variations: tuple[Variation, ...]) -> list[Variant]:
    """The product of the variations, the first key varying slowest (one "base" variant
    for none).

    Raises:
        UserError: more than MAX_VARIANTS variants.
    """
    count = 1
    for variation in variations:
        count *= len(variation.values)
    if count > MAX_VARIANTS:
        raise UserError(f"the matrix has {count} variants; at most {MAX_VARIANTS} are run "
                        "at once (each starts a backend): vary fewer keys or values")
    axes = [[(v.axis.key, value) for value in v.values] for v in variations]
    return [Variant(tuple(cell)) for cell in itertools.product(*axes)]


def check_variants(variants: list[Variant], base: LaunchPlan) -> dict[int, str]:
    """Which variants cannot run as written, by index, and why (the others run)."""
    problems: dict[int, str] = {}
    for index, variant in enumerate(variants):
        try:
            variant.plan(base)
        except PlanError as exc:
            problems[index] = str(exc)
    return problems
