"""Reads safetensors headers (names, dtypes, shapes, offsets) without touching tensor data.

The format is an 8-byte little-endian header length, a JSON header, then the data. Only
the header is read, so a 10 GB shard costs one small read. Every malformed header raises
`SafetensorsError` with the reason; a file whose data is cut off is read fine and marked
`complete=False` (a download in progress), since the header alone says everything.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 100 * 1024 * 1024
"""The safetensors library's own limit on the JSON header."""

DTYPE_BITS = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "F64": 64,
    "I64": 64,
    "U64": 64,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
}


class SafetensorsError(Exception):
    """A safetensors file whose header cannot be read; `str()` says why."""


@dataclass(frozen=True)
class SafetensorsTensor:
    """One tensor of the header; `shape` is PyTorch's order (out_features first)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def elements(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count

    @property
    def nbytes(self) -> int:
        return self.end - self.begin


@dataclass(frozen=True)
class SafetensorsHeader:
    path: Path
    tensors: tuple[SafetensorsTensor, ...]
    metadata: Mapping[str, str]
    header_size: int
    file_size: int

    @property
    def data_end(self) -> int:
        return 8 + self.header_size + max((t.end for t in self.tensors), default=0)

    @property
    def complete(self) -> bool:
        return self.data_end <= self.file_size


def _tensor(name: str, info: Any) -> SafetensorsTensor:
    if not isinstance(info, dict):
        raise SafetensorsError(f"tensor {name!r}: entry is not an object")
    dtype = info.get("dtype")
    shape = info.get("shape")
    offsets = info.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise SafetensorsError(f"tensor {name!r}: unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise SafetensorsError(f"tensor {name!r}: invalid shape {shape!r}")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        or not 0 <= offsets[0] <= offsets[1]
    ):
        raise SafetensorsError(f"tensor {name!r}: invalid data_offsets {offsets!r}")
    tensor = SafetensorsTensor(name, dtype, tuple(shape), offsets[0], offsets[1])
    expected = -(-tensor.elements * DTYPE_BITS[dtype] // 8)
    if tensor.nbytes != expected:
        raise SafetensorsError(
            f"tensor {name!r}: {tensor.nbytes} bytes of data for shape {list(shape)} "
            f"of {dtype}, which needs {expected}"
        )
    return tensor


def read_safetensors_header(path: Path) -> SafetensorsHeader:
    """Read the header of one safetensors file.

    Raises:
        SafetensorsError: the header is malformed (the message says how).
        OSError: the file cannot be opened (missing, permission denied, a broken link).
    """
    path = Path(path)
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise SafetensorsError(
                f"truncated: {size} bytes, shorter than the 8-byte header length"
            )
        header_size = int.from_bytes(prefix, "little")
        if header_size > MAX_HEADER_BYTES:
            raise SafetensorsError(
                f"header length {header_size} exceeds the {MAX_HEADER_BYTES}-byte limit"
            )
        if 8 + header_size > size:
            raise SafetensorsError(
                f"header of {header_size} bytes is longer than the file ({size} bytes)"
            )
        raw = handle.read(header_size)
    if len(raw) < header_size:
        raise SafetensorsError("truncated: the file shrank while its header was read")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SafetensorsError(f"header is not valid UTF-8 (byte {exc.start})") from None
    try:
        header = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise SafetensorsError(f"header is not valid JSON: {exc}") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"header is a JSON {type(header).__name__}, not an object")
    metadata_raw = header.pop("__metadata__", None) or {}
    if not isinstance(metadata_raw, dict) or not all(
        isinstance(v, str) for v in metadata_raw.values()
    ):
        raise SafetensorsError("__metadata__ is not a mapping of strings")
    tensors = tuple(_tensor(name, info) for name, info in header.items())
    return SafetensorsHeader(
        path=path,
        tensors=tensors,
        metadata=MappingProxyType(dict(metadata_raw)),
        header_size=header_size,
        file_size=size,
    )
