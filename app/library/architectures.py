"""Architecture names across formats: GGUF's `general.architecture` and Hugging Face's
`model_type`, and where a PEFT adapter's base architecture is written down.

An adapter is trained for one architecture. llama.cpp refuses a LoRA whose
`general.architecture` differs from the model's (llama-adapter.cpp: "model arch and LoRA
arch mismatch"), even when every matrix has the right shape — qwen3 and qwen3moe share
their attention shapes. Comparing names needs one spelling: GGUF writes `qwen3moe` where
Hugging Face writes `qwen3_moe`, and convert_hf_to_gguf.py turns some model types into
another GGUF architecture (Mistral and Mixtral become `llama`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from app.library.hf_cache import repo_snapshot
from app.library.json_files import FolderError, read_json_object

log = logging.getLogger(__name__)

_SAME_IN_GGUF = {
    "mistral": "llama",
    "mixtral": "llama",
    "gemma3text": "gemma3",
    "deepseekv2": "deepseek2",
    "deepseekv3": "deepseek2",
    "cohere": "commandr",
}
"""Hugging Face model types (spelt as `canonical_architecture` does) that
convert_hf_to_gguf.py writes as another GGUF architecture."""

_CLASS_SUFFIX = re.compile(r"(ForCausalLM|ForConditionalGeneration|LMHeadModel|Model)$")


def canonical_architecture(name: str) -> str:
    """One spelling for `qwen3moe`, `qwen3_moe` and `Qwen3MoeForCausalLM`: `qwen3moe`."""
    bare = _CLASS_SUFFIX.sub("", name.strip()) or name.strip()
    key = re.sub(r"[^a-z0-9]", "", bare.lower())
    return _SAME_IN_GGUF.get(key, key)


def same_architecture(first: str, second: str) -> bool:
    return canonical_architecture(first) == canonical_architecture(second)


def config_architecture(config: Mapping[str, Any]) -> str | None:
    """The architecture a Hugging Face config.json names: the language model's
    `model_type` (multimodal configs keep it in `text_config`), else `architectures[0]`."""
    text = config.get("text_config")
    for source in (text if isinstance(text, dict) else {}, config):
        kind = source.get("model_type")
        if isinstance(kind, str) and kind:
            return kind
    archs = config.get("architectures")
    if isinstance(archs, list) and archs and isinstance(archs[0], str):
        return archs[0]
    return None


def base_config_file(base: str, adapter_folder: Path, hub: Path | None = None) -> Path | None:
    """The config.json of a PEFT adapter's `base_model_name_or_path`, where it is on disk.

    The base is a folder (absolute, or relative to the adapter) or a hub repo id found in
    the Hugging Face cache; None when it is neither (not downloaded, a typo).
    """
    path = Path(base).expanduser()
    candidates = [path if path.is_absolute() else adapter_folder / path]
    snapshot = repo_snapshot(base, hub)
    if snapshot is not None:
        candidates.append(snapshot)
    for folder in candidates:
        try:
            if (folder / "config.json").is_file():
                return folder / "config.json"
        except OSError:
            continue
    return None


def base_architecture(base: str | None, adapter_folder: Path,
                      hub: Path | None = None) -> str | None:
    """The architecture of a PEFT adapter's base model, read from the base's config.json;
    None when the base is not on disk or its config cannot be read (then only shapes tell).
    """
    if not base:
        return None
    found = base_config_file(base, adapter_folder, hub)
    if found is None:
        return None
    try:
        return config_architecture(read_json_object(found))
    except (FolderError, OSError) as exc:
        log.info("%s: the base's %s cannot be read: %s", adapter_folder, found, exc)
        return None
