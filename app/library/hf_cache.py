"""Where the Hugging Face hub cache lies and which snapshot of a repository in it is current.

The library's discovery lists every model in it; a PEFT adapter names its base by repo id
(`Qwen/Qwen3-8B`), and the base's config.json is found here when it was downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def hf_cache_dir(env: Mapping[str, str] | None = None, home: Path | None = None) -> Path:
    """The hub cache the `huggingface_hub` library uses: HF_HUB_CACHE, HF_HOME/hub, or default."""
    env = os.environ if env is None else env
    home = Path.home() if home is None else home
    if env.get("HF_HUB_CACHE"):
        return Path(env["HF_HUB_CACHE"])
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]) / "hub"
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else home / ".cache"
    return base / "huggingface" / "hub"


def current_snapshot(repo: Path) -> Path | None:
    """The snapshot `refs/main` points to, else the most recently written one."""
    snapshots = repo / "snapshots"
    try:
        main = (repo / "refs" / "main").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        main = ""
    if main and (snapshots / main).is_dir():
        return snapshots / main
    try:
        candidates = [p for p in snapshots.iterdir() if p.is_dir()]
    except OSError:
        return None
    return max(candidates, key=lambda p: p.stat().st_mtime, default=None)


def repo_snapshot(repo_id: str, hub: Path | None = None) -> Path | None:
    """The current snapshot of `org/name` in the hub cache, or None when not downloaded."""
    if repo_id.count("/") != 1 or repo_id.startswith(("/", ".")):
        return None
    hub = hf_cache_dir() if hub is None else hub
    return current_snapshot(hub / f"models--{repo_id.replace('/', '--')}")
