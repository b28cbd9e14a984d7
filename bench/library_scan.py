"""Benchmark: scanning a library of 500 model files, cold (empty index) and warm.

Run: `.venv/bin/python bench/library_scan.py [--mix mixed|gguf] [--files 500]`.
Not part of the test suite.

`mixed` (default) is a library as people keep one: half GGUF files with real vocabulary
sizes (copies of the Qwen3 reference headers and of the Gemma-3-shaped header from
bench/gguf_read.py, 151,936 and 262,144 tokens), 30% safetensors shards of Hugging Face
models with Qwen3-8B-sized tensor tables (5 shards each), 20% PEFT adapters. `gguf` is
the worst case: every file a GGUF with a full vocabulary. Cold means an empty index
(every file read); the OS page cache is dropped first when permitted (root, not in a
container that forbids it) and the script says which. Warm is the rescan that follows.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.library.library import Library
from tests.unit.app.library.builders import HfModel, Shape, write_hf_model, write_peft

SHARED = Path("/work/shared/data/gguf-headers")
CACHE = Path(tempfile.gettempdir()) / "rigdeck-bench-cache"


def gguf_sources() -> list[Path]:
    sources = sorted(SHARED.glob("*.gguf")) if SHARED.is_dir() else []
    sources += sorted(CACHE.glob("*-shaped.gguf"))
    if not sources:
        raise SystemExit("no GGUF headers: run bench/gguf_read.py first (it writes the cache)")
    return sources


def build(root: Path, mix: str, files: int) -> int:
    """Lay out the library; returns the number of model files written."""
    sources = gguf_sources()
    n_gguf = files if mix == "gguf" else files // 2
    n_shards = 0 if mix == "gguf" else files * 3 // 10 // 5 * 5
    n_peft = files - n_gguf - n_shards
    for i in range(n_gguf):
        target = root / "gguf" / f"publisher{i % 7}" / f"model-{i:03d}.gguf"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sources[i % len(sources)], target)
    big = Shape(layers=36, hidden=256, heads=4, kv_heads=2, head_dim=64, ffn=512, vocab=512)
    for i in range(n_shards // 5):
        write_hf_model(root / "hf" / f"org{i % 3}" / f"Model-{i:02d}", HfModel(shape=big, shards=5))
    for i in range(n_peft):
        write_peft(root / "loras" / f"role-{i:03d}", Shape(layers=36, hidden=256, head_dim=64))
    return n_gguf + n_shards + n_peft


def drop_page_cache() -> str:
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError as exc:
        return f"page cache NOT dropped ({exc.strerror}); files were just written"
    return "page cache dropped"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mix", choices=["mixed", "gguf"], default="mixed")
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--keep-page-cache", action="store_true", help="do not drop the page cache")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rigdeck-bench-lib-") as tmp:
        root = Path(tmp) / "models"
        written = build(root, args.mix, args.files)
        size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        cache_note = "page cache kept" if args.keep_page_cache else drop_page_cache()
        library = Library([root], include_defaults=False, index_path=Path(tmp) / "index.sqlite3")
        start = time.perf_counter()
        cold = library.rescan()
        cold_s = time.perf_counter() - start
        start = time.perf_counter()
        warm = library.rescan()
        warm_s = time.perf_counter() - start
        library.close()
        errors = [e for e in cold.entries if e.error]
        print(
            f"mix {args.mix}: {written} model files, {size / 2**30:.2f} GiB,"
            f" {len(cold.entries)} entries"
        )
        print(f"cold scan (empty index): {cold_s:.2f} s, {cold.read} read  [{cache_note}]")
        print(
            f"warm rescan (index):     {warm_s:.2f} s, {warm.read} read,"
            f" {warm.reused} from the index"
        )
        print(f"entries with errors: {len(errors)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
