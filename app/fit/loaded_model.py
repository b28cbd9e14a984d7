"""A model as the Fit workflow reads it: a GGUF header for llama.cpp, or a Hugging Face folder.

Reading touches the disk (the header and tensor table, or config.json), so callers with a
screen run `read_model` on a worker thread; the CLI calls it directly.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from app.errors import UserError
from app.fit.explainer import Setting, explain
from app.fit.model_info import ModelInfo, model_info
from app.library.gguf import GgufError, GgufHeader, read_gguf_header

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    """What the planners need of one model: its GGUF header (None for a Hugging Face folder,
    which only vLLM serves), its hyper-parameters and settings, and a line describing it."""

    path: Path
    header: GgufHeader | None = None
    info: ModelInfo | None = None
    settings: list[Setting] = field(default_factory=list)
    description: str = ""


def read_gguf(path: Path) -> GgufHeader:
    """The header and tensor table of a GGUF file (never its tensor data).

    Raises:
        UserError: the file cannot be read or is not GGUF.
    """
    try:
        return read_gguf_header(path)
    except (GgufError, OSError) as exc:
        raise UserError(f"{path.name} is not a readable GGUF model ({exc})") from None


def read_model(path: Path) -> LoadedModel:
    """Read `path`: a GGUF file, or a Hugging Face folder (its config.json).

    Raises:
        UserError: the path is missing or not a model the planners can read.
    """
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    if path.is_dir():
        return _read_folder(path)
    header = read_gguf(path)
    info = model_info(header)
    return LoadedModel(path, header, info, explain(info), _describe(header, info))


def _read_folder(path: Path) -> LoadedModel:
    cfg = path / "config.json"
    if not cfg.is_file():
        raise UserError(f"{path} is a folder without config.json: not a Hugging Face model")
    try:
        config = json.loads(cfg.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{cfg}: unreadable ({exc})") from None
    if not isinstance(config, dict):
        raise UserError(f"{cfg}: not a model configuration (a JSON object is expected)")
    arch = ", ".join(config.get("architectures") or []) or config.get("model_type", "?")
    layers = config.get("num_hidden_layers", "?")
    return LoadedModel(path, description=f"{path.name} · {arch} · {layers} layers")


def _describe(header: GgufHeader, info: ModelInfo) -> str:
    """One line on the model: its name, shape and, where it matters, that it is incomplete."""
    name = header.get("general.name")
    parts = [str(name) if name else header.path.name, info.arch, f"{info.n_layer} layers"]
    if info.is_moe:
        parts.append(f"{info.n_expert} experts, {info.n_expert_used} per token")
    if info.n_ctx_train:
        parts.append(f"trained context {info.n_ctx_train:,}")
    parts.append(f"{header.tensor_data_bytes / 2**30:,.1f} GiB of weights")
    text = " · ".join(parts)
    if not header.complete:
        text += " · header only: the file holds no tensor data"
    return f"{text}\n{header.path}"
