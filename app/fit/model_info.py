"""The hyper-parameters of a GGUF model that decide its memory, read the way llama.cpp reads them.

llama.cpp takes each value from `<arch>.<key>` (llama-model.cpp / llama-hparams.cpp); per-layer
values may be arrays. Sliding-window layers follow `<arch>.attention.sliding_window_pattern`
or the architecture's default pattern.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from app.errors import UserError

log = logging.getLogger(__name__)

SWA_DEFAULT_PATTERN = {"gemma3": 6, "gemma2": 2, "cohere2": 4}
"""Architectures whose sliding-window layout is a fixed period (every Nth layer is global)."""


class HeaderLike(Protocol):
    """What the estimator needs from `app.library.gguf.GgufHeader`."""

    @property
    def metadata(self) -> Any: ...

    @property
    def tensors(self) -> Any: ...

    def get(self, key: str, default: Any = None) -> Any: ...


@dataclass(frozen=True)
class ModelInfo:
    """What sizes llama.cpp's buffers, independent of the launch plan."""

    arch: str
    n_layer: int
    n_embd: int
    n_head: tuple[int, ...]
    n_head_kv: tuple[int, ...]
    head_k: int
    head_v: int
    n_ff: tuple[int, ...]
    n_vocab: int
    n_expert: int
    n_expert_used: int
    n_ff_exp: int
    n_ctx_train: int
    n_swa: int
    swa_layers: tuple[bool, ...]
    head_k_swa: int
    head_v_swa: int

    def n_embd_k_gqa(self, il: int) -> int:
        return self.head_k_at(il) * self.n_head_kv[il]

    def n_embd_v_gqa(self, il: int) -> int:
        return self.head_v_at(il) * self.n_head_kv[il]

    def head_k_at(self, il: int) -> int:
        return self.head_k_swa if self.swa_layers[il] else self.head_k

    def head_v_at(self, il: int) -> int:
        return self.head_v_swa if self.swa_layers[il] else self.head_v

    @property
    def is_moe(self) -> bool:
        return self.n_expert > 0


def _per_layer(value: Any, n_layer: int, default: int) -> tuple[int, ...]:
    if value is None:
        return (default,) * n_layer
    if isinstance(value, (list, tuple)):
        vals = [int(v) for v in value]
        if len(vals) < n_layer:
            vals += [vals[-1] if vals else default] * (n_layer - len(vals))
        return tuple(vals[:n_layer])
    return (int(value),) * n_layer


def model_info(header: HeaderLike) -> ModelInfo:
    """Read the hyper-parameters from a GGUF header; UserError when the file lacks them."""
    arch = header.get("general.architecture")
    if not isinstance(arch, str):
        raise UserError("the GGUF file names no architecture (general.architecture)")

    def key(suffix: str, default: Any = None) -> Any:
        return header.get(f"{arch}.{suffix}", default)

    n_layer = key("block_count")
    n_embd = key("embedding_length")
    if not isinstance(n_layer, int) or not isinstance(n_embd, int):
        raise UserError(f"the GGUF file lacks {arch}.block_count or {arch}.embedding_length")
    n_head = _per_layer(key("attention.head_count"), n_layer, 1)
    n_head_kv = _per_layer(key("attention.head_count_kv"), n_layer, n_head[0])
    head_default = n_embd // max(n_head[0], 1)
    head_k = int(key("attention.key_length", head_default))
    head_v = int(key("attention.value_length", head_default))
    n_ff = _per_layer(key("feed_forward_length"), n_layer, 0)
    vocab = _vocab_size(header)
    n_swa = int(key("attention.sliding_window", 0) or 0)
    swa_layers = _swa_layers(arch, key("attention.sliding_window_pattern"), n_layer, n_swa)
    return ModelInfo(
        arch=arch,
        n_layer=n_layer,
        n_embd=n_embd,
        n_head=n_head,
        n_head_kv=n_head_kv,
        head_k=head_k,
        head_v=head_v,
        n_ff=n_ff,
        n_vocab=vocab,
        n_expert=int(key("expert_count", 0) or 0),
        n_expert_used=int(key("expert_used_count", 0) or 0),
        n_ff_exp=int(key("expert_feed_forward_length", 0) or 0),
        n_ctx_train=int(key("context_length", 0) or 0),
        n_swa=n_swa,
        swa_layers=swa_layers,
        head_k_swa=int(key("attention.key_length_swa", head_k)),
        head_v_swa=int(key("attention.value_length_swa", head_v)),
    )


def _vocab_size(header: HeaderLike) -> int:
    tokens = header.get("tokenizer.ggml.tokens")
    if tokens is not None:
        return len(tokens)
    for t in header.tensors:
        if t.name == "token_embd.weight":
            return int(t.shape[1])
    raise UserError("the GGUF file has neither a vocabulary nor token_embd.weight")


def _swa_layers(arch: str, pattern: Any, n_layer: int, n_swa: int) -> tuple[bool, ...]:
    """Which layers use the sliding window (llama_hparams::set_swa_pattern)."""
    if n_swa <= 0:
        return (False,) * n_layer
    if isinstance(pattern, (list, tuple)):
        return tuple(bool(pattern[il]) if il < len(pattern) else False for il in range(n_layer))
    period = int(pattern) if isinstance(pattern, int) else SWA_DEFAULT_PATTERN.get(arch, 0)
    if period <= 0:
        return (True,) * n_layer
    return tuple(il % period < period - 1 for il in range(n_layer))
