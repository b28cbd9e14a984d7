"""What a bench run measured: per variant, speed (repetitions, median and spread), memory
(the engine's buffers per device, the process's GPU memory, host RSS, the fit estimate),
perplexity and, for think / no-think, answer length and time; and the run around them.

Plain dataclasses, stored as JSON in the bench database and exported as CSV or JSON.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field, fields
from typing import Any

STATES = ("waiting", "running", "done", "failed", "cancelled", "skipped")
"""A variant's state; a run's is "running", "done", "failed" or "cancelled"."""


@dataclass(frozen=True)
class Spread:
    """The median of some repetitions and their lowest and highest value."""

    median: float
    low: float
    high: float
    count: int

    @property
    def plus_minus(self) -> float:
        """Half the range: what "±" says beside the median."""
        return (self.high - self.low) / 2


def spread(values: list[float]) -> Spread | None:
    """The median and range of `values` (None for none)."""
    if not values:
        return None
    return Spread(statistics.median(values), min(values), max(values), len(values))


@dataclass
class VariantResult:
    """One variant of a run, filled in as it is measured."""

    index: int
    label: str
    settings: dict[str, str] = field(default_factory=dict)
    plan_json: str = ""
    state: str = "waiting"
    error: str = ""
    prompt_tps: list[float] = field(default_factory=list)
    """Prompt processing tokens/s of each repetition (the server's prompt_per_second)."""
    decode_tps: list[float] = field(default_factory=list)
    """Decode tokens/s of each repetition (the server's predicted_per_second)."""
    ttft_ms: list[float] = field(default_factory=list)
    """Time to first token of each repetition: the server's prompt_ms."""
    prompt_tokens: int | None = None
    answer_tokens: int | None = None
    speed_source: str = ""
    """"server" (llama.cpp's timings) or "client" (a server that sends none)."""
    buffers: dict[str, float] = field(default_factory=dict)
    """The engine's own buffers, MiB by "kind:buffer type" (model:CPU_Mapped, kv:CUDA0)."""
    gpu_process_mib: float | None = None
    """The process's GPU memory where NVML answers (a local process backend)."""
    host_rss_mib: float | None = None
    estimate_mib: float | None = None
    """The fit planner's estimate for the fullest GPU, or the host on a CPU plan."""
    measured_mib: float | None = None
    """What the calibration compares with the estimate (the same place)."""
    on_gpu: bool = False
    perplexity: float | None = None
    perplexity_pm: float | None = None
    perplexity_chunks: int | None = None
    perplexity_context: int | None = None
    answer_lengths: list[int] = field(default_factory=list)
    """Tokens of each answer to the fixed prompt set (think / no-think variants)."""
    answer_seconds: list[float] = field(default_factory=list)
    engine_version: str = ""

    @property
    def prompt(self) -> Spread | None:
        return spread(self.prompt_tps)

    @property
    def decode(self) -> Spread | None:
        return spread(self.decode_tps)

    @property
    def ttft(self) -> Spread | None:
        return spread(self.ttft_ms)

    def devices(self) -> dict[str, float]:
        """MiB per buffer type (device) over every kind: CPU, CPU_Mapped, CUDA0, …"""
        per: dict[str, float] = {}
        for name, mib in self.buffers.items():
            device = name.split(":", 1)[1] if ":" in name else name
            per[device] = per.get(device, 0.0) + mib
        return per

    def kinds(self) -> dict[str, float]:
        """MiB per kind (model, kv, compute, output) over every device."""
        per: dict[str, float] = {}
        for name, mib in self.buffers.items():
            kind = name.split(":", 1)[0]
            per[kind] = per.get(kind, 0.0) + mib
        return per

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> VariantResult:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


@dataclass(frozen=True)
class BenchSettings:
    """How each variant is measured."""

    repetitions: int = 3
    prompt_tokens: int = 512
    """About how long the prompt is (words of the text; the server counts the tokens)."""
    answer_tokens: int = 128
    """Tokens generated per repetition (end of text ignored, so every one is counted)."""
    warmup: bool = True
    perplexity: bool = True
    perplexity_context: int = 128
    perplexity_chunks: int = 4
    text: str = ""
    """The text llama-perplexity reads (empty: the one Rigdeck ships)."""
    think_max_tokens: int = 256
    """The longest answer to each of the fixed prompts of a think / no-think variant."""
    ready_timeout_s: float = 600.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> BenchSettings:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


@dataclass
class BenchRun:
    """One run: a model, a base plan, its variants, where and on what it ran."""

    id: int
    created: float
    model: str
    host: str
    base_plan_json: str
    settings: BenchSettings
    variants: list[VariantResult]
    state: str = "running"
    finished: float | None = None
    machine: dict[str, Any] = field(default_factory=dict)
    engine_version: str = ""
    error: str = ""

    @property
    def title(self) -> str:
        name = self.model.rstrip("/").rsplit("/", 1)[-1]
        return f"#{self.id} {name}"
