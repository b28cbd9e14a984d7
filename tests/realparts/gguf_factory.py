"""Writes tiny GGUF models of real architectures (qwen3, qwen3moe) and LoRA adapters for them.

The files are real enough for llama-server to load and chat with (random weights, so the
answers are noise) and for Rigdeck's library to read: the tensor names and shapes are
the ones llama.cpp's `llama_model_qwen3{,moe}::load_arch_tensors` create, the metadata
keys the ones its hparams loader reads. Shapes are configurable so memory estimates can
be checked against what the engine allocates.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import gguf
import numpy as np
import numpy.typing as npt

from tests.realparts.tiny_vocab import BOS_TOKEN, CHAT_TEMPLATE, EOS_TOKEN, build_vocab

Arch = Literal["qwen3", "qwen3moe"]
WeightType = Literal["f32", "f16"]

# The linear layers a LoRA adapter may target, with (rows in, rows out) per model shape.
LORA_TARGETS = ("attn_q", "attn_k", "attn_v", "attn_output")


@dataclass(frozen=True)
class TinyModelSpec:
    """The shape of a tiny model; the defaults load in well under a second on 2 cores."""

    arch: Arch = "qwen3"
    layers: int = 2
    hidden_size: int = 64
    heads: int = 4
    kv_heads: int = 2
    head_dim: int = 16
    ffn_size: int = 128
    experts: int = 8
    experts_used: int = 2
    expert_ffn_size: int = 32
    vocab_size: int = 512
    context_length: int = 4096
    weight_type: WeightType = "f32"
    rope_freq_base: float = 1_000_000.0
    rms_eps: float = 1e-6
    seed: int = 0
    name: str = ""

    def __post_init__(self) -> None:
        if self.heads % self.kv_heads:
            raise ValueError(f"heads ({self.heads}) must be a multiple of kv_heads "
                             f"({self.kv_heads})")
        if self.arch == "qwen3moe" and not 0 < self.experts_used <= self.experts:
            raise ValueError(f"experts_used must be in 1..{self.experts}, "
                             f"got {self.experts_used}")

    @property
    def display_name(self) -> str:
        return self.name or f"tiny-{self.arch}-{self.layers}L-{self.hidden_size}d"

    def linear_shape(self, target: str) -> tuple[int, int]:
        """(inputs, outputs) of an attention projection, as llama.cpp sees it."""
        q_dim = self.heads * self.head_dim
        kv_dim = self.kv_heads * self.head_dim
        shapes = {"attn_q": (self.hidden_size, q_dim), "attn_k": (self.hidden_size, kv_dim),
                  "attn_v": (self.hidden_size, kv_dim),
                  "attn_output": (q_dim, self.hidden_size)}
        return shapes[target]


class _Weights:
    """Random weights in the spec's type; 1-D tensors (norms) stay F32 as converters do."""

    def __init__(self, spec: TinyModelSpec) -> None:
        self._rng = np.random.default_rng(spec.seed)
        self._dtype = np.float16 if spec.weight_type == "f16" else np.float32

    def matrix(self, *ggml_shape: int) -> npt.NDArray[np.floating]:
        # numpy's axes run opposite to ggml's ne[]: ne {in, out} is numpy (out, in).
        shape = tuple(reversed(ggml_shape))
        return (self._rng.standard_normal(shape) * 0.02).astype(self._dtype)

    @staticmethod
    def norm(size: int) -> npt.NDArray[np.float32]:
        return np.ones(size, dtype=np.float32)


def _tensors(spec: TinyModelSpec) -> Iterable[tuple[str, npt.NDArray[np.floating]]]:
    """(name, data) in llama.cpp's order for the architecture."""
    w = _Weights(spec)
    d, v = spec.hidden_size, spec.vocab_size
    q_dim, kv_dim = spec.heads * spec.head_dim, spec.kv_heads * spec.head_dim
    yield "token_embd.weight", w.matrix(d, v)
    yield "output_norm.weight", w.norm(d)
    yield "output.weight", w.matrix(d, v)
    for i in range(spec.layers):
        blk = f"blk.{i}"
        yield f"{blk}.attn_norm.weight", w.norm(d)
        yield f"{blk}.attn_q.weight", w.matrix(d, q_dim)
        yield f"{blk}.attn_k.weight", w.matrix(d, kv_dim)
        yield f"{blk}.attn_v.weight", w.matrix(d, kv_dim)
        yield f"{blk}.attn_output.weight", w.matrix(q_dim, d)
        yield f"{blk}.attn_k_norm.weight", w.norm(spec.head_dim)
        yield f"{blk}.attn_q_norm.weight", w.norm(spec.head_dim)
        yield f"{blk}.ffn_norm.weight", w.norm(d)
        if spec.arch == "qwen3":
            yield f"{blk}.ffn_gate.weight", w.matrix(d, spec.ffn_size)
            yield f"{blk}.ffn_down.weight", w.matrix(spec.ffn_size, d)
            yield f"{blk}.ffn_up.weight", w.matrix(d, spec.ffn_size)
        else:
            ff, n = spec.expert_ffn_size, spec.experts
            # The router stays F32, as convert_hf_to_gguf keeps it.
            yield f"{blk}.ffn_gate_inp.weight", w.matrix(d, n).astype(np.float32)
            yield f"{blk}.ffn_gate_exps.weight", w.matrix(d, ff, n)
            yield f"{blk}.ffn_down_exps.weight", w.matrix(ff, d, n)
            yield f"{blk}.ffn_up_exps.weight", w.matrix(d, ff, n)


def write_tiny_model(path: Path, spec: TinyModelSpec | None = None) -> Path:
    """Write a tiny model GGUF to path and return path.

    Raises:
        ValueError: the spec is inconsistent (see TinyModelSpec).
        OSError: the file cannot be written.
    """
    spec = spec or TinyModelSpec()
    vocab = build_vocab(spec.vocab_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(path, spec.arch)
    try:
        writer.add_type(gguf.GGUFType.MODEL)
        writer.add_name(spec.display_name)
        writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if spec.weight_type == "f16"
                             else gguf.LlamaFileType.ALL_F32)
        writer.add_context_length(spec.context_length)
        writer.add_embedding_length(spec.hidden_size)
        writer.add_block_count(spec.layers)
        writer.add_feed_forward_length(spec.ffn_size)
        writer.add_head_count(spec.heads)
        writer.add_head_count_kv(spec.kv_heads)
        writer.add_key_length(spec.head_dim)
        writer.add_value_length(spec.head_dim)
        writer.add_rope_freq_base(spec.rope_freq_base)
        writer.add_layer_norm_rms_eps(spec.rms_eps)
        if spec.arch == "qwen3moe":
            writer.add_expert_count(spec.experts)
            writer.add_expert_used_count(spec.experts_used)
            writer.add_expert_feed_forward_length(spec.expert_ffn_size)
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre("qwen2")
        writer.add_token_list(vocab.tokens)
        writer.add_token_types(vocab.types)
        writer.add_token_merges(vocab.merges)
        writer.add_bos_token_id(vocab.token_id(BOS_TOKEN))
        writer.add_eos_token_id(vocab.token_id(EOS_TOKEN))
        writer.add_pad_token_id(vocab.token_id(BOS_TOKEN))
        writer.add_add_bos_token(False)
        writer.add_chat_template(CHAT_TEMPLATE)
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        for name, data in _tensors(spec):
            writer.add_tensor(name, data)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    return path


def write_lora_adapter(path: Path, base: TinyModelSpec | None = None, *, rank: int = 4,
                       alpha: float = 8.0, targets: Iterable[str] = ("attn_q", "attn_v"),
                       seed: int = 1, name: str = "") -> Path:
    """Write a LoRA adapter GGUF for models of spec `base` and return path.

    The layout is llama.cpp's (convert_lora_to_gguf): `<tensor>.weight.lora_a` with ne
    {inputs, rank} and `.lora_b` with ne {rank, outputs}, general.type=adapter.

    Raises:
        ValueError: a target is not one of LORA_TARGETS, or rank < 1.
    """
    base = base or TinyModelSpec()
    chosen = tuple(targets)
    unknown = sorted(set(chosen) - set(LORA_TARGETS))
    if unknown or rank < 1:
        raise ValueError(f"bad LoRA targets {unknown} or rank {rank}; "
                         f"targets must be in {LORA_TARGETS}")
    weights = _Weights(replace(base, seed=seed))
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(path, base.arch)
    try:
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_name(name or f"{base.display_name}-lora-r{rank}")
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        for i in range(base.layers):
            for target in chosen:
                inputs, outputs = base.linear_shape(target)
                prefix = f"blk.{i}.{target}.weight"
                writer.add_tensor(f"{prefix}.lora_a", weights.matrix(inputs, rank))
                writer.add_tensor(f"{prefix}.lora_b", weights.matrix(rank, outputs))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    return path
