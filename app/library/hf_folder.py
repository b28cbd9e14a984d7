"""Reads a Hugging Face model folder: config.json, the chat template, safetensors headers.

Parameters and per-projection shapes come from the safetensors headers (every shard of a
sharded model), so they are what the files hold, not what the config promises. Packed
quantised weights (GPTQ/AWQ int32, bitsandbytes uint8) are unpacked by arithmetic;
bitsandbytes flattens its weights, so their projection shapes come from the config.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from app.library.architectures import config_architecture
from app.library.entries import Model
from app.library.json_files import FolderError, folder_size, read_json_object, read_optional_json
from app.library.modules import torch_key
from app.library.safetensors import SafetensorsHeader, read_safetensors_header

log = logging.getLogger(__name__)

INDEX_FILE = "model.safetensors.index.json"
_AUX_SUFFIXES = (
    ".qzeros",
    ".scales",
    ".g_idx",
    ".absmax",
    ".quant_map",
    ".nested_absmax",
    ".nested_quant_map",
    "_scale",
    "_scale_inv",
    ".input_scale",
)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _first(config: dict[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = _int(config.get(key))
        if value is not None:
            return value
    return None


def _rope_scaling(config: dict[str, Any]) -> dict[str, Any] | None:
    raw = config.get("rope_scaling")
    if not isinstance(raw, dict):
        return None
    kind = raw.get("rope_type", raw.get("type"))
    factor = raw.get("factor")
    if kind == "default" and factor in (None, 1, 1.0):
        return None
    return {
        "type": kind,
        "factor": float(factor) if isinstance(factor, int | float) else None,
        "original_context": _int(raw.get("original_max_position_embeddings")),
    }


def _quantization(config: dict[str, Any]) -> dict[str, Any]:
    raw = config.get("quantization_config")
    if not isinstance(raw, dict):
        return {"method": None, "bits": None}
    method = raw.get("quant_method")
    bits = _int(raw.get("bits")) or _int(raw.get("w_bit"))
    if method == "bitsandbytes":
        bits = 4 if raw.get("load_in_4bit") else 8 if raw.get("load_in_8bit") else bits
    elif method == "fp8":
        bits = 8
    out: dict[str, Any] = {"method": method, "bits": bits}
    for key in ("group_size", "q_group_size", "bnb_4bit_quant_type", "fmt", "version"):
        if key in raw and isinstance(raw[key], str | int | float):
            out[key] = raw[key]
    return out


def chat_templates(folder: Path, tokenizer_config: dict[str, Any] | None) -> list[str]:
    """Every chat template the folder ships (tokenizer_config.json or chat_template.*).

    Raises:
        FolderError: chat_template.json is malformed.
        OSError: a template file exists but cannot be read.
    """
    found: list[str] = []
    raw = (tokenizer_config or {}).get("chat_template")
    if isinstance(raw, str):
        found.append(raw)
    elif isinstance(raw, list):
        found += [
            t["template"] for t in raw if isinstance(t, dict) and isinstance(t.get("template"), str)
        ]
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        found.append(jinja.read_text(encoding="utf-8", errors="replace"))
    as_json = read_optional_json(folder / "chat_template.json")
    if as_json and isinstance(as_json.get("chat_template"), str):
        found.append(as_json["chat_template"])
    return found


def safetensors_files(folder: Path) -> tuple[list[Path], list[str]]:
    """The weight files of a folder and the names of shards the index lists but lacks.

    Raises:
        FolderError: the index is malformed.
        OSError: the index cannot be read.
    """
    index = read_optional_json(folder / INDEX_FILE)
    if index is not None:
        weight_map = index.get("weight_map")
        if not isinstance(weight_map, dict) or not all(
            isinstance(v, str) for v in weight_map.values()
        ):
            raise FolderError(f"{INDEX_FILE}: no weight_map of tensor names to files")
        names = sorted(set(weight_map.values()))
        if any("/" in n or "\\" in n or n.startswith(".") for n in names):
            raise FolderError(f"{INDEX_FILE}: a shard name points outside the folder")
        present = [folder / n for n in names if (folder / n).is_file()]
        return present, [n for n in names if not (folder / n).is_file()]
    return sorted(p for p in folder.glob("*.safetensors") if p.is_file()), []


def _params(headers: list[SafetensorsHeader], quant: dict[str, Any]) -> tuple[int, int]:
    """(total parameters, parameters in routed experts), unpacking packed weights."""
    method, bits = quant.get("method"), quant.get("bits") or 4
    total = experts = 0
    for header in headers:
        for tensor in header.tensors:
            if tensor.name.endswith(_AUX_SUFFIXES):
                continue
            count = tensor.elements
            if tensor.name.endswith(".qweight") and method in ("gptq", "awq"):
                count *= 32 // bits
            elif method == "bitsandbytes" and tensor.dtype == "U8" and bits == 4:
                count *= 2
            total += count
            if ".experts." in tensor.name and "shared_expert" not in tensor.name:
                experts += count
    return total, experts


def _linear_shapes(
    headers: list[SafetensorsHeader], quant: dict[str, Any], config: dict[str, Any]
) -> dict[str, tuple[int, int]]:
    method, bits = quant.get("method"), quant.get("bits") or 4
    if method == "bitsandbytes":
        return _shapes_from_config(config)
    shapes: dict[str, tuple[int, int]] = {}
    for header in headers:
        for tensor in header.tensors:
            key = torch_key(tensor.name)
            if key is None or len(tensor.shape) != 2:
                continue
            rows, cols = tensor.shape
            if key[1] == "weight":
                shapes[key[0]] = (cols, rows)
            elif key[1] == "qweight" and method == "gptq":
                shapes[key[0]] = (rows * (32 // bits), cols)
            elif key[1] == "qweight" and method == "awq":
                shapes[key[0]] = (rows, cols * (32 // bits))
    return shapes


def _shapes_from_config(config: dict[str, Any]) -> dict[str, tuple[int, int]]:
    hidden = _int(config.get("hidden_size"))
    layers = _int(config.get("num_hidden_layers"))
    heads = _int(config.get("num_attention_heads"))
    ffn = _int(config.get("intermediate_size"))
    if not (hidden and layers and heads):
        return {}
    kv_heads = _int(config.get("num_key_value_heads")) or heads
    head_dim = _int(config.get("head_dim")) or hidden // heads
    per_layer = {
        "q_proj": (hidden, heads * head_dim),
        "k_proj": (hidden, kv_heads * head_dim),
        "v_proj": (hidden, kv_heads * head_dim),
        "o_proj": (heads * head_dim, hidden),
    }
    if ffn:
        per_layer |= {
            "gate_proj": (hidden, ffn),
            "up_proj": (hidden, ffn),
            "down_proj": (ffn, hidden),
        }
    return {f"{i}.{m}": dims for i in range(layers) for m, dims in per_layer.items()}


def _text_config(config: dict[str, Any]) -> dict[str, Any]:
    """Multimodal configs (Gemma 3, Llama 4) keep the language model in text_config."""
    text = config.get("text_config")
    if isinstance(text, dict):
        return {**config, **text}
    return config


def read_hf_folder(folder: Path) -> Model:
    """Read a Hugging Face model folder (config.json plus safetensors weights).

    Raises:
        FolderError: config.json or an index is malformed, or there are no weights.
        SafetensorsError: a weight file's header is malformed.
        OSError: a file cannot be read (permission denied, a broken link).
    """
    config = _text_config(read_json_object(folder / "config.json"))
    read_optional_json(folder / "generation_config.json")  # a broken one breaks engines too
    tokenizer_config = read_optional_json(folder / "tokenizer_config.json")
    templates = chat_templates(folder, tokenizer_config)
    files, missing = safetensors_files(folder)
    if not files and not missing:
        raise FolderError("no *.safetensors weights next to config.json")
    headers = [read_safetensors_header(path) for path in files]
    quant = _quantization(config)
    types: dict[str, dict[str, int]] = {}
    for header in headers:
        for tensor in header.tensors:
            row = types.setdefault(tensor.dtype, {"tensors": 0, "bytes": 0})
            row["tensors"] += 1
            row["bytes"] += tensor.nbytes
    quant["file_type"] = None
    quant["tensor_types"] = dict(sorted(types.items(), key=lambda item: -item[1]["bytes"]))
    total, expert_params = _params(headers, quant)
    experts = _first(config, "num_experts", "num_local_experts", "n_routed_experts")
    experts_used = _first(config, "num_experts_per_tok", "moe_topk")
    active = total
    if experts and experts_used and expert_params:
        active = total - expert_params + expert_params * experts_used // experts
    hidden = _int(config.get("hidden_size"))
    heads = _int(config.get("num_attention_heads"))
    sliding = _int(config.get("sliding_window"))
    if config.get("use_sliding_window") is False:
        sliding = None
    if missing:
        log.info("%s: shards not present yet: %s", folder, ", ".join(missing))
    return Model(
        path=folder,
        format="safetensors",
        name=folder.name,
        size_bytes=folder_size(folder),
        complete=not missing and all(h.complete for h in headers),
        architecture=config_architecture(config),
        layers=_int(config.get("num_hidden_layers")),
        hidden_size=hidden,
        linear_shapes=_linear_shapes(headers, quant, config),
        heads=heads,
        kv_heads=_int(config.get("num_key_value_heads")) or heads,
        head_dim=_int(config.get("head_dim")) or (hidden // heads if hidden and heads else None),
        experts=experts,
        experts_used=experts_used,
        context_length=_int(config.get("max_position_embeddings")),
        rope_scaling=_rope_scaling(config),
        sliding_window=sliding,
        params_total=total or None,
        params_active=active or None,
        quantization=quant,
        vocab_size=_int(config.get("vocab_size")),
        chat_template=bool(templates),
        thinking_switch=any("enable_thinking" in t for t in templates),
    )


def is_hf_folder(folder: Path) -> bool:
    """A folder holding config.json and safetensors weights (or their index)."""
    if not (folder / "config.json").is_file():
        return False
    return (folder / INDEX_FILE).exists() or any(folder.glob("*.safetensors"))
