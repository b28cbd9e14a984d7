"""Load one library entry from a path: the function the CLI, the index and the fit planner use.

`load_entry` never raises for a bad file: the entry comes back with `error` set, so a
scan can list it. `load_model` is for callers that need a usable model (the fit planner)
and raises `LibraryError` with the reason instead.
"""

from __future__ import annotations

import errno
import logging
from pathlib import Path

from app.errors import UserError
from app.library.entries import Entry, Format, Model, error_entry
from app.library.gguf import GGUF_MAGIC, GgufError
from app.library.gguf_entry import entry_from_gguf
from app.library.hf_folder import read_hf_folder
from app.library.json_files import FolderError
from app.library.peft import CONFIG_FILE, read_peft_folder
from app.library.safetensors import SafetensorsError

log = logging.getLogger(__name__)


class LibraryError(UserError):
    """A path that is not a usable model; the message says why."""


def _describe_os_error(path: Path, exc: OSError) -> str:
    if path.is_symlink() and not path.exists():
        return f"broken symbolic link (points to {path.readlink()})"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.ENOENT:
        return "file not found"
    if exc.errno == errno.EISDIR:
        return "is a folder, not a file"
    return exc.strerror or str(exc)


def guess_format(path: Path) -> Format | None:
    """What `path` looks like, from its name or first bytes; None if not a model at all."""
    if path.is_dir():
        if (path / CONFIG_FILE).is_file():
            return "peft"
        if (path / "config.json").is_file():
            return "safetensors"
        return None
    if path.suffix == ".gguf":
        return "gguf"
    try:
        with path.open("rb") as handle:
            return "gguf" if handle.read(4) == GGUF_MAGIC else None
    except OSError:
        return None


def load_entry(path: Path) -> Entry:
    """Read the model or adapter at `path` (a GGUF file, an HF folder, a PEFT folder).

    A bad file gives an entry whose `error` says why; this function does not raise for
    anything a file can contain.
    """
    path = Path(path)
    if path.is_symlink() and not path.exists():
        fmt: Format = "gguf" if path.suffix == ".gguf" else "safetensors"
        return error_entry(path, fmt, _describe_os_error(path, FileNotFoundError()))
    if path.is_file() and path.suffix == ".safetensors" and (path.parent / "config.json").is_file():
        path = path.parent  # a weight file stands for its model folder
    fmt_or_none = guess_format(path)
    if fmt_or_none is None:
        what = (
            "folder has no config.json or adapter_config.json"
            if path.is_dir()
            else "not a GGUF file"
        )
        return error_entry(path, "gguf", f"not a model: {what}", size=_size(path))
    fmt = fmt_or_none
    try:
        if fmt == "peft":
            return read_peft_folder(path)
        if fmt == "safetensors":
            return read_hf_folder(path)
        return entry_from_gguf(path)
    except (GgufError, SafetensorsError, FolderError) as exc:
        reason = str(exc)
    except OSError as exc:
        failed = Path(exc.filename) if isinstance(exc.filename, str) else path
        reason = _describe_os_error(failed, exc)
        if failed != path:
            reason = f"{failed.name}: {reason}"
    except (MemoryError, RecursionError) as exc:  # a file built to exhaust the reader
        reason = f"cannot be read ({type(exc).__name__})"
    log.info("unreadable %s: %s", path, reason)
    return error_entry(path, fmt, reason, size=_size(path))


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size if path.is_file() else None
    except OSError:
        return None


def load_model(path: Path) -> Model:
    """Read a model for planning; the fit planner's entry point.

    Raises:
        LibraryError: the path is missing, unreadable, malformed, or an adapter.
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise LibraryError(f"{path}: no such file or folder")
    entry = load_entry(path)
    if entry.error:
        raise LibraryError(f"{path}: {entry.error}")
    if not isinstance(entry, Model):
        raise LibraryError(f"{path}: is a LoRA adapter, not a model")
    return entry
