"""Does a LoRA adapter fit a model? Decided from the architecture and the tensor shapes,
never from names.

A base model's name in adapter_config.json is often a local path or a sibling
fine-tune; what matters to the engine is that the adapter was made for the model's
architecture (llama.cpp refuses a GGUF LoRA of another `general.architecture` even when
every matrix lines up: qwen3 and qwen3moe share their attention shapes) and that every
A/B matrix lines up with the model's weights. So the check compares the architectures
where both are known (see app.library.architectures), the hidden size, the layer count
and then each targeted projection's `(in, out)` against the model's own tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.library.architectures import same_architecture
from app.library.entries import Adapter, Entry

_MAX_LISTED = 3


@dataclass(frozen=True)
class Compatibility:
    """`fits` is True, False, or None when it cannot be decided; `reason` says why."""

    fits: bool | None
    reason: str

    def to_json(self) -> dict[str, object]:
        return {"fits": self.fits, "reason": self.reason}


def _arrow(dims: tuple[int, int]) -> str:
    return f"{dims[0]}→{dims[1]}"


def check_compatibility(adapter: Entry, model: Entry) -> Compatibility:
    """Whether `adapter` can be applied to `model`, with the first reason it cannot."""
    verdict = (_readable(adapter, model) or _architecture(adapter, model)
               or _dimensions(adapter, model))
    if verdict is not None:
        return verdict
    if not model.linear_shapes:
        if adapter.hidden_size and model.hidden_size:
            return Compatibility(True, "hidden size and layer count match")
        return Compatibility(None, "the model's weight shapes are unknown")
    return _projections(adapter, model)


def _readable(adapter: Entry, model: Entry) -> Compatibility | None:
    if not isinstance(adapter, Adapter):
        return Compatibility(None, f"{adapter.name or adapter.path} is not an adapter")
    if isinstance(model, Adapter):
        return Compatibility(None, f"{model.name or model.path} is an adapter, not a model")
    for entry, role in ((adapter, "adapter"), (model, "model")):
        if entry.error:
            return Compatibility(None, f"the {role} could not be read: {entry.error}")
    return None


def _architecture(adapter: Entry, model: Entry) -> Compatibility | None:
    """An adapter for another architecture (when both are known) never fits."""
    if adapter.architecture and model.architecture and not same_architecture(
            adapter.architecture, model.architecture):
        return Compatibility(False, f"adapter for {adapter.architecture}, "
                                    f"model is {model.architecture}")
    return None


def _dimensions(adapter: Entry, model: Entry) -> Compatibility | None:
    if adapter.hidden_size and model.hidden_size and adapter.hidden_size != model.hidden_size:
        return Compatibility(False, f"hidden size {adapter.hidden_size} ≠ {model.hidden_size}")
    if adapter.layers and model.layers and adapter.layers > model.layers:
        return Compatibility(
            False,
            f"the adapter targets layer {adapter.layers - 1}; the model has {model.layers} layers",
        )
    if not adapter.linear_shapes:
        return Compatibility(None, "the adapter's matrix shapes are unknown")
    return None


def _projections(adapter: Entry, model: Entry) -> Compatibility:
    missing: list[str] = []
    for key, dims in sorted(adapter.linear_shapes.items(), key=_layer_order):
        layer, module = key.split(".", 1)
        base = model.linear_shapes.get(key)
        if base is None:
            missing.append(f"{module} in layer {layer}")
        elif base != dims:
            return Compatibility(
                False,
                f"layer {layer} {module}: the adapter expects {_arrow(dims)}, "
                f"the model has {_arrow(base)}",
            )
    if missing:
        more = f" and {len(missing) - _MAX_LISTED} more" if len(missing) > _MAX_LISTED else ""
        return Compatibility(False, f"the model has no {', '.join(missing[:_MAX_LISTED])}{more}")
    count = len(adapter.linear_shapes)
    return Compatibility(True, f"all {count} adapted projections match the model's shapes")


def _layer_order(item: tuple[str, tuple[int, int]]) -> tuple[int, str]:
    layer, module = item[0].split(".", 1)
    return int(layer), module
