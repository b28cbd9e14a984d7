"""Benchmark: Rigdeck's GGUF header reader against gguf.GGUFReader on the same files.

Run: `.venv/bin/python bench/gguf_read.py [--repeat N]`. Not part of the test suite.

Files: the reference headers in /work/shared/data/gguf-headers (Qwen3 shapes, 151,936
tokens) and two headers written here with GGUFWriter: a Gemma-3-shaped one (262,144
tokens with scores and types) and a Qwen3-8B-shaped one (36 layers, 151,936 tokens and
151,387 merges). GGUFReader cannot open header-only files, so each file is also copied
and extended (sparsely) to its full size; both readers time that padded copy, and
Rigdeck's reader is also timed on the header-only file. The tensor tables are compared,
so a fast wrong answer cannot pass.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGMLQuantizationType, GGUFReader, GGUFWriter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.library.gguf import read_gguf_header

SHARED = Path("/work/shared/data/gguf-headers")


def _tokens(count: int) -> list[str]:
    alphabet = ["a", "b", "e", "Ġ", "th", "ing", "の", "▁", "er", "##"]
    return [f"{alphabet[i % 10]}{alphabet[(i // 10) % 10]}{i}" for i in range(count)]


def write_header(
    path: Path, arch: str, *, layers: int, hidden: int, vocab: int, merges: int
) -> Path:
    """A header-only GGUF with a real vocabulary size and per-layer Q4_K tensors."""
    writer = GGUFWriter(path, arch)
    writer.add_uint32(f"{arch}.block_count", layers)
    writer.add_uint32(f"{arch}.embedding_length", hidden)
    writer.add_uint32(f"{arch}.context_length", 32768)
    writer.add_uint32(f"{arch}.attention.head_count", 16)
    writer.add_uint32(f"{arch}.attention.head_count_kv", 8)
    writer.add_string("tokenizer.ggml.model", "gpt2" if merges else "llama")
    writer.add_array("tokenizer.ggml.tokens", _tokens(vocab))
    writer.add_array("tokenizer.ggml.scores", [float(-i) for i in range(vocab)])
    writer.add_array("tokenizer.ggml.token_type", [1] * vocab)
    if merges:
        writer.add_array("tokenizer.ggml.merges", [f"{t} x" for t in _tokens(merges)])
    writer.add_string("tokenizer.chat_template", "{% if enable_thinking %}<think>{% endif %}")
    # Q4_K needs rows that are multiples of 256; quantizers use Q8_0 otherwise (Gemma 3 1B).
    qtype, block, size = (
        (GGMLQuantizationType.Q4_K, 256, 144)
        if hidden % 256 == 0
        else (GGMLQuantizationType.Q8_0, 32, 34)
    )
    embd_bytes = vocab * hidden // block * size
    writer.add_tensor_info(
        "token_embd.weight", (vocab, hidden), np.dtype(np.float16), embd_bytes, qtype
    )
    for i in range(layers):
        for name, shape in (
            ("attn_q", (hidden, hidden)),
            ("attn_k", (hidden // 2, hidden)),
            ("attn_v", (hidden // 2, hidden)),
            ("attn_output", (hidden, hidden)),
            ("ffn_up", (3 * hidden, hidden)),
            ("ffn_gate", (3 * hidden, hidden)),
            ("ffn_down", (hidden, 3 * hidden)),
        ):
            nbytes = shape[0] * shape[1] // block * size
            writer.add_tensor_info(
                f"blk.{i}.{name}.weight", shape, np.dtype(np.float16), nbytes, qtype
            )
        writer.add_tensor_info(
            f"blk.{i}.attn_norm.weight", (hidden,), np.dtype(np.float32), hidden * 4
        )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.flush()
    writer.close()
    return path


GENERATED: dict[str, dict[str, Any]] = {
    "gemma3-shaped.gguf": {
        "arch": "gemma3",
        "layers": 26,
        "hidden": 1152,
        "vocab": 262_144,
        "merges": 0,
    },
    "qwen3-8b-shaped.gguf": {
        "arch": "qwen3",
        "layers": 36,
        "hidden": 4096,
        "vocab": 151_936,
        "merges": 151_387,
    },
}


def generated_headers(cache: Path) -> list[Path]:
    """The generated headers, written once into `cache` (GGUFWriter takes a minute)."""
    cache.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, spec in GENERATED.items():
        path = cache / name
        if not path.exists():
            print(f"writing {path} …", file=sys.stderr)
            write_header(path.with_suffix(".tmp"), **spec).replace(path)
        paths.append(path)
    return paths


def padded_copy(header_only: Path, folder: Path) -> Path:
    """The header-only file extended with zeros (sparse) to its full size, for GGUFReader."""
    header = read_gguf_header(header_only)
    full = folder / f"{header_only.stem}.padded.gguf"
    shutil.copyfile(header_only, full)
    end = header.data_offset + max(t.offset + t.nbytes for t in header.tensors)
    with full.open("r+b") as handle:
        handle.truncate(end)
    return full


def timed(call: Callable[[], object], repeat: int) -> float:
    """Median seconds of `repeat` calls (after one untimed warm-up)."""
    call()
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def same_tables(path: Path) -> bool:
    mine = read_gguf_header(path)
    theirs = GGUFReader(path)
    return [(t.name, t.shape, mine.data_offset + t.offset, t.nbytes) for t in mine.tensors] == [
        (t.name, tuple(int(d) for d in t.shape), int(t.data_offset), int(t.n_bytes))
        for t in theirs.tensors
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15, help="timed runs of Rigdeck's reader")
    parser.add_argument("--reference-repeat", type=int, default=3, help="timed runs of GGUFReader")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "rigdeck-bench-cache",
        help="where the generated headers are kept between runs",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rigdeck-bench-") as tmp:
        folder = Path(tmp)
        files = sorted(SHARED.glob("*.gguf")) if SHARED.is_dir() else []
        files += generated_headers(args.cache)
        print(
            f"{'file':28} {'vocab':>7} {'header':>9} {'rigdeck hdr-only':>17}"
            f" {'rigdeck padded':>15}"
            f" {'GGUFReader':>11} {'ratio':>7}  same table"
        )
        ratios = []
        for path in files:
            padded = padded_copy(path, folder)
            header = read_gguf_header(path)
            mine_header_only = timed(partial(read_gguf_header, path), args.repeat)
            mine_padded = timed(partial(read_gguf_header, padded), args.repeat)
            reference = timed(partial(GGUFReader, padded), args.reference_repeat)
            ratio = reference / mine_padded
            ratios.append(ratio)
            print(
                f"{path.name:28} {header.vocab_size:>7} {path.stat().st_size / 2**20:>7.1f}MB"
                f" {mine_header_only * 1000:>15.1f}ms {mine_padded * 1000:>13.1f}ms"
                f" {reference:>10.2f}s {ratio:>6.0f}x  {same_tables(padded)}"
            )
        print(
            f"ratio GGUFReader / Rigdeck: min {min(ratios):.0f}x,"
            f" median {statistics.median(ratios):.0f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
