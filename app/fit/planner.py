"""The planner: does a plan fit, the largest context that does, and what to change if not."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from app.fit.context_scaling import (
    DEFAULT_YARN_FACTOR,
    ContextAdvice,
    RopeScaling,
    context_advice,
    rope_scaling,
)
from app.fit.llamacpp_estimate import estimate_llamacpp
from app.fit.model_info import HeaderLike, ModelInfo, model_info
from app.fit.plan import DeviceMemory, Estimate, FitPlan, HostMemory

log = logging.getLogger(__name__)

DEFAULT_MARGIN_MIB = 512.0
"""Headroom left free on each GPU: desktops, CUDA graphs and the pool's growth under load."""
MIN_CONTEXT = 256


@dataclass(frozen=True)
class HostNeed:
    """What a plan asks of the host's RAM, by kind, against what it has.

    Mapped weights (`CPU_Mapped`) live in the page cache: what does not fit beside the rest
    is read from disk again at every token. Everything else (repacked copies, a copy made
    without mmap, KV, compute and output buffers, adapters) is the process's own memory."""

    mapped_mib: float
    repacked_mib: float
    kv_mib: float
    compute_mib: float
    """Compute and output buffers on the host."""
    other_mib: float
    """Weights read without mmap, adapters."""
    ram: HostMemory | None = None

    @classmethod
    def of(cls, est: Estimate, ram: HostMemory | None) -> HostNeed:
        b, host = est.host.buffers, est.host
        mapped = b.get("model:CPU_Mapped", 0.0)
        repacked = b.get("model:CPU_REPACK", 0.0)
        other = max(host.weights_mib - mapped - repacked, 0.0)
        return cls(mapped, repacked, host.kv_mib, host.compute_mib + host.output_mib
                   + host.overhead_mib, other, ram)

    @property
    def total_mib(self) -> float:
        return self.mapped_mib + self.repacked_mib + self.kv_mib + self.compute_mib + self.other_mib

    @property
    def fits(self) -> bool:
        """True without a reading of the host: nothing to check against."""
        return self.ram is None or self.total_mib <= self.ram.room_mib

    @property
    def from_disk_mib(self) -> float:
        """Mapped weights that find no page cache beside the rest: read from disk per token."""
        if self.ram is None:
            return 0.0
        resident = self.total_mib - self.mapped_mib
        return max(0.0, self.mapped_mib - max(0.0, self.ram.room_mib - resident))

    def headline(self) -> str:
        """"the host needs 31,035 MiB of 24,105 MiB RAM" (with what is available if less)."""
        text = f"the host needs {self.total_mib:,.0f} MiB"
        ram = self.ram
        if ram is None:
            return text + " of RAM"
        text += f" of {ram.total_mib:,.0f} MiB RAM"
        if ram.available_mib is not None and ram.available_mib < ram.total_mib - 0.5:
            text += f", {ram.available_mib:,.0f} MiB available now"
        return text

    def lines(self) -> list[str]:
        """What the host holds, kind by kind, and what reading from disk means."""
        parts = [
            (self.mapped_mib, "mapped weights (page cache)"),
            (self.repacked_mib, "repacked weights"),
            (self.other_mib, "weights and adapters read into RAM"),
            (self.kv_mib, "KV cache"),
            (self.compute_mib, "compute and output buffers"),
        ]
        out = [f"{label}: {v:,.0f} MiB" for v, label in parts if v >= 0.5]
        disk = self.from_disk_mib
        if disk >= 0.5:
            out.append(
                f"{disk:,.0f} MiB of the mapped weights do not fit in RAM: they will be read "
                "from disk at every token"
            )
        return out


@dataclass(frozen=True)
class Advice:
    """One change to the plan and what it does: `saves_mib` on the fullest GPU (the host's
    RAM for a CPU plan; negative: costs), `effects` the change in MiB on each device and the
    host (negative: frees), `fits` whether the plan then fits, `then_fits` whether that is
    news (it did not before)."""

    change: str
    saves_mib: float
    fits: bool
    effects: tuple[tuple[str, float], ...] = ()
    then_fits: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "change": self.change,
            "saves_mib": round(self.saves_mib, 1),
            "fits": self.fits,
            "then_fits": self.then_fits,
            "effects_mib": {name: round(d, 1) for name, d in self.effects},
        }

    def effects_text(self) -> str:
        """"GPU 0 (CUDA0) -5,012 MiB, host +5,347 MiB" (devices that change)."""
        shown = [(n, d) for n, d in self.effects if abs(d) >= 0.5]
        return ", ".join(f"{n} {d:+,.0f} MiB" for n, d in shown) or "no change in memory"

    def text(self) -> str:
        """One line for a person: the change, its effects, and "then fits" when it is news."""
        return f"{self.change}: {self.effects_text()}{' — then fits' if self.then_fits else ''}"


@dataclass(frozen=True)
class Verdict:
    """Does an estimate fit: every GPU with the margin to spare, and the host's RAM (vLLM:
    one request of the whole context in its KV cache)."""

    fits: bool
    peak_mib: float
    """The fullest GPU's total (the host's when the plan is CPU only)."""
    cpu_only: bool = False
    worst: str = ""
    """The GPU most over its capacity less the margin, when it does not fit."""
    over_mib: float = 0.0
    worst_need_mib: float = 0.0
    worst_capacity_mib: float = 0.0
    host: HostNeed | None = None
    """What the host needs (None: not asked, e.g. vLLM)."""

    @property
    def gpus_fit(self) -> bool:
        return not self.worst

    @property
    def host_fits(self) -> bool:
        return self.host is None or self.host.fits

    def headline(self, margin: float) -> str:
        """"Does not fit: the host needs 31,035 MiB of 24,105 MiB RAM", naming each device
        that does not fit; or what fits, without "GPU" for a CPU plan."""
        return f"{'Fits' if self.fits else 'Does not fit'}: {self.reason(margin)}"

    def reason(self, margin: float) -> str:
        """The headline without "Fits:"/"Does not fit:" (the CLI's "fits: no — …")."""
        if not self.fits:
            why = []
            if self.worst:
                why.append(
                    f"{self.worst} needs {self.worst_need_mib:,.0f} MiB of "
                    f"{self.worst_capacity_mib:,.0f} MiB, {self.over_mib:,.0f} MiB over "
                    f"(with the {margin:,.0f} MiB margin)"
                )
            if self.host is not None and not self.host.fits:
                why.append(self.host.headline())
            return "; ".join(why)
        host = self.host.headline() if self.host is not None else ""
        if self.cpu_only:
            return host or f"the host needs {self.peak_mib:,.0f} MiB"
        text = f"{self.peak_mib:,.0f} MiB on the fullest GPU, margin {margin:,.0f} MiB kept"
        return f"{text}; {host}" if host else text


@dataclass
class FitResult:
    estimate: Estimate
    fits: bool
    max_ctx: int
    advice: list[Advice]
    verdict: Verdict | None = None
    context: ContextAdvice | None = None
    """What the plan's context needs beyond the trained one (None: nothing)."""
    usable_ctx: int = 0
    """The most context the model can use (with its scaling); the search stops there."""


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


def fit_verdict(
    est: Estimate, capacity: Sequence[float], margin: float, host: HostMemory | None = None
) -> Verdict:
    """Whether every GPU holds its part with `margin` MiB to spare and the host holds its
    part (when `host` is known), and which device is most over."""
    need = HostNeed.of(est, host)
    if not est.devices:
        return Verdict(need.fits, est.host.total_mib, cpu_only=True, host=need)
    caps = dict(zip((d.name for d in est.devices), capacity, strict=False))
    over = [(d, by) for d, by in device_overs(est, capacity, margin) if by > 0]
    if not over:
        return Verdict(need.fits, _peak(est), host=need)
    worst, by = max(over, key=lambda x: x[1])
    return Verdict(False, _peak(est), worst=worst.name, over_mib=by,
                   worst_need_mib=worst.total_mib, worst_capacity_mib=caps[worst.name],
                   host=need)


def context_limits(info: ModelInfo | None, scaling: RopeScaling | None = None) -> tuple[int, int]:
    """The contexts worth planning for: up to what the model can use with its RoPE scaling
    (see `RopeScaling.usable`); before a model is known, 128k."""
    if scaling is not None and scaling.usable:
        return MIN_CONTEXT, max(scaling.usable, MIN_CONTEXT)
    if info is None or not info.n_ctx_train:
        return MIN_CONTEXT, 131072
    return MIN_CONTEXT, max(int(info.n_ctx_train * DEFAULT_YARN_FACTOR), MIN_CONTEXT)


def _peak(est: Estimate) -> float:
    return max((d.total_mib for d in est.devices), default=est.host.total_mib)


def max_context(
    header: HeaderLike,
    plan: FitPlan,
    capacity: Sequence[float],
    margin: float,
    limit: int,
    *,
    host: HostMemory | None = None,
) -> int:
    """Largest context (a multiple of 256, at most `limit`) whose real estimate fits every
    GPU and the host, by bisection; 0 if none does."""

    def fits(ctx: int) -> bool:
        return fit_verdict(estimate_llamacpp(header, replace(plan, ctx=ctx)), capacity,
                           margin, host).fits

    hi = max(limit // 256, 1)
    if not fits(256):
        return 0
    lo = 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid * 256):
            lo = mid
        else:
            hi = mid - 1
    return lo * 256


def _effects(before: Estimate, after: Estimate) -> tuple[tuple[str, float], ...]:
    """The change in MiB on each GPU and the host (negative: frees)."""
    out = [(a.name, a.total_mib - b.total_mib)
           for b, a in zip(before.devices, after.devices, strict=False)]
    out.append(("host", after.host.total_mib - before.host.total_mib))
    return tuple(out)


def plan_fit(
    header: HeaderLike,
    plan: FitPlan,
    capacity: Sequence[float],
    margin: float = DEFAULT_MARGIN_MIB,
    smaller_quants: list[Path] | None = None,
    *,
    host: HostMemory | None = None,
) -> FitResult:
    """Estimate `plan`, say whether it fits `capacity` (MiB per GPU) and `host`'s RAM, the
    largest context that does (up to what the model can use), and what would help."""
    est = estimate_llamacpp(header, plan)
    scaling = rope_scaling(header)
    verdict = fit_verdict(est, capacity, margin, host)
    limit = context_limits(model_info(header), scaling)[1]
    constrained = bool(capacity and plan.on_gpu) or host is not None
    best = max_context(header, plan, capacity, margin, limit, host=host) if constrained else 0
    advisor = _Advisor(header, plan, capacity, margin, host=host, est=est, fits=verdict.fits)
    advice = advisor.advise(smaller_quants or [])
    return FitResult(est, verdict.fits, best, advice, verdict,
                     context_advice(scaling, plan.ctx), scaling.usable or limit)


class _Advisor:
    """The changes worth making to one plan, each judged on the real estimate."""

    def __init__(
        self,
        header: HeaderLike,
        plan: FitPlan,
        capacity: Sequence[float],
        margin: float,
        *,
        host: HostMemory | None,
        est: Estimate,
        fits: bool,
    ) -> None:
        self.header, self.plan, self.capacity, self.margin = header, plan, capacity, margin
        self.host, self.est, self.fits = host, est, fits
        self.base = _peak(est)
        self.advice: list[Advice] = []

    def advise(self, smaller_quants: list[Path]) -> list[Advice]:
        plan, m = self.plan, model_info(self.header)
        if plan.on_gpu:
            if not plan.flash_attn:
                self.consider("flash attention on (-fa on)", replace(plan, flash_attn=True))
            self.kv_types()
            if plan.n_slots > 1:
                self.consider(
                    f"fewer parallel slots (-np {plan.n_slots // 2})",
                    replace(plan, parallel=plan.n_slots // 2),
                )
            if m.is_moe and not plan.cpu_moe_all:
                self.experts_in_ram(m.n_layer)
            if not m.is_moe:
                self.gpu_layers(m.n_layer + 1)
            if plan.ubatch > 256:
                self.consider(
                    "smaller micro-batch (-ub 256)",
                    replace(plan, ubatch=256, batch=min(plan.batch, 2048)),
                )
        for path in smaller_quants:
            self.smaller_quant(path)
        self.advice.sort(key=lambda a: (not a.fits, -a.saves_mib))
        return self.advice

    def judge(
        self, alt: FitPlan, header: HeaderLike | None = None
    ) -> tuple[Estimate, Verdict] | None:
        try:
            e = estimate_llamacpp(header or self.header, alt)
        except Exception as exc:  # an alternative the engine would refuse is no advice
            log.debug("skipping %s: %s", alt, exc)
            return None
        return e, fit_verdict(e, self.capacity, self.margin, self.host)

    def add(self, change: str, judged: tuple[Estimate, Verdict]) -> None:
        e, v = judged
        self.advice.append(Advice(change, self.base - _peak(e), v.fits, _effects(self.est, e),
                                  v.fits and not self.fits))

    def consider(self, change: str, alt: FitPlan) -> None:
        """Advise `alt` if it saves memory on the fullest device."""
        judged = self.judge(alt)
        if judged is not None and self.base - _peak(judged[0]) > 1:
            self.add(change, judged)

    def gpus_fit(self, alt: FitPlan) -> bool:
        judged = self.judge(alt)
        return judged is not None and judged[1].gpus_fit

    def kv_types(self) -> None:
        plan = self.plan
        if plan.cache_type_k != "f16" and plan.cache_type_v != "f16":
            return
        fa_plan = replace(plan, flash_attn=True)
        for kv in ("q8_0", "q4_0"):
            self.consider(
                f"KV cache {kv} (-ctk {kv} -ctv {kv}, needs -fa on)",
                replace(fa_plan, cache_type_k=kv, cache_type_v=kv),
            )

    def experts_in_ram(self, n_layer: int) -> None:
        """The smallest --n-cpu-moe whose GPUs fit (the GPU frees, the host fills with N)."""
        plan = self.plan
        n = _smallest(0, n_layer, lambda k: self.gpus_fit(replace(plan, n_cpu_moe=k)))
        if n == plan.n_cpu_moe:
            return
        judged = self.judge(replace(plan, n_cpu_moe=n))
        if judged is None:
            return
        what = f"the experts of {n} layer{'s' if n != 1 else ''} in RAM" if n else (
            "every expert on the GPU")
        least = "the fewest that fit" if judged[1].gpus_fit else "all there are"
        self.add(f"{what} (--n-cpu-moe {n}, {least})", judged)

    def gpu_layers(self, all_layers: int) -> None:
        """The most -ngl layers whose GPUs fit (a dense model)."""
        plan = self.plan
        now = all_layers if plan.gpu_layers is None else min(plan.gpu_layers, all_layers)
        k = _largest(0, all_layers, lambda k: self.gpus_fit(replace(plan, gpu_layers=k)))
        if k == now:
            return
        judged = self.judge(replace(plan, gpu_layers=k))
        if judged is not None:
            self.add(f"{k} of {all_layers} layers on the GPU (-ngl {k}, the most that fit)",
                     judged)

    def smaller_quant(self, path: Path) -> None:
        from app.library.gguf import read_gguf_header

        try:
            other = read_gguf_header(path)
        except Exception as exc:
            log.debug("skipping %s: %s", path, exc)
            return
        judged = self.judge(self.plan, other)
        if judged is not None and self.base - _peak(judged[0]) > 1:
            self.add(f"a smaller quantisation: {path.name}", judged)


def _smallest(lo: int, hi: int, ok: Callable[[int], bool]) -> int:
    """The smallest k in [lo, hi] with ok(k) (ok grows with k); hi when none."""
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _largest(lo: int, hi: int, ok: Callable[[int], bool]) -> int:
    """The largest k in [lo, hi] with ok(k) (ok shrinks with k); lo when none."""
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo
