"""Predict vLLM's memory split: weights per GPU, then the KV cache that the rest allows.

vLLM takes `gpu_memory_utilization` x the GPU's memory as its budget, loads its weight
shard, profiles one forward pass of `max_num_batched_tokens` for the activation peak, keeps
room for CUDA graphs and the runtime, and turns the rest into KV cache blocks; its log then
prints "GPU KV cache size: N tokens" and "Maximum concurrency for L tokens per request: X".
The weights come from the safetensors headers (exact) or from config.json alone, laid out
as its quantisation stores them (`app.fit.hf_weights`: GPTQ, AWQ, FP8, compressed-tensors,
bitsandbytes); the batched-token default follows the vLLM version in use.
"""

from __future__ import annotations

import json
import logging
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.errors import UserError
from app.fit.hf_weights import (
    FLOAT_BYTES,
    ONLINE_METHODS,
    WeightCount,
    count_weights,
    quant_method,
)
from app.fit.plan import MIB, DeviceMemory, Estimate

log = logging.getLogger(__name__)

DTYPE_BYTES: dict[str, float] = {
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
    **FLOAT_BYTES,
    "auto": 2,
    "fp8": 1,
}
FLOAT_TENSOR_DTYPES = ("F32", "F16", "BF16")
"""Checkpoint tensors vLLM converts to `--dtype` when it loads them."""
CUDA_RUNTIME_MIB = 580.0
"""The CUDA context and kernels outside PyTorch's allocator (see llamacpp_estimate)."""
CUDA_GRAPHS_MIB = 512.0
"""Memory vLLM's CUDA graph capture keeps (it budgets for it before sizing the KV cache)."""
BLOCK_SIZE = 16
LARGE_GPU_MIB = 70 * 1024
"""vLLM >= 0.9 gives GPUs of at least 70 GiB (not an A100) larger batch defaults."""


def _version(text: str | None) -> tuple[int, int]:
    """(major, minor) of a vLLM version such as "0.6.3.post1"; None means the newest rules."""
    m = re.match(r"v?(\d+)\.(\d+)", text or "")
    return (int(m.group(1)), int(m.group(2))) if m else (99, 0)


def _large_tier(version: tuple[int, int], gpu_mib: float, gpu_name: str) -> bool:
    name = gpu_name.lower()
    if version < (0, 9):
        return "h100" in name or "h200" in name  # 0.8 chose by name only
    return gpu_mib >= LARGE_GPU_MIB and "a100" not in name  # vLLM PR #17885


def default_max_num_batched_tokens(
    version: str | None, gpu_mib: float, max_model_len: int, gpu_name: str = ""
) -> int:
    """What `vllm serve` (the OpenAI server) uses when --max-num-batched-tokens is not given.

    From vLLM's sources (`SchedulerConfig`, `EngineArgs._set_default_args_v1` /
    `get_batch_defaults`): the V0 engine (< 0.8) profiles max(max_model_len, 2048) tokens
    unless chunked prefill is on, which it turns on by itself past a 32,768-token context
    (512 tokens per chunk before 0.6, then 2048); the V1 engine (0.8 on) always chunks, with
    2048 tokens, or 8192 on an H100/H200 (0.8, by name) or on any GPU of at least 70 GiB that
    is not an A100 (0.9 on). Assumed where the sources were not read version by version:
    the 0.6 boundary of the 512 -> 2048 change.
    """
    v = _version(version)
    if v < (0, 8):
        if max_model_len > 32768:
            return 512 if v < (0, 6) else 2048
        return max(max_model_len, 2048)
    return 8192 if _large_tier(v, gpu_mib, gpu_name) else 2048


def default_max_num_seqs(version: str | None, gpu_mib: float, gpu_name: str = "") -> int:
    """`vllm serve`'s --max-num-seqs default: 256, or 1024 on the large-GPU tier (0.9 on)."""
    v = _version(version)
    return 1024 if v >= (0, 9) and _large_tier(v, gpu_mib, gpu_name) else 256


@dataclass(frozen=True)
class VllmPlan:
    """A `vllm serve` launch: tensor parallel size, budget, lengths, dtypes, quantisation.

    `max_num_batched_tokens` None means the default of `vllm_version` (None: the newest)
    for this GPU; `quantization` None means what the checkpoint's config says.
    """

    tensor_parallel: int = 1
    gpu_memory_utilization: float = 0.9
    gpu_memory_mib: float = 81559.0
    max_model_len: int | None = None
    max_num_seqs: int = 256
    max_num_batched_tokens: int | None = None
    dtype: str = "auto"
    kv_cache_dtype: str = "auto"
    quantization: str | None = None
    vllm_version: str | None = None
    gpu_name: str = ""

    @classmethod
    def on_gpus(
        cls,
        capacities: Sequence[float],
        *,
        utilization: float,
        max_model_len: int | None,
        max_num_seqs: int,
        max_num_batched_tokens: int | None = None,
        dtype: str = "auto",
        kv_cache_dtype: str = "auto",
        quantization: str | None = None,
        vllm_version: str | None = None,
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
            max_num_batched_tokens=max_num_batched_tokens,
            dtype=dtype,
            kv_cache_dtype=kv_cache_dtype,
            quantization=quantization,
            vllm_version=vllm_version,
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


def safetensors_weights(folder: Path, dtype: str = "auto") -> WeightCount | None:
    """The bytes the safetensors headers in `folder` declare (None without any), with float
    tensors at `--dtype` when one is given, as vLLM converts them on load."""
    files = sorted(folder.glob("*.safetensors"))
    total = kv_proj = 0
    target = FLOAT_BYTES.get(dtype)
    for f in files:
        for name, info in _read_safetensors_header(f).items():
            if name == "__metadata__" or not isinstance(info, dict):
                continue
            start, end = info.get("data_offsets", (0, 0))
            size = int(end) - int(start)
            kind = str(info.get("dtype"))
            if target and kind in FLOAT_TENSOR_DTYPES:
                size = int(size / DTYPE_BYTES[kind] * target)
            total += size
            if ".k_proj." in name or ".v_proj." in name:
                kv_proj += size
    if not total:
        return None
    return WeightCount(total=total, kv_proj=kv_proj, source="safetensors headers")


def checkpoint_weights(
    folder: Path, config: dict[str, Any], dtype: str = "auto", quantization: str | None = None
) -> WeightCount:
    """The weights vLLM loads: the safetensors headers, unless vLLM quantises them on load
    (`--quantization fp8` or `bitsandbytes` on an unquantised checkpoint) or there are none;
    then counted from config.json in the format's layout (`app.fit.hf_weights`).

    Raises:
        UserError: a quantisation the planner cannot size or that contradicts the checkpoint.
    """
    method = quant_method(config, quantization)
    stored = isinstance(config.get("quantization_config"), dict)
    online = method in ONLINE_METHODS and not stored
    found = None if online else safetensors_weights(folder, dtype)
    return found or count_weights(config, dtype, quantization)


def weight_bytes(folder: Path, config: dict[str, Any], dtype: str) -> int:
    """Bytes of all weights: from safetensors headers when present, else from the config."""
    return checkpoint_weights(folder, config, dtype).total


def kv_heads_per_gpu(config: dict[str, Any], tp: int) -> int:
    """KV heads on each GPU: split by tensor parallel, at least one (replicated past them)."""
    heads = int(config["num_attention_heads"])
    kv = int(config.get("num_key_value_heads") or heads)
    return max(1, kv // tp)


def weights_per_gpu(count: WeightCount, config: dict[str, Any], tp: int) -> float:
    """One GPU's shard: everything split by `tp`, except K/V projections replicated once
    tensor parallel exceeds the KV heads (each GPU keeps a whole head)."""
    heads = int(config["num_attention_heads"])
    kv = int(config.get("num_key_value_heads") or heads)
    rest = (count.total - count.kv_proj) * kv
    return (rest + count.kv_proj * kv_heads_per_gpu(config, tp) * tp) / (tp * kv)


def kv_bytes_per_token(config: dict[str, Any], tp: int, kv_dtype: str, dtype: str) -> int:
    """K and V of one token on one GPU: layers x KV heads per GPU x head dim x 2 x bytes.

    `kv_dtype` "auto" is the model's dtype; fp8, fp8_e4m3 and fp8_e5m2 store one byte.
    """
    h = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    hd = int(config.get("head_dim") or h // heads)
    layers = int(config["num_hidden_layers"])
    base = (
        kv_dtype
        if kv_dtype != "auto"
        else (dtype if dtype != "auto" else str(config.get("torch_dtype", "bfloat16")))
    )
    per = 1 if base.startswith("fp8") else int(DTYPE_BYTES.get(base, 2))
    return int(2 * layers * kv_heads_per_gpu(config, tp) * hd * per)


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
    count = checkpoint_weights(folder, config, plan.dtype, plan.quantization)
    weights = weights_per_gpu(count, config, tp)
    h = int(config["hidden_size"])
    ff = int(config.get("moe_intermediate_size") or config.get("intermediate_size") or 4 * h)
    n_used = int(config.get("num_experts_per_tok") or 1)
    model_len = plan.max_model_len or int(config.get("max_position_embeddings", 0) or 0)
    tokens = plan.max_num_batched_tokens or default_max_num_batched_tokens(
        plan.vllm_version, plan.gpu_memory_mib, model_len, plan.gpu_name)
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
    est.notes.append(f"weights from {count.source}: {count.total / 2**30:.2f} GiB in all")
    est.notes.append(f"activation profile of {tokens:,} batched tokens")
    est.notes.append(f"GPU KV cache size: {kv_tokens:,} tokens")
    est.notes.append(f"Maximum concurrency for {max_len:,} tokens per request: {conc:.2f}x")
    return VllmEstimate(est, per_tok, kv_tokens, max_len, conc)
