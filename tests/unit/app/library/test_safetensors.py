"""The safetensors header reader on hand-written files, good and bad."""

import struct
from pathlib import Path

import pytest

from app.library.safetensors import SafetensorsError, read_safetensors_header
from tests.unit.app.library.builders import write_safetensors

TENSORS = {"a.weight": ("BF16", (4, 8)), "b.bias": ("F32", (8,))}


def test_reads_dtypes_shapes_and_metadata(tmp_path: Path) -> None:
    path = write_safetensors(tmp_path / "m.safetensors", TENSORS, {"format": "pt"})

    header = read_safetensors_header(path)

    assert [(t.name, t.dtype, t.shape, t.nbytes) for t in header.tensors] == [
        ("a.weight", "BF16", (4, 8), 64),
        ("b.bias", "F32", (8,), 32),
    ]
    assert header.metadata == {"format": "pt"}
    assert header.complete


def test_cut_data_is_incomplete_not_an_error(tmp_path: Path) -> None:
    header = read_safetensors_header(
        write_safetensors(tmp_path / "m.safetensors", TENSORS, cut_data=10)
    )

    assert not header.complete
    assert len(header.tensors) == 2


def _raw(tmp_path: Path, header: bytes, *, length: int | None = None, data: bytes = b"") -> Path:
    path = tmp_path / "bad.safetensors"
    size = len(header) if length is None else length
    path.write_bytes(struct.pack("<Q", size) + header + data)
    return path


@pytest.mark.parametrize(
    ("header", "length", "reason"),
    [
        (b"{}", 1 << 40, r"header length 1099511627776 exceeds the 104857600-byte limit"),
        (b"{}", 1000, r"header of 1000 bytes is longer than the file \(10 bytes\)"),
        (b"{not json", None, r"header is not valid JSON"),
        (b'{"a": "\xff"}', None, r"header is not valid UTF-8 \(byte 7\)"),
        (b"[1, 2]", None, r"header is a JSON list, not an object"),
        (
            b'{"x": {"dtype": "Q9", "shape": [1], "data_offsets": [0, 1]}}',
            None,
            r"tensor 'x': unknown dtype 'Q9'",
        ),
        (
            b'{"x": {"dtype": "F16", "shape": [-1], "data_offsets": [0, 2]}}',
            None,
            r"tensor 'x': invalid shape",
        ),
        (
            b'{"x": {"dtype": "F16", "shape": [2], "data_offsets": [4, 0]}}',
            None,
            r"invalid data_offsets",
        ),
        (
            b'{"x": {"dtype": "F16", "shape": [3], "data_offsets": [0, 4]}}',
            None,
            r"4 bytes of data for shape \[3\] of F16, which needs 6",
        ),
        (b'{"__metadata__": {"a": 1}}', None, r"__metadata__ is not a mapping of strings"),
    ],
)
def test_bad_headers(tmp_path: Path, header: bytes, length: int | None, reason: str) -> None:
    with pytest.raises(SafetensorsError, match=reason):
        read_safetensors_header(_raw(tmp_path, header, length=length))


def test_shorter_than_the_length_prefix(tmp_path: Path) -> None:
    path = tmp_path / "tiny.safetensors"
    path.write_bytes(b"\x01\x02")

    with pytest.raises(SafetensorsError, match=r"truncated: 2 bytes"):
        read_safetensors_header(path)


def test_deeply_nested_json_is_an_error_not_a_crash(tmp_path: Path) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(SafetensorsError, match=r"not valid JSON|JSON list"):
        read_safetensors_header(_raw(tmp_path, deep))
