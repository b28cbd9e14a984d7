"""Predict vLLM's memory split: weights per GPU, then the KV cache that the rest allows.

vLLM takes `gpu_memory_utilization` x the GPU's memory as its budget, loads its weight
shard, profiles one forward pass of `max_num_batched_tokens` for the activation peak, keeps
room for CUDA graphs and the runtime, and turns the rest into KV cache blocks; its log then
prints "GPU KV cache size: N tokens" and "Maximum concurrency for L tokens per request: X".
The weights come from the safetensors headers (exact) or from config.json and a declared
dtype/quantisation (counted from the shapes).
"""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.errors import UserError
from app.fit.plan import MIB, DeviceMemory, Estimate

log = logging.getLogger(__name__)

DTYPE_BYTES = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
    "float16": 2,
    "bfloat16": 2,
    "float32": 4,
    "auto": 2,
    "fp8": 1,
    "int8": 1,
    "int4": 0.5,
    "awq": 0.5,
    "gptq": 0.5,
}
CUDA_RUNTIME_MIB = 580.0
"""The CUDA context and kernels outside PyTorch's allocator (see llamacpp_estimate)."""
CUDA_GRAPHS_MIB = 512.0
"""Memory vLLM's CUDA graph capture keeps (it budgets for it before sizing the KV cache)."""
BLOCK_SIZE = 16


@dataclass(frozen=True)
class VllmPlan:
    """A `vllm serve` launch: tensor parallel size, budget, lengths, KV dtype."""

    tensor_parallel: int = 1
    gpu_memory_utilization: float = 0.9
    gpu_memory_mib: float = 81559.0
    max_model_len: int | None = None
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 8192
    dtype: str = "auto"
    kv_cache_dtype: str = "auto"

    @classmethod
    def on_gpus(
        cls,
        capacities: Sequence[float],
        *,
        utilization: float,
        max_model_len: int | None,
        max_num_seqs: int,
    ) -> VllmPlan:
        """A plan over GPUs of `capacities` MiB, tensor parallel across all of them.

        Raises:
            UserError: no GPU (vLLM is planned for GPUs only).
        """
        if not capacities:
            raise UserError("vLLM needs at least one GPU: enter its memory in MiB")
        return cls(
            tensor_parallel=len(capacities),
            gpu_memory_utilization=utilization,
            gpu_memory_mib=min(capacities),
            max_model_len=max_model_len,
            max_num_seqs=max_num_seqs,
        )


@dataclass
class VllmEstimate:
    estimate: Estimate
    kv_bytes_per_token: int
    kv_cache_tokens: int
    max_model_len: int
    max_concurrency: float

    @property
    def fits(self) -> bool:
        """vLLM starts only when its KV cache holds one request of the whole context."""
        return self.kv_cache_tokens >= self.max_model_len


def _read_safetensors_header(path: Path) -> dict[str, Any]:
    with path.open("rb") as fh:
        raw = fh.read(8)
        if len(raw) != 8:
            raise UserError(f"{path.name} is not a safetensors file")
        (n,) = struct.unpack("<Q", raw)
        if n > 100 * MIB:
            raise UserError(f"{path.name} has an implausible header of {n} bytes")
        data = json.loads(fh.read(n))
    if not isinstance(data, dict):
        raise UserError(f"{path.name}: unreadable safetensors header")
    return data


def weight_bytes(folder: Path, config: dict[str, Any], dtype: str) -> int:
    """Bytes of all weights: from safetensors headers when present, else from the config."""
    files = sorted(folder.glob("*.safetensors"))
    total = 0
    for f in files:
        for name, info in _read_safetensors_header(f).items():
            if name == "__metadata__" or not isinstance(info, dict):
                continue
            start, end = info.get("data_offsets", (0, 0))
            total += int(end) - int(start)
    if total:
        return total
    per = DTYPE_BYTES.get(
        dtype if dtype != "auto" else str(config.get("torch_dtype", "bfloat16")), 2
    )
    return int(parameter_count(config) * per)


def parameter_count(config: dict[str, Any]) -> int:
    """Parameters of a decoder from its config (attention, MLP or experts, embeddings)."""
    h = int(config["hidden_size"])
    layers = int(config["num_hidden_layers"])
    heads = int(config["num_attention_heads"])
    kv = int(config.get("num_key_value_heads", heads))
    hd = int(config.get("head_dim") or h // heads)
    vocab = int(config["vocab_size"])
    attn = h * hd * heads * 2 + h * hd * kv * 2
    experts = int(config.get("num_experts") or config.get("num_local_experts") or 0)
    if experts:
        ff = int(config.get("moe_intermediate_size") or config["intermediate_size"])
        mlp = experts * 3 * h * ff + h * experts
    else:
        mlp = 3 * h * int(config["intermediate_size"])
    emb = vocab * h * (1 if config.get("tie_word_embeddings") else 2)
    return layers * (attn + mlp + 2 * h) + emb + h


def kv_bytes_per_token(config: dict[str, Any], tp: int, kv_dtype: str, dtype: str) -> int:
    """K and V of one token on one GPU: layers x KV heads per GPU x head dim x 2 x bytes."""
    h = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    kv = int(config.get("num_key_value_heads", heads))
    hd = int(config.get("head_dim") or h // heads)
    layers = int(config["num_hidden_layers"])
    kv_per_gpu = max(1, kv // tp)
    base = (
        kv_dtype
        if kv_dtype != "auto"
        else (dtype if dtype != "auto" else str(config.get("torch_dtype", "bfloat16")))
    )
    per = 1 if base.startswith("fp8") else int(DTYPE_BYTES.get(base, 2))
    return int(2 * layers * kv_per_gpu * hd * per)


POSITIVE_KEYS = ("hidden_size", "num_attention_heads", "num_hidden_layers", "vocab_size")
"""What every estimate divides or multiplies by: each must be a whole number above 0."""
OPTIONAL_POSITIVE_KEYS = ("num_key_value_heads", "head_dim", "intermediate_size",
                          "moe_intermediate_size", "num_experts_per_tok")


def checked_config(path: Path) -> dict[str, Any]:
    """The model's config.json (its `text_config` for a multimodal model), its sizes checked.

    Raises:
        UserError: not JSON, or a size that is missing, not a whole number or not above 0.
    """
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise UserError(f"{path} cannot be read as JSON: {exc}") from None
    config = raw.get("text_config", raw) if isinstance(raw, dict) and "hidden_size" not in raw \
        else raw
    if not isinstance(config, dict):
        raise UserError(f"{path} is not a JSON object")
    for key in (*POSITIVE_KEYS, *OPTIONAL_POSITIVE_KEYS):
        value = config.get(key)
        if value is None and key in OPTIONAL_POSITIVE_KEYS:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserError(f"{path}: {key} must be a whole number above 0, not {value!r}")
    return config


def estimate_vllm(folder: Path, plan: VllmPlan) -> VllmEstimate:
    """Weights per GPU, the KV cache tokens left, and the context/concurrency they allow."""
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise UserError(f"{folder} has no config.json (a Hugging Face model folder is needed)")
    config = checked_config(cfg_path)
    tp = max(1, plan.tensor_parallel)
    weights = weight_bytes(folder, config, plan.dtype) / tp
    h = int(config["hidden_size"])
    ff = int(config.get("moe_intermediate_size") or config.get("intermediate_size") or 4 * h)
    n_used = int(config.get("num_experts_per_tok") or 1)
    tokens = plan.max_num_batched_tokens
    activation = (
        tokens * (4 * h + 3 * ff * n_used // tp) * 2
        + plan.max_num_seqs * int(config["vocab_size"]) * 4 // tp
    )
    budget = plan.gpu_memory_utilization * plan.gpu_memory_mib * MIB
    free = budget - weights - activation - (CUDA_RUNTIME_MIB + CUDA_GRAPHS_MIB) * MIB
    per_tok = kv_bytes_per_token(config, tp, plan.kv_cache_dtype, plan.dtype)
    kv_tokens = max(0, int(free // per_tok) // BLOCK_SIZE * BLOCK_SIZE)
    max_len = plan.max_model_len or int(config.get("max_position_embeddings", 0) or kv_tokens)
    gpus = []
    for g in range(tp):
        d = DeviceMemory(name=f"GPU {g}")
        d.weights_mib = weights / MIB
        d.kv_mib = kv_tokens * per_tok / MIB
        d.compute_mib = activation / MIB
        d.overhead_mib = CUDA_RUNTIME_MIB + CUDA_GRAPHS_MIB
        gpus.append(d)
    est = Estimate(
        engine="vllm", devices=gpus, host=DeviceMemory(name="host"), n_ctx=min(max_len, kv_tokens)
    )
    conc = kv_tokens / max_len if max_len else 0.0
    est.notes.append(f"GPU KV cache size: {kv_tokens:,} tokens")
    est.notes.append(f"Maximum concurrency for {max_len:,} tokens per request: {conc:.2f}x")
    return VllmEstimate(est, per_tok, kv_tokens, max_len, conc)
