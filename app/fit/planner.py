"""The planner: does a plan fit, the largest context that does, and what to change if not."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from app.fit.llamacpp_estimate import estimate_llamacpp
from app.fit.model_info import HeaderLike, ModelInfo
from app.fit.plan import DeviceMemory, Estimate, FitPlan

log = logging.getLogger(__name__)

DEFAULT_MARGIN_MIB = 512.0
"""Headroom left free on each GPU: desktops, CUDA graphs and the pool's growth under load."""
MIN_CONTEXT = 256


@dataclass(frozen=True)
class Advice:
    """One change to the plan and what it saves (negative: costs) on the fullest GPU, in MiB."""

    change: str
    saves_mib: float
    fits: bool

    def as_dict(self) -> dict[str, object]:
        return {"change": self.change, "saves_mib": round(self.saves_mib, 1), "fits": self.fits}


@dataclass(frozen=True)
class Verdict:
    """Does an estimate fit: every GPU with the margin to spare (vLLM: one request of the
    whole context in its KV cache)."""

    fits: bool
    peak_mib: float
    """The fullest GPU's total (the host's when the plan is CPU only)."""
    cpu_only: bool = False
    worst: str = ""
    """The GPU most over its capacity less the margin, when it does not fit."""
    over_mib: float = 0.0


@dataclass
class FitResult:
    estimate: Estimate
    fits: bool
    max_ctx: int
    advice: list[Advice]


def device_overs(
    est: Estimate, capacity: Sequence[float], margin: float
) -> list[tuple[DeviceMemory, float]]:
    """Each GPU with the MiB by which it exceeds its capacity less the margin (<= 0: fits)."""
    pairs = zip(est.devices, capacity, strict=False)
    return [(d, d.total_mib - (cap - margin)) for d, cap in pairs]


def over_mib(est: Estimate, capacity: Sequence[float], margin: float) -> float:
    """MiB by which the fullest GPU exceeds its capacity less the margin (<= 0: fits; a
    CPU-only estimate, or no capacity given, always fits)."""
    return max((over for _, over in device_overs(est, capacity, margin)), default=0.0)


def fit_verdict(est: Estimate, capacity: Sequence[float], margin: float) -> Verdict:
    """Whether every GPU holds its part with `margin` MiB to spare, and which is most over."""
    if not est.devices:
        return Verdict(True, est.host.total_mib, cpu_only=True)
    over = [(d, by) for d, by in device_overs(est, capacity, margin) if by > 0]
    if not over:
        return Verdict(True, _peak(est))
    worst, by = max(over, key=lambda x: x[1])
    return Verdict(False, _peak(est), worst=worst.name, over_mib=by)


def context_limits(info: ModelInfo | None) -> tuple[int, int]:
    """The contexts worth planning for: up to 4x the trained one, at least 128k."""
    if info is None:
        return MIN_CONTEXT, 131072
    return MIN_CONTEXT, max(4 * info.n_ctx_train, 131072)


def _peak(est: Estimate) -> float:
    return max((d.total_mib for d in est.devices), default=est.host.total_mib)


def max_context(
    header: HeaderLike, plan: FitPlan, capacity: Sequence[float], margin: float, limit: int
) -> int:
    """Largest context (a multiple of 256) that fits, by bisection; 0 if none does."""
    lo, hi = 0, max(limit // 256, 1)
    if over_mib(estimate_llamacpp(header, replace(plan, ctx=256)), capacity, margin) > 0:
        return 0
    lo = 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if over_mib(estimate_llamacpp(header, replace(plan, ctx=mid * 256)), capacity, margin) <= 0:
            lo = mid
        else:
            hi = mid - 1
    return lo * 256


def plan_fit(
    header: HeaderLike,
    plan: FitPlan,
    capacity: Sequence[float],
    margin: float = DEFAULT_MARGIN_MIB,
    smaller_quants: list[Path] | None = None,
) -> FitResult:
    """Estimate `plan`, say whether it fits `capacity` (MiB per GPU) and what would help."""
    from app.fit.model_info import model_info

    est = estimate_llamacpp(header, plan)
    m = model_info(header)
    fits = over_mib(est, capacity, margin) <= 0 if capacity else True
    limit = max(m.n_ctx_train, plan.ctx) * 4 if m.n_ctx_train else max(plan.ctx * 4, 131072)
    best = max_context(header, plan, capacity, margin, limit) if capacity and plan.on_gpu else 0
    advice: list[Advice] = []
    base = _peak(est)

    def consider(change: str, alt: FitPlan) -> None:
        try:
            e = estimate_llamacpp(header, alt)
        except Exception as exc:  # an alternative the engine would refuse is no advice
            log.debug("skipping %s: %s", change, exc)
            return
        saved = base - _peak(e)
        if saved > 1:
            advice.append(
                Advice(change, saved, over_mib(e, capacity, margin) <= 0 if capacity else True)
            )

    if plan.on_gpu:
        if not plan.flash_attn:
            consider("flash attention on (-fa on)", replace(plan, flash_attn=True))
        if plan.cache_type_k == "f16" or plan.cache_type_v == "f16":
            fa_plan = replace(plan, flash_attn=True)
            consider(
                "KV cache q8_0 (-ctk q8_0 -ctv q8_0, needs -fa on)",
                replace(fa_plan, cache_type_k="q8_0", cache_type_v="q8_0"),
            )
        if plan.n_slots > 1:
            consider(
                f"fewer parallel slots (-np {plan.n_slots // 2})",
                replace(plan, parallel=plan.n_slots // 2),
            )
        if m.is_moe and not plan.cpu_moe_all:
            for n in sorted({max(1, m.n_layer // 4), max(1, m.n_layer // 2), m.n_layer}):
                if n > plan.n_cpu_moe:
                    consider(
                        f"keep the experts of {n} layer{'s' if n > 1 else ''} in RAM "
                        f"(--n-cpu-moe {n})",
                        replace(plan, n_cpu_moe=n),
                    )
        if plan.ubatch > 256:
            consider(
                "smaller micro-batch (-ub 256)",
                replace(plan, ubatch=256, batch=min(plan.batch, 2048)),
            )
    for path in smaller_quants or []:
        from app.library.gguf import read_gguf_header

        try:
            other = read_gguf_header(path)
            e = estimate_llamacpp(other, plan)
        except Exception as exc:
            log.debug("skipping %s: %s", path, exc)
            continue
        saved = base - _peak(e)
        if saved > 1:
            advice.append(
                Advice(
                    f"a smaller quantisation: {path.name}",
                    saved,
                    over_mib(e, capacity, margin) <= 0 if capacity else True,
                )
            )
    advice.sort(key=lambda a: (not a.fits, -a.saves_mib))
    return FitResult(est, fits, best, advice)
