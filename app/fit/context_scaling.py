"""How far a model's context can go: its trained context, the RoPE scaling it names, and the
llama-server flags that stretch it further.

llama.cpp reads `<arch>.rope.scaling.type`, `.factor` and `.original_context_length` from the
GGUF (llama-model.cpp, `LLM_KV_ROPE_SCALING_*`) and applies them by itself; a file that names
none runs at its trained context unless `--rope-scaling yarn --rope-scale F --yarn-orig-ctx N`
is given (common/arg.cpp). A Hugging Face folder says the same in config.json's
`rope_scaling` (`rope_type`/`type`, `factor`, `original_max_position_embeddings`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.fit.model_info import HeaderLike

DEFAULT_YARN_FACTOR = 4.0
"""The YaRN factor assumed for a model that names no scaling: the most Qwen, DeepSeek and Llama
model cards publish for YaRN (e.g. Qwen3: 32,768 → 131,072 with factor 4); past it quality
falls away, so the planner goes no further."""


@dataclass(frozen=True)
class RopeScaling:
    """The model's own context and the scaling it was published with."""

    trained: int
    """The context the model was trained at (before any scaling); 0: unknown."""
    kind: str = ""
    """"yarn", "linear", "longrope"... as the model names it; "" when it names none."""
    factor: float = 1.0
    context_length: int = 0
    """The context the file declares (with a declared scaling: often trained x factor)."""

    @property
    def declared(self) -> bool:
        return self.kind not in ("", "none") and self.factor > 1.0

    @property
    def usable(self) -> int:
        """The most context the model can use: with the scaling it declares, or with YaRN
        at `DEFAULT_YARN_FACTOR` given by flags (0: unknown)."""
        if not self.trained:
            return 0
        factor = self.factor if self.declared else DEFAULT_YARN_FACTOR
        return max(int(self.trained * factor), self.context_length)


@dataclass(frozen=True)
class ContextAdvice:
    """What a context beyond the trained one needs."""

    ctx: int
    scaling: RopeScaling
    flags: tuple[str, ...]
    """llama-server flags to add (none when the file's own scaling covers `ctx`)."""
    note: str
    capped: bool
    """`ctx` is more than the model can use even with scaling."""


def rope_scaling(header: HeaderLike) -> RopeScaling:
    """The scaling a GGUF names (llama-model.cpp reads the same keys)."""
    arch = str(header.get("general.architecture", ""))

    def key(name: str, default: Any = None) -> Any:
        return header.get(f"{arch}.{name}", default)

    ctx_len = int(key("context_length", 0) or 0)
    kind = str(key("rope.scaling.type", "") or "").lower()
    factor = float(key("rope.scaling.factor", 0.0) or 0.0)
    if not factor and key("rope.scale_linear") is not None:  # the older linear-only key
        kind, factor = "linear", float(key("rope.scale_linear"))
    original = int(key("rope.scaling.original_context_length", 0) or 0)
    if kind in ("", "none") or factor <= 1.0:
        return RopeScaling(trained=ctx_len, context_length=ctx_len)
    return RopeScaling(
        trained=original or ctx_len, kind=kind, factor=factor, context_length=ctx_len
    )


def rope_scaling_from_config(config: Mapping[str, Any]) -> RopeScaling:
    """The scaling a Hugging Face config.json names (`rope_scaling`, transformers' keys)."""
    text = config.get("text_config")
    if isinstance(text, Mapping) and "max_position_embeddings" in text:
        config = text
    ctx_len = int(config.get("max_position_embeddings") or 0)
    rs = config.get("rope_scaling")
    if not isinstance(rs, Mapping):
        return RopeScaling(trained=ctx_len, context_length=ctx_len)
    kind = str(rs.get("rope_type") or rs.get("type") or "").lower()
    factor = float(rs.get("factor") or 0.0)
    if kind in ("", "default", "none") or factor <= 1.0:
        return RopeScaling(trained=ctx_len, context_length=ctx_len)
    original = int(rs.get("original_max_position_embeddings") or 0)
    return RopeScaling(
        trained=original or ctx_len, kind=kind, factor=factor, context_length=ctx_len
    )


def yarn_factor(ctx: int, trained: int) -> float:
    """The --rope-scale that stretches `trained` to at least `ctx`, rounded up to a tenth."""
    return math.ceil(ctx / trained * 10 - 1e-9) / 10


def context_advice(scaling: RopeScaling, ctx: int) -> ContextAdvice | None:
    """What running at `ctx` needs; None within the trained context (or when unknown)."""
    trained = scaling.trained
    if not trained or ctx <= trained:
        return None
    usable = scaling.usable
    capped = ctx > usable
    if scaling.declared:
        note = (
            f"{ctx:,} is beyond the trained {trained:,}: the file names "
            f"{scaling.kind} scaling x{scaling.factor:g} (up to {usable:,}), "
            "which llama.cpp applies by itself"
        )
        if capped:
            note += f"; the model can use at most {usable:,}, so plan for that"
        return ContextAdvice(ctx, scaling, (), note, capped)
    factor = yarn_factor(min(ctx, usable), trained)
    flags = ("--rope-scaling", "yarn", "--rope-scale", f"{factor:g}", "--yarn-orig-ctx",
             str(trained))
    note = (f"{ctx:,} is beyond the trained {trained:,} and the file names no RoPE "
            f"scaling: add YaRN x{factor:g} with {' '.join(flags)}")
    if capped:
        note += (f"; the model can use at most {usable:,} "
                 f"(YaRN x{DEFAULT_YARN_FACTOR:g}), so plan for that")
    return ContextAdvice(ctx, scaling, flags, note, capped)
