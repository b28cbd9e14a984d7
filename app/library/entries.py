"""What the library shows: `Model` and `Adapter` entries, and their JSON form.

An entry is a plain frozen record built from a file's header; it never holds tensor data.
A file that could not be read is still an entry, with `error` saying why, so a scan lists
bad files beside good ones. `linear_shapes` (not part of the JSON) keeps the in/out
dimensions of each layer's linear weights, which decides adapter compatibility.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar, Literal

Format = Literal["gguf", "safetensors", "peft", "gguf-lora"]
Source = Literal["folder", "hf-cache", "ollama", "lmstudio"]

LinearShapes = Mapping[str, tuple[int, int]]
"""`"<layer>.<module>"` (e.g. `"3.q_proj"`) to `(in_features, out_features)`."""

JSON_KEYS = (
    "path",
    "kind",
    "format",
    "source",
    "name",
    "architecture",
    "layers",
    "hidden_size",
    "heads",
    "kv_heads",
    "head_dim",
    "experts",
    "experts_used",
    "context_length",
    "rope_scaling",
    "sliding_window",
    "params_total",
    "params_active",
    "quantization",
    "size_bytes",
    "vocab_size",
    "chat_template",
    "thinking_switch",
    "complete",
    "error",
)
"""Keys every entry's JSON carries (null when unknown), adapters included."""

ADAPTER_JSON_KEYS = ("rank", "alpha", "target_modules", "dtype", "base_model")


@dataclass(frozen=True, kw_only=True)
class Entry:
    """Fields shared by models and adapters."""

    kind: ClassVar[str] = "entry"

    path: Path
    format: Format
    source: Source = "folder"
    name: str = ""
    size_bytes: int | None = None
    complete: bool = True
    """False while a file is still being written (data or a shard missing)."""
    error: str | None = None
    architecture: str | None = None
    layers: int | None = None
    hidden_size: int | None = None
    linear_shapes: LinearShapes = field(default_factory=dict, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        """The entry as JSON-ready values: every key of `JSON_KEYS`, null when unknown."""
        out: dict[str, Any] = dict.fromkeys(JSON_KEYS)
        for spec in fields(self):
            if spec.name == "linear_shapes":
                continue
            value = getattr(self, spec.name)
            out[spec.name] = str(value) if isinstance(value, Path) else value
        out["kind"] = self.kind
        if not isinstance(self, Model):
            out["chat_template"] = None
            out["thinking_switch"] = None
        return out

    def with_source(self, source: Source, name: str | None = None) -> Entry:
        return replace(self, source=source, name=self.name if name is None else name)


@dataclass(frozen=True, kw_only=True)
class Model(Entry):
    """A model: everything the Library page and the fit planner need from its header."""

    kind: ClassVar[str] = "model"

    heads: int | None = None
    kv_heads: int | None = None
    """Largest per-layer KV head count (some models vary it per layer)."""
    head_dim: int | None = None
    experts: int | None = None
    experts_used: int | None = None
    context_length: int | None = None
    rope_scaling: dict[str, Any] | None = None
    """`{"type", "factor", "original_context"}` or None when the model uses none."""
    sliding_window: int | None = None
    params_total: int | None = None
    params_active: int | None = None
    quantization: dict[str, Any] | None = None
    """`{"method", "bits", "file_type", "tensor_types": {type: {"tensors", "bytes"}}}`."""
    vocab_size: int | None = None
    chat_template: bool = False
    thinking_switch: bool = False
    """Whether the chat template reads `enable_thinking` (a think / no-think switch)."""


@dataclass(frozen=True, kw_only=True)
class Adapter(Entry):
    """A LoRA adapter; `layers` and `hidden_size` are read from its matrices' shapes."""

    kind: ClassVar[str] = "adapter"

    rank: int | None = None
    alpha: float | None = None
    target_modules: tuple[str, ...] = ()
    dtype: str | None = None
    base_model: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        out["target_modules"] = list(self.target_modules)
        return out


def error_entry(path: Path, fmt: Format, reason: str, *, size: int | None = None) -> Entry:
    """A bad file as an entry: it shows in the list with its reason."""
    cls = Adapter if fmt in ("peft", "gguf-lora") else Model
    return cls(path=path, format=fmt, name=path.name, size_bytes=size, error=reason)


def entry_from_json(data: Mapping[str, Any]) -> Entry:
    """Rebuild an entry from `to_json()` plus its `linear_shapes` (the index's storage).

    Raises:
        KeyError, TypeError, ValueError: the record is not an entry's JSON.
    """
    cls: type[Entry] = Adapter if data["kind"] == "adapter" else Model
    names = {spec.name for spec in fields(cls)}
    values: dict[str, Any] = {k: v for k, v in data.items() if k in names}
    values["path"] = Path(data["path"])
    values["linear_shapes"] = {
        k: (int(v[0]), int(v[1])) for k, v in data.get("linear_shapes", {}).items()
    }
    if cls is Adapter:
        values["target_modules"] = tuple(values.get("target_modules") or ())
    else:
        values["chat_template"] = bool(values.get("chat_template"))
        values["thinking_switch"] = bool(values.get("thinking_switch"))
    return cls(**values)


def entry_to_record(entry: Entry) -> dict[str, Any]:
    """`to_json()` plus the linear shapes, for the index."""
    out = entry.to_json()
    out["linear_shapes"] = {k: list(v) for k, v in entry.linear_shapes.items()}
    return out
