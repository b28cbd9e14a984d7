"""Experts per token for MoE models: a launch-time setting, applied by relaunching.

A plan's `experts` becomes the engine's override (llama.cpp `--override-kv
<arch>.expert_used_count=int:N`, vLLM `--hf-overrides '{"num_experts_per_tok": N}'`; see
app.engines) and `BackendsService.relaunch` restarts the backend with it. This module says
which counts a backend can take — 1 … the model's expert count, its default marked — and
what each does to memory according to the fit planner (it changes only the compute
buffer: tens of MiB, never the weights).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

from app.engines.plan import LaunchPlan
from app.errors import UserError

log = logging.getLogger(__name__)

MIN_EXPERTS = 1


@dataclass(frozen=True)
class ExpertOption:
    count: int
    effect_mib: float | None = None
    """Memory the plan needs with this count minus with the default (None: not estimated)."""


@dataclass(frozen=True)
class ExpertOffer:
    """The counts a backend can be relaunched with; `reason` says why there are none."""

    options: tuple[ExpertOption, ...] = ()
    default: int | None = None
    current: int | None = None
    reason: str = ""

    @property
    def available(self) -> bool:
        return bool(self.options)

    def label(self, option: ExpertOption) -> str:
        """E.g. "4 (-12 MiB)", "8 (default)"."""
        text = str(option.count)
        if option.count == self.default:
            return f"{text} (default)"
        if option.effect_mib is not None:
            return f"{text} ({_mib(option.effect_mib)})"
        return text

    def check(self, count: int | None) -> None:
        """Raises UserError for a count the model does not have."""
        if not self.available:
            raise UserError(self.reason)
        if count is not None and count not in {o.count for o in self.options}:
            raise UserError(f"experts per token must be {MIN_EXPERTS}…{len(self.options)} "
                            f"for this model, not {count}")


def _mib(change: float) -> str:
    if abs(change) < 0.05:
        return "same memory"
    return f"{change:+.1f} MiB" if abs(change) < 10 else f"{change:+.0f} MiB"


def expert_offer(plan: LaunchPlan | None, not_relaunchable: str | None = None
                 ) -> ExpertOffer:
    """What the Experts chip offers for a backend started from `plan` (blocking: reads
    the model's header and runs the fit planner). `not_relaunchable` names a URL or saved
    endpoint, which has no plan Rigdeck could relaunch."""
    if plan is None:
        where = f"{not_relaunchable} is" if not_relaunchable else "this is"
        return ExpertOffer(reason=f"Experts per token is a launch setting: {where} not a "
                                  "backend Rigdeck started, so it cannot be relaunched. Start "
                                  "the model on the Backends page to choose.")
    from app.library.entries import Model
    from app.library.loader import load_entry

    entry = load_entry(Path(plan.model))
    if entry.error:
        return ExpertOffer(reason=f"the model cannot be read: {entry.error}")
    if not isinstance(entry, Model):
        return ExpertOffer(reason=f"{plan.model} is not a model")
    total, default = entry.experts, entry.experts_used
    if not total or not default:
        return ExpertOffer(reason=f"{entry.name or Path(plan.model).name} is a dense model: "
                                  "it has no experts to choose from")
    effects = _effects(plan, total, default)
    return ExpertOffer(
        tuple(ExpertOption(n, effects.get(n)) for n in range(MIN_EXPERTS, total + 1)),
        default=default, current=plan.experts or default)


def _effects(plan: LaunchPlan, total: int, default: int) -> dict[int, float]:
    """Total memory (every GPU and the host) per count, minus the default's, from the
    llama.cpp estimator; empty where it cannot say (vLLM, a folder, a planner gap)."""
    if plan.engine != "llamacpp" or not plan.model.endswith(".gguf"):
        return {}
    from app.fit.launch import fit_plan_of
    from app.fit.llamacpp_estimate import estimate_llamacpp
    from app.library.gguf import read_gguf_header

    try:
        header = read_gguf_header(Path(plan.model))
        base = fit_plan_of(plan)

        def needed(count: int) -> float:
            estimate = estimate_llamacpp(header, replace(base, experts=count))
            return sum(d.total_mib for d in estimate.devices) + estimate.host.total_mib

        reference = needed(default)
        return {n: needed(n) - reference for n in range(MIN_EXPERTS, total + 1)}
    except Exception as exc:  # a planner gap must not hide the choice itself
        log.info("expert-count memory not estimated for %s: %s", plan.model, exc)
        return {}
