"""How an entry reads to a person: the labelled fields shared by `rigdeck show` and the UI."""

from __future__ import annotations

from typing import Any

from app.library.entries import Adapter, Entry, Model


def human_bytes(count: int | None) -> str:
    if count is None:
        return "?"
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover - the loop always returns


def human_count(count: int | None) -> str:
    """Parameters as people write them: 30.5B, 270M, 12K."""
    if count is None:
        return "?"
    for limit, suffix in ((10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "K")):
        if count >= limit:
            return f"{count / limit:.1f}{suffix}"
    return str(count)


def params_label(entry: Entry) -> str:
    """Parameters as `rigdeck scan` shows them: "32.8B" for a dense model, "30.5B total,
    3.3B active" for a mixture of experts (the weights one token passes through); "—" for
    an adapter."""
    if not isinstance(entry, Model):
        return "—"
    total = human_count(entry.params_total)
    if entry.params_active and entry.params_active != entry.params_total:
        return f"{total} total, {human_count(entry.params_active)} active"
    return total


def experts_label(entry: Entry) -> str:
    """Experts of a mixture-of-experts model, "128 experts, 8 active" (used per token);
    "—" for a dense model or an adapter."""
    if not isinstance(entry, Model) or not entry.experts:
        return "—"
    return f"{entry.experts} experts, {_value(entry.experts_used)} active"


def quant_label(entry: Entry) -> str:
    """Short quantisation label: the GGUF file type, a method and bits, or the main dtype."""
    if isinstance(entry, Adapter):
        return entry.dtype or "?"
    if not isinstance(entry, Model) or not entry.quantization:
        return "?"
    quant = entry.quantization
    if quant.get("file_type"):
        return str(quant["file_type"])
    if quant.get("method"):
        bits = f" {quant['bits']}-bit" if quant.get("bits") else ""
        return f"{str(quant['method']).upper()}{bits}"
    types = quant.get("tensor_types") or {}
    return str(next(iter(types), "?"))


def status(entry: Entry) -> str:
    if entry.error:
        return f"error: {entry.error}"
    return "ok" if entry.complete else "incomplete"


def _value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "—"
    return str(value)


def _rope(rope: dict[str, Any] | None) -> str:
    if not rope:
        return "none"
    original = (
        f", original context {rope['original_context']}" if rope.get("original_context") else ""
    )
    return f"{rope.get('type') or '?'} x{rope.get('factor') or '?'}{original}"


def _tensor_types(quant: dict[str, Any] | None) -> list[tuple[str, str]]:
    rows = []
    for name, row in ((quant or {}).get("tensor_types") or {}).items():
        rows.append((f"  {name}", f"{row['tensors']} tensors, {human_bytes(row['bytes'])}"))
    return rows


def display_fields(entry: Entry) -> list[tuple[str, str]]:
    """(label, text) rows describing `entry`, in reading order."""
    rows = [
        ("Name", entry.name or entry.path.name),
        ("Path", str(entry.path)),
        ("Kind", f"{entry.kind} ({entry.format})"),
        ("Source", entry.source),
        ("Status", status(entry)),
        ("Size on disk", human_bytes(entry.size_bytes)),
        ("Architecture", _value(entry.architecture)),
        ("Layers", _value(entry.layers)),
        ("Hidden size", _value(entry.hidden_size)),
    ]
    if isinstance(entry, Model):
        experts = "—"
        if entry.experts:
            experts = f"{entry.experts} ({_value(entry.experts_used)} used per token)"
        rows += [
            (
                "Parameters",
                f"{human_count(entry.params_total)} total, "
                f"{human_count(entry.params_active)} active",
            ),
            (
                "Heads",
                f"{_value(entry.heads)} (KV {_value(entry.kv_heads)}, "
                f"head dim {_value(entry.head_dim)})",
            ),
            ("Experts", experts),
            ("Trained context", _value(entry.context_length)),
            ("RoPE scaling", _rope(entry.rope_scaling)),
            ("Sliding window", _value(entry.sliding_window)),
            ("Vocabulary", _value(entry.vocab_size)),
            ("Quantisation", quant_label(entry)),
            *_tensor_types(entry.quantization),
            ("Chat template", _value(entry.chat_template)),
            ("Thinking switch", _value(entry.thinking_switch)),
        ]
    elif isinstance(entry, Adapter):
        rows += [
            ("Rank", _value(entry.rank)),
            ("Alpha", _value(entry.alpha)),
            ("Target modules", _value(entry.target_modules)),
            ("Dtype", _value(entry.dtype)),
            ("Base model", _value(entry.base_model)),
        ]
    return rows
