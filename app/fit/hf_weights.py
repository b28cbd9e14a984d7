"""Bytes of a Hugging Face checkpoint counted from config.json alone, quantised or not.

Every linear layer of the decoder is listed from the config's shapes (attention, MLP or
experts, the LM head) and laid out the way its quantisation format stores it on disk and
vLLM loads it: GPTQ (`qweight` int32 [K*b/32, N], `qzeros` int32 [G, N*b/32], `scales`
fp16 [G, N], `g_idx` int32 [K]), AWQ (`qweight` int32 [K, N*b/32], `qzeros` [G, N*b/32],
`scales` [G, N]), FP8 (`weight` e4m3 [N, K] plus one fp32 `weight_scale`, or fp32
`weight_scale_inv` per `weight_block_size` block), compressed-tensors (its `config_groups`
and `ignore`) and bitsandbytes (4-bit nf4/fp4 packed two per byte with an absmax per 64
values, or int8 with one fp32 `SCB` per row). Modules a format leaves unquantised
(embeddings, the MoE router, `modules_to_not_convert`, `ignore`, the LM head except GPTQ's
`lm_head: true`) count at the model's float dtype. G = ceil(K / group_size).

Not modelled: multi-head latent attention (DeepSeek's `kv_lora_rank`), vision towers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from app.errors import UserError

FLOAT_BYTES = {"float16": 2, "half": 2, "bfloat16": 2, "float32": 4, "float": 4}
ONLINE_METHODS = ("fp8", "bitsandbytes")
"""What vLLM can quantise while it loads an unquantised checkpoint (`--quantization`)."""
METHOD_ALIASES = {"gptq_marlin": "gptq", "awq_marlin": "awq", "compressed_tensors":
                  "compressed-tensors"}


@dataclass(frozen=True)
class Linear:
    """One linear module: its full name, N = out_features, K = in_features."""

    name: str
    out_features: int
    in_features: int
    bias: bool = False
    quantisable: bool = True


@dataclass(frozen=True)
class WeightCount:
    """A checkpoint's bytes, and those of the K/V projections (replicated past KV heads)."""

    total: int
    kv_proj: int
    source: str


def model_dtype(config: dict[str, Any], dtype: str, method: str | None) -> str:
    """The dtype vLLM runs the model in: `--dtype`, else the config's (GPTQ/AWQ need fp16)."""
    if dtype != "auto":
        return dtype
    if method in ("gptq", "awq"):
        return "float16"
    return str(config.get("torch_dtype") or "bfloat16")


def quant_method(config: dict[str, Any], quantization: str | None) -> str | None:
    """The checkpoint's method, checked against `--quantization` the way vLLM checks it.

    Raises:
        UserError: `--quantization` names another method than the checkpoint's, or one
            that needs a quantised checkpoint for an unquantised one.
    """
    qc = config.get("quantization_config")
    stored = None
    if isinstance(qc, dict) and qc.get("quant_method"):
        stored = str(qc["quant_method"]).lower()
        stored = METHOD_ALIASES.get(stored, stored)
    asked = METHOD_ALIASES.get(quantization, quantization) if quantization else None
    if asked and stored and asked != stored:
        raise UserError(f"--quantization {quantization} does not match the checkpoint, "
                        f"which is quantised with {stored}")
    if asked and not stored and asked not in ONLINE_METHODS:
        raise UserError(f"--quantization {quantization} needs a checkpoint quantised with it; "
                        f"an unquantised one can be quantised on load with: "
                        f"{', '.join(ONLINE_METHODS)}")
    return stored or asked


def _moe_layer(config: dict[str, Any], il: int) -> bool:
    experts = config.get("num_experts") or config.get("num_local_experts") or config.get(
        "n_routed_experts")
    if not experts:
        return False
    if il < int(config.get("first_k_dense_replace") or 0):
        return False
    if il in (config.get("mlp_only_layers") or []):
        return False
    step = int(config.get("decoder_sparse_step") or 1)
    return (il + 1) % step == 0


def linear_modules(config: dict[str, Any]) -> Iterator[Linear]:
    """Every linear module of the decoder, named as Hugging Face checkpoints name them."""
    h = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    kv = int(config.get("num_key_value_heads") or heads)
    hd = int(config.get("head_dim") or h // heads)
    qkv_bias = bool(config.get("attention_bias")) or str(config.get("model_type", "")) in (
        "qwen2", "qwen2_moe")
    experts = int(config.get("num_experts") or config.get("num_local_experts")
                  or config.get("n_routed_experts") or 0)
    for il in range(int(config["num_hidden_layers"])):
        p = f"model.layers.{il}."
        yield Linear(p + "self_attn.q_proj", heads * hd, h, qkv_bias)
        yield Linear(p + "self_attn.k_proj", kv * hd, h, qkv_bias)
        yield Linear(p + "self_attn.v_proj", kv * hd, h, qkv_bias)
        yield Linear(p + "self_attn.o_proj", h, heads * hd)
        if _moe_layer(config, il):
            ff = int(config.get("moe_intermediate_size") or config["intermediate_size"])
            yield Linear(p + "mlp.gate", experts, h, quantisable=False)  # the router
            for e in range(experts):
                yield from _mlp(f"{p}mlp.experts.{e}.", h, ff)
            shared = int(config.get("shared_expert_intermediate_size") or 0)
            if shared:
                yield from _mlp(p + "mlp.shared_expert.", h, shared)
                yield Linear(p + "mlp.shared_expert_gate", 1, h, quantisable=False)
            n_shared = int(config.get("n_shared_experts") or 0)
            if n_shared:
                yield from _mlp(p + "mlp.shared_experts.", h, n_shared * ff)
        else:
            yield from _mlp(p + "mlp.", h, int(config["intermediate_size"]))
    if not config.get("tie_word_embeddings"):
        yield Linear("lm_head", int(config["vocab_size"]), h)


def _mlp(prefix: str, h: int, ff: int) -> Iterator[Linear]:
    yield Linear(prefix + "gate_proj", ff, h)
    yield Linear(prefix + "up_proj", ff, h)
    yield Linear(prefix + "down_proj", h, ff)


def other_elements(config: dict[str, Any]) -> int:
    """Float values outside the linear modules: the token embeddings and the norms (Qwen3
    adds a q_norm and a k_norm of one head each per layer)."""
    h = int(config["hidden_size"])
    layers = int(config["num_hidden_layers"])
    per_layer = 2 * h
    if str(config.get("model_type", "")).startswith("qwen3"):
        per_layer += 2 * int(config.get("head_dim") or h // int(config["num_attention_heads"]))
    return int(config["vocab_size"]) * h + layers * per_layer + h


def _matches(name: str, patterns: list[str]) -> bool:
    """A module whose name holds a pattern, or that an `re:` regex matches."""
    for pat in patterns:
        if pat.startswith("re:"):
            if re.match(pat[3:], name):
                return True
        elif pat in name:  # vLLM's own test for modules_to_not_convert and ignored layers
            return True
    return False


def _groups(k: int, group_size: int) -> int:
    return 1 if group_size <= 0 else math.ceil(k / group_size)


def _gptq(lin: Linear, qc: dict[str, Any], fb: int) -> int:
    bits = int(qc.get("bits", 4))
    n, k = lin.out_features, lin.in_features
    g = _groups(k, int(qc.get("group_size", 128)))
    # qweight [K*b/32, N], qzeros [G, N*b/32] (both int32), scales [G, N], g_idx [K] int32
    return k * bits // 32 * n * 4 + g * (n * bits // 32) * 4 + g * n * fb + k * 4


def _awq(lin: Linear, qc: dict[str, Any], fb: int) -> int:
    bits = int(qc.get("bits") or qc.get("w_bit") or 4)
    n, k = lin.out_features, lin.in_features
    g = _groups(k, int(qc.get("group_size") or qc.get("q_group_size") or 128))
    # qweight [K, N*b/32] and qzeros [G, N*b/32] int32, scales [G, N]
    return k * (n * bits // 32) * 4 + g * (n * bits // 32) * 4 + g * n * fb


def _fp8(lin: Linear, qc: dict[str, Any], _fb: int) -> int:
    n, k = lin.out_features, lin.in_features
    block = qc.get("weight_block_size")
    scales = math.ceil(n / int(block[0])) * math.ceil(k / int(block[1])) if block else 1
    static_input = str(qc.get("activation_scheme", "dynamic")) == "static"
    return n * k + scales * 4 + (4 if static_input else 0)


def _bnb(lin: Linear, qc: dict[str, Any], _fb: int) -> int:
    n, k = lin.out_features, lin.in_features
    if qc.get("load_in_8bit"):
        return n * k + n * 4 + 1  # int8 weight, SCB fp32 per row, weight_format
    values = n * k
    blocks = math.ceil(values / 64)
    if qc.get("bnb_4bit_use_double_quant"):
        # absmax quantised to uint8 per block, its own fp32 absmax per 256 blocks + code
        absmax = blocks + math.ceil(blocks / 256) * 4 + 256 * 4
    else:
        absmax = blocks * 4
    return values // 2 + absmax + 16 * 4  # packed 4-bit pairs, absmax, quant_map


def _compressed(lin: Linear, scheme: dict[str, Any], fmt: str, fb: int) -> int:
    w = scheme.get("weights") or {}
    bits = int(w.get("num_bits", 8))
    n, k = lin.out_features, lin.in_features
    strategy = str(w.get("strategy", "tensor"))
    if strategy == "channel":
        scales = n
    elif strategy == "group":
        scales = n * _groups(k, int(w.get("group_size") or 128))
    elif strategy == "block":
        bn, bk = (int(x) for x in w.get("block_structure") or (128, 128))
        scales = math.ceil(n / bn) * math.ceil(k / bk)
    else:
        scales = 1
    acts = scheme.get("input_activations") or {}
    static_input = bool(acts) and not acts.get("dynamic", False)
    if fmt == "nvfp4-pack-quantized":
        # weight_packed u8 [N, K/2], weight_scale fp8 [N, K/16], two fp32 global scales
        return n * k // 2 + n * math.ceil(k / 16) + 4 + 4
    if fmt == "pack-quantized":
        total = n * math.ceil(k * bits / 32) * 4 + scales * fb + 2 * 8  # + weight_shape
        if not w.get("symmetric", True):
            total += math.ceil(n * bits / 32) * 4 * (scales // n if n else 0)
        return total
    if fmt in ("float-quantized", "int-quantized", "naive-quantized"):
        return n * k * bits // 8 + scales * fb + (fb if static_input else 0)
    raise UserError(f"compressed-tensors format {fmt!r} is not one the planner can size")


def count_weights(config: dict[str, Any], dtype: str = "auto",
                  quantization: str | None = None) -> WeightCount:
    """All weight bytes of the checkpoint vLLM would load, from config.json alone.

    Raises:
        UserError: a quantisation the planner cannot size or that contradicts the checkpoint.
    """
    method = quant_method(config, quantization)
    qc = config.get("quantization_config")
    qc = dict(qc) if isinstance(qc, dict) and qc.get("quant_method") else {}
    dt = model_dtype(config, dtype, method)
    fb = FLOAT_BYTES.get(dt)
    if fb is None:
        raise UserError(f"--dtype {dt} is not one vLLM loads weights in")
    if method == "bitsandbytes" and not qc:
        qc = {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4"}  # vLLM's in-flight default
    skip = [str(m) for m in (qc.get("modules_to_not_convert") or qc.get("ignored_layers")
                             or qc.get("llm_int8_skip_modules") or qc.get("ignore") or [])]
    skip += ["re:" + str(m)[2:] for m in (qc.get("dynamic") or {}) if str(m).startswith("-:")]
    lm_head_quantised = method == "gptq" and bool(qc.get("lm_head"))
    groups = [g for g in (qc.get("config_groups") or {}).values() if isinstance(g, dict)]
    fmt = str(qc.get("format") or "float-quantized")

    total = other_elements(config) * fb
    kv_proj = 0
    for lin in linear_modules(config):
        quantise = (method is not None and lin.quantisable and not _matches(lin.name, skip)
                    and (lin.name != "lm_head" or lm_head_quantised))
        size = lin.out_features * lin.in_features * fb
        if quantise and method == "compressed-tensors":
            group = next((g for g in groups if _matches(lin.name, [
                "re:.*" if t == "Linear" else str(t) for t in g.get("targets") or []])), None)
            if group is not None:
                size = _compressed(lin, group, str(group.get("format") or fmt), fb)
        elif quantise:
            layout = {"gptq": _gptq, "awq": _awq, "fp8": _fp8, "bitsandbytes": _bnb}.get(
                str(method))
            if layout is None:
                raise UserError(f"quantisation {method!r} is not one the planner can size; "
                                "put the safetensors files beside config.json")
            size = layout(lin, qc, fb)
        size += lin.out_features * fb if lin.bias else 0
        total += size
        if lin.name.endswith(("k_proj", "v_proj")):
            kv_proj += size
    label = f"config.json ({method or dt})"
    return WeightCount(total=total, kv_proj=kv_proj, source=label)
