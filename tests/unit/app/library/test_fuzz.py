"""Fuzzing the GGUF and safetensors readers: any bytes give a header or a precise error.

Inputs start from real files (a GGUF written by GGUFWriter, a safetensors file) and are
cut, overwritten and spliced with hostile numbers (huge counts and lengths). The reader
must answer with its own error type (never IndexError, struct.error, MemoryError, …).
Runs are bounded so CI stays fast.
"""

import json
import struct
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.library.gguf import GgufError, GgufHeader, read_gguf_header
from app.library.loader import load_entry
from app.library.safetensors import SafetensorsError, SafetensorsHeader, read_safetensors_header
from tests.unit.app.library.builders import Shape, safetensors_bytes, write_gguf

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HOSTILE = [0, 1, 3, 4, 9, 12, 13, 0xFF, 1 << 31, 1 << 32, 1 << 60, (1 << 64) - 1]


@cache
def _gguf_seed() -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = write_gguf(Path(folder) / "seed.gguf", Shape(layers=1, vocab=40), header_only=True)
        return path.read_bytes()


@cache
def _safetensors_seed() -> bytes:
    return safetensors_bytes(
        {
            "model.layers.0.self_attn.q_proj.weight": ("F16", (4, 8)),
            "model.norm.weight": ("F32", (8,)),
        },
        {"format": "pt"},
    )


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["cut", "byte", "u64", "u32", "splice"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "cut":
            del data[at:]
        elif kind == "byte" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "u64":
            data[at : at + 8] = struct.pack("<Q", draw(st.sampled_from(HOSTILE)))
        elif kind == "u32":
            data[at : at + 4] = struct.pack("<I", draw(st.sampled_from(HOSTILE)) & 0xFFFFFFFF)
        else:
            data[at:at] = draw(st.binary(max_size=32))
    return bytes(data)


def _outcome(read: Callable[[Path], object], path: Path, error: type[Exception]) -> object:
    """The reader's result, or its error's message; any other exception propagates."""
    try:
        return read(path)
    except error as exc:
        return str(exc)


def _write(folder: str, name: str, data: bytes) -> Path:
    path = Path(folder) / name
    path.write_bytes(data)
    return path


@FUZZ
@given(mutated(_gguf_seed()))
def test_gguf_reader_never_crashes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = _write(folder, "fuzz.gguf", data)
        result = _outcome(read_gguf_header, path, GgufError)
        if isinstance(result, GgufHeader):
            assert all(t.nbytes >= 0 for t in result.tensors)
        else:
            assert result  # a reason, never an empty message
        entry = load_entry(path)  # the library's view of the same bytes: never raises
        assert entry.path == path


@FUZZ
@given(st.binary(max_size=256))
def test_gguf_reader_on_random_bytes_after_the_magic(tail: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = _write(folder, "fuzz.gguf", b"GGUF" + tail)
        result = _outcome(read_gguf_header, path, GgufError)
        assert isinstance(result, GgufHeader) or result


@FUZZ
@given(mutated(_safetensors_seed()))
def test_safetensors_reader_never_crashes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = _write(folder, "fuzz.safetensors", data)
        result = _outcome(read_safetensors_header, path, SafetensorsError)
        assert isinstance(result, SafetensorsHeader) or result


@FUZZ
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=12,
    )
)
def test_safetensors_reader_on_arbitrary_json_headers(header: object) -> None:
    raw = json.dumps(header).encode()
    with tempfile.TemporaryDirectory() as folder:
        path = _write(folder, "fuzz.safetensors", struct.pack("<Q", len(raw)) + raw)
        result = _outcome(read_safetensors_header, path, SafetensorsError)
        assert isinstance(result, SafetensorsHeader) or result
