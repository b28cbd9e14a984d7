"""One naming for the linear layers of every format, so shapes can be compared across them.

A key is `"<layer>.<module>"` with Hugging Face module names (`"3.q_proj"`), and its value
is `(in_features, out_features)`. GGUF names (`blk.3.attn_q.weight`, stored innermost
dimension first) and PyTorch names (`model.layers.3.self_attn.q_proj.weight`, stored
`[out, in]`) both map to it, as do LoRA matrices (PEFT `lora_A` is `[r, in]`, `lora_B`
`[out, r]`; GGUF `.lora_a` is `(in, r)`, `.lora_b` `(r, out)`). Expert tensors of MoE
models are left out: adapters target the dense projections.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

GGUF_TO_HF = {
    "attn_q": "q_proj",
    "attn_k": "k_proj",
    "attn_v": "v_proj",
    "attn_output": "o_proj",
    "attn_qkv": "qkv_proj",
    "ffn_gate": "gate_proj",
    "ffn_up": "up_proj",
    "ffn_down": "down_proj",
}
"""GGUF tensor names of the projections, and the Hugging Face module each comes from."""

_GGUF = re.compile(r"^blk\.(\d+)\.([a-z_]+)\.weight(?:\.lora_(a|b))?$")
_TORCH = re.compile(
    r"(?:^|\.)layers\.(\d+)\.(?:.*?\.)?([A-Za-z0-9_]+)\."
    r"(lora_A\.weight|lora_B\.weight|weight|qweight)$"
)

_INPUT_SIDE = ("q_proj", "k_proj", "v_proj", "gate_proj", "up_proj", "qkv_proj")
_OUTPUT_SIDE = ("o_proj", "down_proj")


def gguf_key(name: str) -> tuple[str, str | None] | None:
    """`("3.q_proj", None)` for `blk.3.attn_q.weight`, `("3.q_proj", "a")` for its LoRA A."""
    match = _GGUF.match(name)
    if match is None:
        return None
    layer, module, lora = match.groups()
    return f"{layer}.{GGUF_TO_HF.get(module, module)}", lora


def torch_key(name: str) -> tuple[str, str] | None:
    """`("3.q_proj", "weight")` for `model.layers.3.self_attn.q_proj.weight`.

    The second item is what the tensor is: `weight`, `qweight` (GPTQ/AWQ packed), or the
    LoRA matrices `lora_A.weight` / `lora_B.weight`. Expert tensors give None.
    """
    if ".experts." in name:
        return None
    match = _TORCH.search(name)
    if match is None:
        return None
    layer, module, what = match.groups()
    return f"{layer}.{module}", what


def layer_count(shapes: Mapping[str, tuple[int, int]]) -> int | None:
    """Highest layer index named in `shapes`, plus one."""
    layers = [int(key.split(".", 1)[0]) for key in shapes]
    return max(layers) + 1 if layers else None


def hidden_from_shapes(shapes: Mapping[str, tuple[int, int]]) -> int | None:
    """The model width the shapes imply: the input of q/k/v/gate/up, else o/down's output."""
    for key, (in_features, out_features) in sorted(shapes.items()):
        module = key.split(".", 1)[1]
        if module in _INPUT_SIDE:
            return in_features
        if module in _OUTPUT_SIDE:
            return out_features
    return None
