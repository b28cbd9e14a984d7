"""Experts per token for MoE models: a launch-time setting, applied by relaunching.

llama.cpp takes `--override-kv <arch>.expert_used_count=int:N`; vLLM takes
`--hf-overrides '{"num_experts_per_tok": N}'`. The Backends service owns starting and
stopping; this module only says which choices exist and rewrites a launch command, and
`relaunch_with_experts` runs the stop/start through callables that service provides, after
the one confirmation the UI asks for. The conversation is untouched: it lives in history.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from app.errors import UserError

log = logging.getLogger(__name__)

Engine = Literal["llama.cpp", "vllm"]
MIN_EXPERTS = 2


@dataclass(frozen=True)
class ExpertChoices:
    """What the user may pick: MIN_EXPERTS … the model's expert count; `default` is marked."""

    total: int
    default: int

    @property
    def values(self) -> list[int]:
        return list(range(MIN_EXPERTS, self.total + 1))

    def label(self, n: int) -> str:
        return f"{n} (default)" if n == self.default else str(n)

    def check(self, n: int) -> None:
        """Raises UserError for a count outside the model's range."""
        if not MIN_EXPERTS <= n <= self.total:
            raise UserError(f"experts per token must be {MIN_EXPERTS}…{self.total} for this "
                            f"model, not {n}")


def expert_choices(total: int | None, used: int | None) -> ExpertChoices | None:
    """None for a dense model (no choice to offer)."""
    if not total or not used or total < MIN_EXPERTS:
        return None
    return ExpertChoices(total, used)


def _without_flag(command: Sequence[str], flag: str, value_starts: str | None) -> list[str]:
    out: list[str] = []
    skip = False
    for index, arg in enumerate(command):
        if skip:
            skip = False
            continue
        if arg == flag and index + 1 < len(command) and (
                value_starts is None or command[index + 1].startswith(value_starts)):
            skip = True
            continue
        if arg.startswith(flag + "=") and (
                value_starts is None or arg[len(flag) + 1:].startswith(value_starts)):
            continue
        out.append(arg)
    return out


def with_expert_count(command: Sequence[str], engine: Engine, arch: str, n: int | None
                      ) -> list[str]:
    """The launch command with experts per token set to `n` (None: the model's default).

    An earlier override of the same key is replaced, other overrides are kept.
    """
    if engine == "llama.cpp":
        key = f"{arch}.expert_used_count="
        out = _without_flag(command, "--override-kv", key)
        return out if n is None else [*out, "--override-kv", f"{key}int:{n}"]
    out = list(command)
    overrides: dict[str, object] = {}
    for index, arg in enumerate(out):
        if arg == "--hf-overrides" and index + 1 < len(out):
            overrides = json.loads(out[index + 1])
            break
    out = _without_flag(out, "--hf-overrides", None)
    overrides.pop("num_experts_per_tok", None)
    if n is not None:
        overrides["num_experts_per_tok"] = n
    return [*out, "--hf-overrides", json.dumps(overrides)] if overrides else out


P = TypeVar("P")


def relaunch_with_experts(plan: P, n: int | None, *, choices: ExpertChoices,
                          set_experts: Callable[[P, int | None], P],
                          stop: Callable[[], None], start: Callable[[P], None]) -> P:
    """Stop the backend and start it again from `plan` with `n` experts per token.

    `set_experts` makes the new plan (e.g. `dataclasses.replace(plan, experts=n)`, or
    `with_expert_count` over a command list); `stop`/`start` come from the Backends service.
    Returns the new plan.

    Raises:
        UserError: `n` is out of range; errors of `stop`/`start` pass through.
    """
    if n is not None:
        choices.check(n)
    new_plan = set_experts(plan, n)
    log.info("relaunching with %s experts per token", n if n is not None else "default")
    stop()
    start(new_plan)
    return new_plan
