"""Turns a GGUF header into a library entry: a `Model`, or an `Adapter` for a GGUF LoRA."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

from app.library.entries import Adapter, Entry, Model
from app.library.ggml_types import file_type_name
from app.library.gguf import GgufHeader, read_gguf_header
from app.library.modules import gguf_key, hidden_from_shapes, layer_count

log = logging.getLogger(__name__)


def _int(value: Any) -> int | None:
    """An int metadata value; a per-layer array gives its largest value."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return int(max(value))
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _rope_scaling(header: GgufHeader) -> dict[str, Any] | None:
    kind = header.arch_value("rope.scaling.type")
    factor = _number(header.arch_value("rope.scaling.factor"))
    original = _int(header.arch_value("rope.scaling.original_context_length"))
    if kind in (None, "none") and factor in (None, 1.0):
        return None
    return {"type": kind, "factor": factor, "original_context": original}


def _tensor_types(header: GgufHeader) -> dict[str, dict[str, int]]:
    summary: dict[str, dict[str, int]] = {}
    for tensor in header.tensors:
        row = summary.setdefault(tensor.type_name, {"tensors": 0, "bytes": 0})
        row["tensors"] += 1
        row["bytes"] += tensor.nbytes
    return dict(sorted(summary.items(), key=lambda item: -item[1]["bytes"]))


def _name(header: GgufHeader) -> str:
    name = header.get("general.name")
    return name if isinstance(name, str) and name else header.path.name


def model_from_gguf(header: GgufHeader) -> Model:
    """The model a GGUF header describes."""
    hidden = _int(header.arch_value("embedding_length"))
    heads = _int(header.arch_value("attention.head_count"))
    head_dim = _int(header.arch_value("attention.key_length"))
    if head_dim is None and hidden and heads:
        head_dim = hidden // heads
    experts = _int(header.arch_value("expert_count"))
    experts_used = _int(header.arch_value("expert_used_count"))
    total = sum(t.elements for t in header.tensors)
    expert_params = sum(t.elements for t in header.tensors if "_exps." in t.name)
    active = total
    if experts and experts_used and expert_params:
        active = total - expert_params + expert_params * experts_used // experts
    template = header.get("tokenizer.chat_template")
    shapes: dict[str, tuple[int, int]] = {}
    for tensor in header.tensors:
        key = gguf_key(tensor.name)
        if key is not None and key[1] is None and len(tensor.shape) == 2:
            shapes[key[0]] = (tensor.shape[0], tensor.shape[1])
    return Model(
        path=header.path,
        format="gguf",
        name=_name(header),
        size_bytes=header.file_size,
        complete=header.complete,
        architecture=header.architecture,
        layers=_int(header.arch_value("block_count")),
        hidden_size=hidden,
        linear_shapes=shapes,
        heads=heads,
        kv_heads=_int(header.arch_value("attention.head_count_kv")) or heads,
        head_dim=head_dim,
        experts=experts,
        experts_used=experts_used,
        context_length=_int(header.arch_value("context_length")),
        rope_scaling=_rope_scaling(header),
        sliding_window=_int(header.arch_value("attention.sliding_window")),
        params_total=total or None,
        params_active=active or None,
        quantization={
            "method": "gguf",
            "bits": None,
            "file_type": file_type_name(header.get("general.file_type")),
            "tensor_types": _tensor_types(header),
        },
        vocab_size=header.vocab_size,
        chat_template=isinstance(template, str) and bool(template),
        thinking_switch=isinstance(template, str) and "enable_thinking" in template,
    )


def _base_model(header: GgufHeader) -> str | None:
    name = header.get("general.base_model.0.name")
    org = header.get("general.base_model.0.organization")
    url = header.get("general.base_model.0.repo_url")
    if isinstance(name, str) and name:
        return f"{org}/{name}" if isinstance(org, str) and org else name
    return url if isinstance(url, str) and url else None


def adapter_from_gguf(header: GgufHeader) -> Adapter:
    """The LoRA adapter a GGUF header (general.type = adapter) describes."""
    a_dims: dict[str, tuple[int, int]] = {}
    b_dims: dict[str, tuple[int, int]] = {}
    types: Counter[str] = Counter()
    for tensor in header.tensors:
        key = gguf_key(tensor.name)
        if key is None or key[1] is None or len(tensor.shape) != 2:
            continue
        (a_dims if key[1] == "a" else b_dims)[key[0]] = (tensor.shape[0], tensor.shape[1])
        types[tensor.type_name] += 1
    # lora_a is (in, r) and lora_b is (r, out) in GGUF's innermost-first order.
    shapes = {key: (a[0], b_dims[key][1]) for key, a in a_dims.items() if key in b_dims}
    ranks = Counter(a[1] for a in a_dims.values())
    alpha = _number(header.get("adapter.lora.alpha"))
    return Adapter(
        path=header.path,
        format="gguf-lora",
        name=_name(header),
        size_bytes=header.file_size,
        complete=header.complete,
        architecture=header.architecture,
        layers=layer_count(shapes),
        hidden_size=hidden_from_shapes(shapes),
        linear_shapes=shapes,
        rank=ranks.most_common(1)[0][0] if ranks else None,
        alpha=alpha,
        target_modules=tuple(sorted({key.split(".", 1)[1] for key in shapes})),
        dtype=types.most_common(1)[0][0] if types else None,
        base_model=_base_model(header),
    )


def entry_from_gguf(path: Path) -> Entry:
    """Read a GGUF file (or split model) as a model or adapter entry.

    Raises:
        GgufError: the file is not a readable GGUF.
        OSError: it cannot be opened.
    """
    header = read_gguf_header(path)
    if header.get("general.type") == "adapter":
        return adapter_from_gguf(header)
    return model_from_gguf(header)
