"""Reading the small JSON files of model folders, with a precise reason when one is bad."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MAX_JSON_BYTES = 64 * 1024 * 1024
"""Larger than any config or index (tokenizer.json is not read)."""


class FolderError(Exception):
    """A model or adapter folder whose files cannot be read; `str()` says which and why."""


def read_json_object(path: Path) -> dict[str, Any]:
    """Parse `path` as a JSON object.

    Raises:
        FolderError: too large, not UTF-8, not JSON, or not an object.
        OSError: it cannot be opened.
    """
    with path.open("rb") as handle:
        raw = handle.read(MAX_JSON_BYTES + 1)
    if len(raw) > MAX_JSON_BYTES:
        raise FolderError(f"{path.name}: larger than {MAX_JSON_BYTES} bytes")
    try:
        value = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise FolderError(f"{path.name}: not valid UTF-8 (byte {exc.start})") from None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise FolderError(f"{path.name}: invalid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise FolderError(f"{path.name}: a JSON {type(value).__name__}, not an object")
    return value


def read_optional_json(path: Path) -> dict[str, Any] | None:
    """Like `read_json_object`, but None when the file does not exist."""
    if not path.exists():
        return None
    return read_json_object(path)


def folder_size(folder: Path) -> int:
    """Bytes of the regular files directly in `folder`, following links (HF cache blobs)."""
    total = 0
    for child in folder.iterdir():
        try:
            if child.is_file():
                total += child.stat().st_size
        except OSError:
            continue
    return total
