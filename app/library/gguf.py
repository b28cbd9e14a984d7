"""A fast, defensive reader of GGUF headers: metadata and tensor table, never tensor data.

Why not `gguf.GGUFReader`: it maps the whole file and decodes every array element into
numpy objects (seconds for a 150k-token vocabulary) and it fails on header-only files,
which the fit planner is handed. This reader walks the header once with `struct`, through
a bounded read window, so a 30 GB model costs a few megabytes of reads.

What you get back:
- `GgufHeader.metadata` maps each key to a Python value (int, float, bool, str, or a list
  for arrays of up to `MAX_DECODED_ARRAY` items, which covers per-layer arrays such as
  `<arch>.attention.head_count_kv` and sliding-window patterns). A longer array (the
  vocabulary's tokens, scores, merges) is stored as an `ArrayInfo(item_type, count)`
  stand-in without decoding its elements: `len()` of it is the element count, so the
  vocabulary size stays known (`GgufHeader.vocab_size`).
- `GgufTensor.shape` is in GGUF's stored order (ggml `ne`, innermost dimension first),
  the same as `gguf.GGUFReader`'s `ReaderTensor.shape`: `token_embd.weight` of a model
  with hidden size 2048 and 151936 tokens is `(2048, 151936)`.
- A split model (`…-00001-of-00003.gguf`) read through any of its parts is one header:
  metadata from part 1, tensors the union of all parts, each tensor's `part` the index
  into `GgufHeader.parts` (whose `data_offset` its `offset` is relative to).

Every malformed input (truncation, wrong magic, an unknown version, absurd counts or
lengths, invalid UTF-8) raises `GgufError` with a precise reason; memory stays bounded by
the caps below whatever the file claims.
"""

from __future__ import annotations

import logging
import os
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, BinaryIO

from app.library.ggml_types import GGML_TYPES

log = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
GGML_MAX_DIMS = 4

MAX_DECODED_ARRAY = 4096
"""Arrays longer than this are kept as `ArrayInfo` instead of being decoded."""
MAX_STRING_BYTES = 16 * 1024 * 1024
"""The longest metadata string accepted (chat templates are tens of KiB)."""
MAX_KEY_BYTES = 4096
MAX_TENSOR_NAME_BYTES = 4096
MAX_DECODED_BYTES = 64 * 1024 * 1024
"""Budget of decoded metadata per file, so no file can make the reader hold gigabytes."""
MAX_NESTING = 8
_WINDOW = 1 << 20

# GGUF metadata value types.
T_UINT8, T_INT8, T_UINT16, T_INT16, T_UINT32, T_INT32, T_FLOAT32, T_BOOL = range(8)
T_STRING, T_ARRAY, T_UINT64, T_INT64, T_FLOAT64 = range(8, 13)

VALUE_TYPE_NAMES = {
    T_UINT8: "uint8",
    T_INT8: "int8",
    T_UINT16: "uint16",
    T_INT16: "int16",
    T_UINT32: "uint32",
    T_INT32: "int32",
    T_FLOAT32: "float32",
    T_BOOL: "bool",
    T_STRING: "string",
    T_ARRAY: "array",
    T_UINT64: "uint64",
    T_INT64: "int64",
    T_FLOAT64: "float64",
}
_SCALAR_FORMATS = {
    T_UINT8: "B",
    T_INT8: "b",
    T_UINT16: "H",
    T_INT16: "h",
    T_UINT32: "I",
    T_INT32: "i",
    T_FLOAT32: "f",
    T_BOOL: "?",
    T_UINT64: "Q",
    T_INT64: "q",
    T_FLOAT64: "d",
}
_SCALARS = {t: struct.Struct("<" + f) for t, f in _SCALAR_FORMATS.items()}
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_SPLIT_NAME = re.compile(r"^(?P<prefix>.*)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$")


class GgufError(Exception):
    """A GGUF file that cannot be read; `str()` says exactly why (and where)."""


@dataclass(frozen=True)
class ArrayInfo:
    """Stand-in for a long metadata array whose elements were not decoded.

    `item_type` is the GGUF value type of the elements (`VALUE_TYPE_NAMES` names it);
    `len()` gives the element count, e.g. the vocabulary size for `tokenizer.ggml.tokens`.
    """

    item_type: int
    count: int

    def __len__(self) -> int:
        return self.count

    @property
    def type_name(self) -> str:
        return VALUE_TYPE_NAMES.get(self.item_type, str(self.item_type))


@dataclass(frozen=True)
class GgufTensor:
    """One entry of the tensor table: where the tensor's data would be and how big it is."""

    name: str
    shape: tuple[int, ...]
    ggml_type: int
    type_name: str
    offset: int
    """Offset of the data from the start of the data section of part `part`."""
    nbytes: int
    part: int = 0

    @property
    def elements(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count


@dataclass(frozen=True)
class GgufHeader:
    """The header of one GGUF model (or of all parts of a split model)."""

    path: Path
    version: int
    metadata: Mapping[str, Any]
    tensors: tuple[GgufTensor, ...]
    alignment: int
    data_offset: int
    file_size: int = 0
    """Bytes on disk of this file (of all parts, for a split model)."""
    parts: tuple[GgufHeader, ...] = field(default=(), repr=False)
    """For a split model: the header of each part, in order; empty otherwise."""

    def get(self, key: str, default: Any = None) -> Any:
        return self.metadata.get(key, default)

    @property
    def architecture(self) -> str | None:
        arch = self.metadata.get("general.architecture")
        return arch if isinstance(arch, str) else None

    def arch_value(self, suffix: str, default: Any = None) -> Any:
        """`metadata[f"{architecture}.{suffix}"]`, e.g. suffix "block_count"."""
        arch = self.architecture
        if arch is None:
            return default
        return self.metadata.get(f"{arch}.{suffix}", default)

    @property
    def vocab_size(self) -> int | None:
        tokens = self.metadata.get("tokenizer.ggml.tokens")
        if isinstance(tokens, ArrayInfo | list):
            return len(tokens)
        value = self.arch_value("vocab_size")
        return value if isinstance(value, int) else None

    @property
    def tensor_data_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)

    @property
    def complete(self) -> bool:
        """Whether every tensor's data is inside the file(s): false while downloading."""
        if self.parts:
            return all(part.complete for part in self.parts)
        end = max((t.offset + t.nbytes for t in self.tensors), default=0)
        return self.data_offset + end <= self.file_size


class _Reader:
    """Sequential reads through a bounded window of the file, with precise errors."""

    def __init__(self, handle: BinaryIO, size: int) -> None:
        self.handle = handle
        self.size = size
        self.buf = b""
        self.base = 0  # file offset of buf[0]
        self.pos = 0
        self.budget = MAX_DECODED_BYTES

    def _fill(self, n: int, what: str) -> int:
        """Make buf cover [pos, pos+n); returns pos's index in buf.

        Raises:
            GgufError: the file ends first.
        """
        end = self.pos + n
        if end > self.size:
            raise GgufError(
                f"truncated: {what} at offset {self.pos} needs {n} bytes, "
                f"the file ends at {self.size}"
            )
        have_end = self.base + len(self.buf)
        if end <= have_end:
            return self.pos - self.base
        inside = self.base <= self.pos < have_end
        keep = self.buf[self.pos - self.base :] if inside else b""
        start = self.pos + len(keep)
        self.handle.seek(start)
        want = max(n - len(keep), _WINDOW)
        data = self.handle.read(min(want, self.size - start))
        self.buf = keep + data
        self.base = self.pos
        if len(self.buf) < n:
            raise GgufError(f"truncated: {what} at offset {self.pos}: the file shrank while read")
        return 0

    def scalar(self, value_type: int, what: str) -> Any:
        unpacker = _SCALARS[value_type]
        i = self._fill(unpacker.size, what)
        self.pos += unpacker.size
        return unpacker.unpack_from(self.buf, i)[0]

    def u32(self, what: str) -> int:
        i = self._fill(4, what)
        self.pos += 4
        return int(_U32.unpack_from(self.buf, i)[0])

    def u64(self, what: str) -> int:
        i = self._fill(8, what)
        self.pos += 8
        return int(_U64.unpack_from(self.buf, i)[0])

    def skip(self, n: int, what: str) -> None:
        if self.pos + n > self.size:
            raise GgufError(
                f"truncated: {what} at offset {self.pos} needs {n} bytes, "
                f"the file ends at {self.size}"
            )
        self.pos += n

    def string(self, what: str, limit: int = MAX_STRING_BYTES) -> str:
        at = self.pos
        n = self.u64(f"length of {what}")
        if n > limit:
            raise GgufError(
                f"{what} at offset {at} claims {n} bytes (more than the {limit} allowed)"
            )
        self._charge(n, what)
        i = self._fill(n, what)
        raw = self.buf[i : i + n]
        self.pos += n
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise GgufError(f"invalid UTF-8 in {what} at offset {at}: {exc.reason}") from None

    def skip_strings(self, count: int, what: str) -> None:
        """Skip `count` strings quickly: the hot loop of a vocabulary array.

        The inner loop does no bounds check of its own: `unpack_from` raises once the
        offset leaves the window, and only then (or at the end) is the last length
        checked against the caps and the file size, then the window moves on.
        """
        unpack = _U64.unpack_from
        remaining = count
        while remaining:
            off = self._fill(8, f"length of a string in {what}")
            buf, base = self.buf, self.base
            done, n, step = remaining, 0, 0
            try:
                for step in range(remaining):  # noqa: B007 (read in the except)
                    n = unpack(buf, off)[0]
                    off += 8 + n
            except struct.error:  # the next length lies past the window (step >= 1)
                done = step
            remaining -= done
            self.pos = base + off
            if n > MAX_STRING_BYTES:  # only the last string read can be longer than the window
                raise GgufError(
                    f"a string in {what} at offset {self.pos - 8 - n} claims {n} bytes "
                    f"(more than the {MAX_STRING_BYTES} allowed)"
                )
            if self.pos > self.size:
                raise GgufError(
                    f"truncated: a string in {what} runs to offset {self.pos}, "
                    f"the file ends at {self.size}"
                )

    def _charge(self, n: int, what: str) -> None:
        self.budget -= n
        if self.budget < 0:
            raise GgufError(
                f"metadata too large: {what} takes the decoded metadata past "
                f"{MAX_DECODED_BYTES} bytes"
            )


def _value(reader: _Reader, value_type: int, key: str, depth: int = 0) -> Any:
    if value_type in _SCALARS:
        return reader.scalar(value_type, f"value of {key!r}")
    if value_type == T_STRING:
        return reader.string(f"value of {key!r}")
    if value_type == T_ARRAY:
        return _array(reader, key, depth)
    raise GgufError(f"unknown value type {value_type} for key {key!r} at offset {reader.pos - 4}")


def _array(reader: _Reader, key: str, depth: int) -> Any:
    if depth >= MAX_NESTING:
        raise GgufError(f"arrays nested more than {MAX_NESTING} deep in {key!r}")
    at = reader.pos
    item_type = reader.u32(f"item type of array {key!r}")
    count = reader.u64(f"length of array {key!r}")
    if item_type in _SCALARS:
        item_size = _SCALARS[item_type].size
    elif item_type == T_STRING:
        item_size = 8
    elif item_type == T_ARRAY:
        item_size = 12
    else:
        raise GgufError(f"unknown item type {item_type} in array {key!r} at offset {at}")
    left = reader.size - reader.pos
    if count * item_size > left:
        raise GgufError(
            f"truncated or corrupt: array {key!r} at offset {at} claims {count} items, "
            "which cannot fit in the "
            f"{left} bytes left in the file"
        )
    if count > MAX_DECODED_ARRAY:
        if item_type in _SCALARS:
            reader.skip(count * item_size, f"array {key!r}")
        elif item_type == T_STRING:
            reader.skip_strings(count, f"array {key!r}")
        else:
            for _ in range(count):
                _array(reader, key, depth + 1)
        return ArrayInfo(item_type, count)
    if item_type in _SCALARS:
        nbytes = count * item_size
        reader._charge(count * 8, f"array {key!r}")
        i = reader._fill(nbytes, f"array {key!r}")
        values = list(struct.unpack_from(f"<{count}{_SCALAR_FORMATS[item_type]}", reader.buf, i))
        reader.pos += nbytes
        return values
    reader._charge(count * 8, f"array {key!r}")
    return [_value(reader, item_type, key, depth + 1) for _ in range(count)]


def _tensor(reader: _Reader, index: int, alignment: int) -> GgufTensor:
    name = reader.string(f"name of tensor {index}", MAX_TENSOR_NAME_BYTES)
    n_dims = reader.u32(f"dimension count of tensor {name!r}")
    if not 1 <= n_dims <= GGML_MAX_DIMS:
        raise GgufError(f"tensor {name!r} has {n_dims} dimensions (1 to {GGML_MAX_DIMS} allowed)")
    shape = tuple(reader.u64(f"shape of tensor {name!r}") for _ in range(n_dims))
    elements = 1
    for dim in shape:
        elements *= dim
    if elements >= 1 << 63:
        raise GgufError(f"tensor {name!r} has an impossible shape {shape}")
    type_id = reader.u32(f"type of tensor {name!r}")
    ggml_type = GGML_TYPES.get(type_id)
    if ggml_type is None:
        raise GgufError(f"tensor {name!r} has unknown ggml type {type_id}")
    if shape[0] % ggml_type.block_size:
        raise GgufError(
            f"tensor {name!r}: first dimension {shape[0]} is not a multiple of the "
            f"{ggml_type.name} block size {ggml_type.block_size}"
        )
    offset = reader.u64(f"data offset of tensor {name!r}")
    if offset % alignment:
        raise GgufError(f"tensor {name!r}: data offset {offset} is not aligned to {alignment}")
    return GgufTensor(name, shape, type_id, ggml_type.name, offset, ggml_type.nbytes(elements))


def _check_count(reader: _Reader, count: int, min_size: int, what: str) -> None:
    left = reader.size - reader.pos
    if count * min_size > left:
        raise GgufError(
            f"truncated or corrupt: {what} {count} is impossible: {count} entries need at least "
            f"{count * min_size} bytes, the file has {left} left"
        )


def _parse(handle: BinaryIO, path: Path, size: int) -> GgufHeader:
    reader = _Reader(handle, size)
    if size < 4:
        raise GgufError(f"not a GGUF file: only {size} bytes")
    start = reader._fill(4, "magic")
    magic = reader.buf[start : start + 4]
    reader.pos = 4
    if magic != GGUF_MAGIC:
        raise GgufError(f"not a GGUF file: magic {magic!r}, expected {GGUF_MAGIC!r}")
    version = reader.u32("version")
    if version not in SUPPORTED_VERSIONS:
        swapped = int.from_bytes(version.to_bytes(4, "little"), "big")
        if swapped in SUPPORTED_VERSIONS:
            raise GgufError(f"big-endian GGUF (version {swapped}) is not supported")
        if version == 1:
            raise GgufError("GGUF version 1 is obsolete and not supported")
        raise GgufError(f"unknown GGUF version {version} (supported: 2 and 3)")
    n_tensors = reader.u64("tensor count")
    n_kv = reader.u64("metadata count")
    _check_count(reader, n_kv, 13, "metadata count")
    metadata: dict[str, Any] = {}
    for index in range(n_kv):
        key = reader.string(f"metadata key {index}", MAX_KEY_BYTES)
        value_type = reader.u32(f"type of {key!r}")
        if key in metadata:
            raise GgufError(f"duplicate metadata key {key!r}")
        metadata[key] = _value(reader, value_type, key)
    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise GgufError(f"general.alignment {alignment!r} is not a power of two")
    _check_count(reader, n_tensors, 24, "tensor count")
    tensors: list[GgufTensor] = []
    names: set[str] = set()
    for index in range(n_tensors):
        tensor = _tensor(reader, index, alignment)
        if tensor.name in names:
            raise GgufError(f"duplicate tensor name {tensor.name!r}")
        names.add(tensor.name)
        tensors.append(tensor)
    data_offset = -(-reader.pos // alignment) * alignment
    return GgufHeader(
        path=path,
        version=version,
        metadata=MappingProxyType(metadata),
        tensors=tuple(tensors),
        alignment=alignment,
        data_offset=data_offset,
        file_size=size,
    )


def read_gguf_file(path: Path) -> GgufHeader:
    """Read the header of one GGUF file (a split part stays one part).

    Raises:
        GgufError: the file is not a readable GGUF (the message says why).
        OSError: the file cannot be opened (missing, permission denied, a broken link).
    """
    with Path(path).open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        return _parse(handle, Path(path), size)


def split_part_paths(path: Path) -> list[Path] | None:
    """All part paths of a split GGUF named `…-0000N-of-0000M.gguf`, or None if not split."""
    match = _SPLIT_NAME.match(path.name)
    if match is None:
        return None
    count = int(match["count"])
    if count < 2 or not 1 <= int(match["no"]) <= count:
        return None
    prefix = match["prefix"]
    return [path.with_name(f"{prefix}-{no:05d}-of-{count:05d}.gguf") for no in range(1, count + 1)]


def read_gguf_header(path: Path) -> GgufHeader:
    """Read a GGUF model's header; for a split model (any part), all parts as one.

    Raises:
        GgufError: a file is not a readable GGUF, or a part of a split model is missing.
        OSError: the file cannot be opened.
    """
    path = Path(path)
    parts = split_part_paths(path)
    if parts is None:
        return read_gguf_file(path)
    headers: list[GgufHeader] = []
    for number, part in enumerate(parts, start=1):
        if not part.exists():
            raise GgufError(f"split model: part {number} of {len(parts)} is missing ({part.name})")
        try:
            headers.append(read_gguf_file(part))
        except GgufError as exc:
            raise GgufError(f"split model part {number} ({part.name}): {exc}") from None
    first = headers[0]
    tensors: list[GgufTensor] = []
    names: set[str] = set()
    for index, header in enumerate(headers):
        for tensor in header.tensors:
            if tensor.name in names:
                raise GgufError(f"split model: tensor {tensor.name!r} appears in two parts")
            names.add(tensor.name)
            tensors.append(
                GgufTensor(
                    tensor.name,
                    tensor.shape,
                    tensor.ggml_type,
                    tensor.type_name,
                    tensor.offset,
                    tensor.nbytes,
                    index,
                )
            )
    declared = first.get("split.tensors.count")
    if isinstance(declared, int) and declared != len(tensors):
        raise GgufError(
            f"split model: {len(tensors)} tensors in the parts, part 1 declares {declared}"
        )
    return GgufHeader(
        path=parts[0],
        version=first.version,
        metadata=first.metadata,
        tensors=tuple(tensors),
        alignment=first.alignment,
        data_offset=first.data_offset,
        file_size=sum(h.file_size for h in headers),
        parts=tuple(headers),
    )
