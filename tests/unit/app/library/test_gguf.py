"""The GGUF header reader against files the gguf package writes, and against bad files."""

import struct
from pathlib import Path

import gguf
import pytest
from gguf.constants import GGML_QUANT_SIZES

from app.library.ggml_types import GGML_TYPES
from app.library.gguf import (
    MAX_DECODED_ARRAY,
    ArrayInfo,
    GgufError,
    read_gguf_file,
    read_gguf_header,
    split_part_paths,
)
from tests.unit.app.library.builders import Shape, write_gguf

SHARED_HEADERS = Path("/work/shared/data/gguf-headers")


def test_header_matches_what_gguf_reader_sees(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf", Shape(layers=3))
    reference = gguf.GGUFReader(path)

    header = read_gguf_header(path)

    assert header.version == 3
    assert header.data_offset == reference.data_offset
    assert header.alignment == 32
    assert [t.name for t in header.tensors] == [t.name for t in reference.tensors]
    for mine, theirs in zip(header.tensors, reference.tensors, strict=True):
        assert mine.shape == tuple(int(d) for d in theirs.shape)
        assert mine.ggml_type == int(theirs.tensor_type)
        assert mine.type_name == theirs.tensor_type.name
        assert header.data_offset + mine.offset == theirs.data_offset
        assert mine.nbytes == int(theirs.n_bytes)
    assert header.complete


def test_metadata_values_and_accessors(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf", Shape(arch="qwen3", hidden=64, vocab=300))

    header = read_gguf_header(path)

    assert header.architecture == "qwen3"
    assert header.arch_value("block_count") == 2
    assert header.arch_value("embedding_length") == 64
    assert header.arch_value("rope.freq_base") == 1_000_000.0
    assert header.arch_value("missing", "fallback") == "fallback"
    assert header.get("general.name") == "tiny-qwen3"
    assert header.get("tokenizer.ggml.tokens")[:2] == ["t0", "t1"]  # small: decoded
    assert header.vocab_size == 300
    assert "enable_thinking" in header.get("tokenizer.chat_template")


def test_long_arrays_become_array_info_with_their_length(tmp_path: Path) -> None:
    vocab = MAX_DECODED_ARRAY + 10
    path = write_gguf(tmp_path / "m.gguf", Shape(vocab=vocab), header_only=True)

    header = read_gguf_header(path)

    tokens = header.get("tokenizer.ggml.tokens")
    assert tokens == ArrayInfo(gguf.GGUFValueType.STRING, vocab)
    assert tokens.type_name == "string"
    assert len(header.get("tokenizer.ggml.token_type")) == vocab
    assert header.vocab_size == vocab
    # The keys after the skipped arrays are still read correctly.
    assert "enable_thinking" in header.get("tokenizer.chat_template")


def test_per_layer_arrays_are_decoded(tmp_path: Path) -> None:
    def per_layer(writer: gguf.GGUFWriter) -> None:
        writer.add_array("qwen3.attention.sliding_window_pattern", [True, True, False])
        writer.add_array("qwen3.attention.head_count_kv_per_layer", [2, 4, 2])

    header = read_gguf_header(write_gguf(tmp_path / "m.gguf", extra=per_layer))

    assert header.arch_value("attention.sliding_window_pattern") == [True, True, False]
    assert header.arch_value("attention.head_count_kv_per_layer") == [2, 4, 2]


def test_header_only_file_reads_and_is_incomplete(tmp_path: Path) -> None:
    full = read_gguf_header(write_gguf(tmp_path / "full.gguf"))
    path = write_gguf(tmp_path / "head.gguf", header_only=True)

    header = read_gguf_header(path)

    assert not header.complete
    assert header.file_size < header.data_offset + header.tensor_data_bytes
    assert [(t.name, t.shape, t.nbytes) for t in header.tensors] == [
        (t.name, t.shape, t.nbytes) for t in full.tensors
    ]
    with pytest.raises(ValueError, match=r"cannot reshape"):  # why this reader exists
        gguf.GGUFReader(path)


def test_quantized_types_have_block_sizes(tmp_path: Path) -> None:
    path = write_gguf(
        tmp_path / "q.gguf",
        Shape(hidden=64),
        header_only=True,
        quant=gguf.GGMLQuantizationType.Q8_0,
    )

    header = read_gguf_header(path)

    q = next(t for t in header.tensors if t.name == "blk.0.attn_q.weight")
    assert (q.type_name, q.shape) == ("Q8_0", (64, 64))
    assert q.nbytes == 64 * 64 // 32 * 34


def test_split_model_is_one_header_from_any_part(tmp_path: Path) -> None:
    single = read_gguf_header(write_gguf(tmp_path / "one.gguf"))
    write_gguf(tmp_path / "split" / "m.gguf", split_max_tensors=8)
    parts = sorted((tmp_path / "split").iterdir())
    assert [p.name for p in parts] == [
        "m-00001-of-00003.gguf",
        "m-00002-of-00003.gguf",
        "m-00003-of-00003.gguf",
    ]

    header = read_gguf_header(parts[1])

    assert header.path == parts[0]
    assert len(header.parts) == 3
    assert [t.name for t in header.tensors] == [t.name for t in single.tensors]
    assert {t.part for t in header.tensors} == {0, 1, 2}
    assert header.architecture == "qwen3"
    assert header.file_size == sum(p.stat().st_size for p in parts)
    assert header.complete
    assert len(read_gguf_file(parts[1]).tensors) == 8  # one part alone stays one part


def test_split_model_with_a_missing_part(tmp_path: Path) -> None:
    write_gguf(tmp_path / "m.gguf", split_max_tensors=8)
    (tmp_path / "m-00002-of-00003.gguf").unlink()

    with pytest.raises(GgufError, match=r"part 2 of 3 is missing \(m-00002-of-00003.gguf\)"):
        read_gguf_header(tmp_path / "m-00001-of-00003.gguf")


def test_split_names() -> None:
    assert split_part_paths(Path("/m/x-00002-of-00003.gguf")) == [
        Path(f"/m/x-0000{i}-of-00003.gguf") for i in (1, 2, 3)
    ]
    assert split_part_paths(Path("/m/x.gguf")) is None
    assert split_part_paths(Path("/m/x-00001-of-00001.gguf")) is None


def test_ggml_type_table_matches_the_gguf_package() -> None:
    for qtype, (block, size) in GGML_QUANT_SIZES.items():
        mine = GGML_TYPES[int(qtype)]
        assert (mine.name, mine.block_size, mine.type_size) == (qtype.name, block, size)


@pytest.mark.skipif(not SHARED_HEADERS.is_dir(), reason="shared reference headers not present")
def test_real_qwen3_headers() -> None:
    header = read_gguf_header(SHARED_HEADERS / "moe30.header.gguf")

    assert header.architecture == "qwen3moe"
    assert header.vocab_size == 151936
    assert header.arch_value("expert_count") == 128
    assert not header.complete


# ---------------------------------------------------------------- bad files
def _valid(tmp_path: Path) -> bytes:
    return write_gguf(tmp_path / "valid.gguf", header_only=True).read_bytes()


def _patched(tmp_path: Path, offset: int, value: bytes) -> Path:
    data = bytearray(_valid(tmp_path))
    data[offset : offset + len(value)] = value
    path = tmp_path / "bad.gguf"
    path.write_bytes(bytes(data))
    return path


FIRST_KEY = 24  # magic, version, tensor count, kv count; then the first key's length


@pytest.mark.parametrize(
    ("offset", "value", "reason"),
    [
        (0, b"GGML", r"not a GGUF file: magic b'GGML'"),
        (4, struct.pack("<I", 7), r"unknown GGUF version 7 \(supported: 2 and 3\)"),
        (4, struct.pack(">I", 3), r"big-endian GGUF \(version 3\) is not supported"),
        (4, struct.pack("<I", 1), r"GGUF version 1 is obsolete"),
        (8, struct.pack("<Q", 1 << 60), r"tensor count 1152921504606846976 is impossible"),
        (16, struct.pack("<Q", 1 << 60), r"metadata count 1152921504606846976 is impossible"),
        (
            FIRST_KEY,
            struct.pack("<Q", 1 << 32),
            r"metadata key 0 at offset 24 claims 4294967296 bytes",
        ),
        (FIRST_KEY + 8, b"\xff", r"invalid UTF-8 in metadata key 0 at offset 24"),
        (
            FIRST_KEY + 8 + 20,
            struct.pack("<I", 99),
            r"unknown value type 99 for key 'general.architecture'",
        ),
    ],
)
def test_bad_header_fields_give_precise_reasons(
    tmp_path: Path, offset: int, value: bytes, reason: str
) -> None:
    with pytest.raises(GgufError, match=reason):
        read_gguf_file(_patched(tmp_path, offset, value))


def test_a_four_gigabyte_string_value(tmp_path: Path) -> None:
    # general.architecture's value length follows its key (8 + 20 bytes) and type (4).
    path = _patched(tmp_path, FIRST_KEY + 8 + 20 + 4, struct.pack("<Q", 4 << 30))

    with pytest.raises(
        GgufError, match=r"value of 'general.architecture' at offset 56 claims 4294967296 bytes"
    ):
        read_gguf_file(path)


@pytest.mark.parametrize("keep", [0, 3, 10, 30, 200, 2000])
def test_truncated_headers(tmp_path: Path, keep: int) -> None:
    path = tmp_path / "cut.gguf"
    path.write_bytes(_valid(tmp_path)[:keep])

    with pytest.raises(GgufError, match=r"truncated|not a GGUF file: only"):
        read_gguf_file(path)


def test_truncated_inside_the_vocabulary(tmp_path: Path) -> None:
    data = write_gguf(
        tmp_path / "v.gguf", Shape(vocab=MAX_DECODED_ARRAY * 2), header_only=True
    ).read_bytes()
    start = data.index(b"tokenizer.ggml.tokens")
    path = tmp_path / "cut.gguf"
    path.write_bytes(data[: start + 80_000])

    with pytest.raises(GgufError, match=r"truncated: .*array 'tokenizer.ggml.tokens'"):
        read_gguf_file(path)


def test_impossible_array_length(tmp_path: Path) -> None:
    data = bytearray(_valid(tmp_path))
    at = data.index(b"tokenizer.ggml.tokens") + len("tokenizer.ggml.tokens") + 4 + 4
    data[at : at + 8] = struct.pack("<Q", 1 << 62)
    path = tmp_path / "bad.gguf"
    path.write_bytes(bytes(data))

    with pytest.raises(
        GgufError, match=r"array 'tokenizer.ggml.tokens' .* claims 4611686018427387904 items"
    ):
        read_gguf_file(path)


def _tensor_field(data: bytes, name: bytes) -> int:
    """Offset just after the tensor-table entry's name."""
    return data.index(name) + len(name)


def test_bad_tensor_entries(tmp_path: Path) -> None:
    data = _valid(tmp_path)
    name = b"blk.0.attn_q.weight"
    at = _tensor_field(data, name)
    cases = [
        (at, struct.pack("<I", 9), r"tensor 'blk.0.attn_q.weight' has 9 dimensions"),
        (at + 4 + 16, struct.pack("<I", 77), r"unknown ggml type 77"),
        (at + 4 + 16 + 4, struct.pack("<Q", 3), r"data offset 3 is not aligned to 32"),
    ]
    for offset, value, reason in cases:
        patched = bytearray(data)
        patched[offset : offset + len(value)] = value
        path = tmp_path / "bad.gguf"
        path.write_bytes(bytes(patched))
        with pytest.raises(GgufError, match=reason):
            read_gguf_file(path)


def test_duplicate_tensor_names(tmp_path: Path) -> None:
    data = _valid(tmp_path).replace(b"blk.1.attn_q.weight", b"blk.0.attn_q.weight")
    path = tmp_path / "dup.gguf"
    path.write_bytes(data)

    with pytest.raises(GgufError, match=r"duplicate tensor name 'blk.0.attn_q.weight'"):
        read_gguf_file(path)


def test_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_gguf_header(tmp_path / "nope.gguf")
