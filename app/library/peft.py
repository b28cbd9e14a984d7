"""Reads a PEFT LoRA folder: adapter_config.json and adapter_model.safetensors headers.

The architecture is the base model's, read from the base's config.json where the base is
on disk (a folder, or a repo id in the Hugging Face cache); PEFT does not record it.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

from app.library.architectures import base_architecture
from app.library.entries import Adapter
from app.library.json_files import FolderError, folder_size, read_json_object
from app.library.modules import hidden_from_shapes, layer_count, torch_key
from app.library.safetensors import read_safetensors_header

log = logging.getLogger(__name__)

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
PICKLE_FILE = "adapter_model.bin"


def _target_modules(config: dict[str, Any], found: set[str]) -> tuple[str, ...]:
    raw = config.get("target_modules")
    if isinstance(raw, list):
        return tuple(sorted(str(m) for m in raw))
    if isinstance(raw, str):  # a regular expression, or "all-linear"
        return tuple(sorted(found)) or (raw,)
    return tuple(sorted(found))


def read_peft_folder(folder: Path) -> Adapter:
    """Read a PEFT adapter folder.

    A folder with only `adapter_model.bin` (a PyTorch pickle, which Rigdeck never
    unpickles) is listed with its config values and unknown shapes.

    Raises:
        FolderError: adapter_config.json is malformed, not LoRA, or there are no weights.
        SafetensorsError: adapter_model.safetensors has a malformed header.
        OSError: a file cannot be read.
    """
    config = read_json_object(folder / CONFIG_FILE)
    peft_type = config.get("peft_type", "LORA")
    if not isinstance(peft_type, str) or peft_type.upper() != "LORA":
        raise FolderError(f"{CONFIG_FILE}: peft_type {peft_type!r} is not a LoRA adapter")
    weights = folder / WEIGHTS_FILE
    a_dims: dict[str, tuple[int, int]] = {}
    b_dims: dict[str, tuple[int, int]] = {}
    dtypes: Counter[str] = Counter()
    complete = True
    if weights.exists() or weights.is_symlink():
        header = read_safetensors_header(weights)
        complete = header.complete
        for tensor in header.tensors:
            key = torch_key(tensor.name)
            if key is None or len(tensor.shape) != 2 or not key[1].startswith("lora_"):
                continue
            dtypes[tensor.dtype] += 1
            rows, cols = tensor.shape
            # PEFT's lora_A is [r, in] and lora_B is [out, r].
            if key[1] == "lora_A.weight":
                a_dims[key[0]] = (cols, rows)
            else:
                b_dims[key[0]] = (cols, rows)
    elif not (folder / PICKLE_FILE).exists():
        raise FolderError(f"no {WEIGHTS_FILE} next to {CONFIG_FILE}")
    shapes = {key: (a[0], b_dims[key][1]) for key, a in a_dims.items() if key in b_dims}
    rank = config.get("r")
    alpha = config.get("lora_alpha")
    base = config.get("base_model_name_or_path")
    base = base if isinstance(base, str) and base else None
    return Adapter(
        path=folder,
        format="peft",
        name=folder.name,
        size_bytes=folder_size(folder),
        complete=complete,
        architecture=base_architecture(base, folder),
        layers=layer_count(shapes),
        hidden_size=hidden_from_shapes(shapes),
        linear_shapes=shapes,
        rank=rank if isinstance(rank, int) and not isinstance(rank, bool) else None,
        alpha=float(alpha)
        if isinstance(alpha, int | float) and not isinstance(alpha, bool)
        else None,
        target_modules=_target_modules(config, {k.split(".", 1)[1] for k in shapes}),
        dtype=dtypes.most_common(1)[0][0] if dtypes else None,
        base_model=base,
    )
