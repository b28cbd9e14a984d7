"""Writes the corpus of nasty files in `corpus/`.

Run once: `python -m tests.unit.app.library.make_corpus`.

Each file is a small real header damaged in one precise way; `test_corpus.py` checks
the reason the library gives for each. The files are kept in git so the readers are
tested against the same bytes forever, whatever the writers become.
"""

from __future__ import annotations

import struct
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests.unit.app.library.builders import Shape, safetensors_bytes, write_gguf

CORPUS = Path(__file__).parent / "corpus"


def _seed() -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        return write_gguf(
            Path(folder) / "s.gguf", Shape(layers=1, vocab=16), header_only=True
        ).read_bytes()


def _at(data: bytes, offset: int, value: bytes) -> bytes:
    out = bytearray(data)
    out[offset : offset + len(value)] = value
    return bytes(out)


def _after(data: bytes, marker: bytes, skip: int, value: bytes) -> bytes:
    return _at(data, data.index(marker) + len(marker) + skip, value)


def gguf_cases(seed: bytes) -> dict[str, bytes]:
    return {
        "empty.gguf": b"",
        "wrong_magic.gguf": _at(seed, 0, b"GGML"),
        "truncated_header.gguf": seed[:100],
        "unknown_version.gguf": _at(seed, 4, struct.pack("<I", 4)),
        "big_endian.gguf": _at(seed, 4, struct.pack(">I", 3)),
        "tensor_count_2_60.gguf": _at(seed, 8, struct.pack("<Q", 1 << 60)),
        "string_4gb.gguf": _after(seed, b"general.architecture", 4, struct.pack("<Q", 4 << 30)),
        "invalid_utf8_key.gguf": _at(seed, 32, b"\xc3\x28"),
        "huge_array.gguf": _after(seed, b"tokenizer.ggml.tokens", 8, struct.pack("<Q", 1 << 62)),
        "unknown_ggml_type.gguf": _after(
            seed, b"blk.0.attn_q.weight", 4 + 16, struct.pack("<I", 200)
        ),
        "five_dimensions.gguf": _after(seed, b"blk.0.attn_q.weight", 0, struct.pack("<I", 5)),
        "unknown_value_type.gguf": _after(seed, b"general.architecture", 0, struct.pack("<I", 13)),
    }


def safetensors_cases() -> dict[str, bytes]:
    good = safetensors_bytes({"w": ("F16", (2, 4))})
    return {
        "short.safetensors": b"\x05\x00",
        "header_longer_than_file.safetensors": struct.pack("<Q", 10_000) + b"{}",
        "header_length_4gb.safetensors": struct.pack("<Q", 4 << 30) + b"{}",
        "malformed_json.safetensors": struct.pack("<Q", 9) + b'{"w": [1,',
        "invalid_utf8.safetensors": struct.pack("<Q", 8) + b'{"\xff": 1}',
        "offsets_past_shape.safetensors": good.replace(
            b'"data_offsets": [0, 16]', b'"data_offsets": [0, 99]'
        ),
    }


def main(write: Callable[[Path, bytes], None] | None = None) -> None:
    CORPUS.mkdir(exist_ok=True)
    for name, data in {**gguf_cases(_seed()), **safetensors_cases()}.items():
        (write or Path.write_bytes)(CORPUS / name, data)


if __name__ == "__main__":
    main()
