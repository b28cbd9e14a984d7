"""Where models are found: the user's folders, the Hugging Face cache, Ollama, LM Studio.

Discovery only lists candidates (a GGUF file, a model or adapter folder, an Ollama blob)
with the source they came from and a display name; reading them is the loader's job.
Folders are walked recursively following links; a symlink loop or an unreadable folder
becomes a line in `Discovery.problems`, never an exception.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from app.library.entries import Source
from app.library.gguf import split_part_paths
from app.library.hf_cache import current_snapshot, hf_cache_dir
from app.library.hf_folder import is_hf_folder
from app.library.peft import CONFIG_FILE as PEFT_CONFIG

log = logging.getLogger(__name__)

OLLAMA_MODEL = "application/vnd.ollama.image.model"
OLLAMA_ADAPTER = "application/vnd.ollama.image.adapter"
OLLAMA_DEFAULT_REGISTRY = ("registry.ollama.ai", "library")
_TEMP_SUFFIXES = (".part", ".partial", ".incomplete", ".tmp", ".crdownload", ".download")


@dataclass(frozen=True)
class Candidate:
    """Something to read: `path` for the loader, plus where it came from."""

    path: Path
    source: Source
    name: str | None = None
    error: str | None = None
    """Set when discovery already knows it is broken (e.g. an Ollama blob is missing)."""


@dataclass
class Discovery:
    candidates: list[Candidate] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def extend(self, other: Discovery) -> None:
        self.candidates += other.candidates
        self.problems += other.problems


def _gguf_candidates(files: list[Path]) -> list[Path]:
    """GGUF files of one folder, with a split model's parts collapsed into one path."""
    out: list[Path] = []
    seen_splits: set[Path] = set()
    for path in sorted(files):
        parts = split_part_paths(path)
        if parts is None:
            out.append(path)
        elif parts[0] not in seen_splits:
            seen_splits.add(parts[0])
            out.append(parts[0])  # the loader says so if part 1 is missing
    return out


def walk_folder(root: Path, source: Source = "folder", name_prefix: str | None = None) -> Discovery:
    """Every model candidate under `root` (a folder, or a single file).

    `name_prefix` names candidates `prefix/relative/path` (the HF cache and LM Studio).
    """
    found = Discovery()
    root = Path(root)
    if not root.is_dir():
        for path in _gguf_candidates([root]) if root.name.endswith(".gguf") else [root]:
            found.candidates.append(_named(path, source, path, name_prefix))
        return found
    visited: dict[tuple[int, int], Path] = {}
    stack = [root]
    while stack:
        folder = stack.pop()
        children = _enter(folder, visited, found.problems)
        if children is None:
            continue
        names = {child.name for child in children}
        if PEFT_CONFIG in names or ("config.json" in names and is_hf_folder(folder)):
            found.candidates.append(_named(folder, source, root, name_prefix))
        ggufs: list[Path] = []
        for child in children:
            if child.name.startswith(".") or child.name.endswith(_TEMP_SUFFIXES):
                continue  # hidden files, partial downloads under a temporary name
            try:
                is_dir = child.is_dir()  # follows links
            except OSError:
                is_dir = False
            if is_dir:
                stack.append(Path(child.path))
            elif child.name.endswith(".gguf"):
                ggufs.append(Path(child.path))
        for gguf in _gguf_candidates(ggufs):
            found.candidates.append(_named(gguf, source, root, name_prefix))
    return found


def _enter(
    folder: Path, visited: dict[tuple[int, int], Path], problems: list[str]
) -> list[os.DirEntry[str]] | None:
    """The folder's entries, or None (with a problem noted) if unreadable or a loop."""
    try:
        info = folder.stat()
        ident = (info.st_dev, info.st_ino)
        if ident in visited:
            first = visited[ident]
            loop = folder.resolve().is_relative_to(first.resolve())
            what = "symlink loop" if loop else "already scanned"
            problems.append(f"{folder}: {what} (same folder as {first}); skipped")
            return None
        visited[ident] = folder
        with os.scandir(folder) as entries:
            return sorted(entries, key=lambda e: e.name)
    except OSError as exc:
        problems.append(f"cannot read folder {folder}: {exc.strerror or exc}")
        return None


def _named(path: Path, source: Source, root: Path, prefix: str | None) -> Candidate:
    if prefix is None:
        return Candidate(path, source)
    relative = path.relative_to(root).as_posix()
    return Candidate(path, source, prefix if relative == "." else f"{prefix}/{relative}")


# ---------------------------------------------------------------- Hugging Face hub cache
def discover_hf_cache(root: Path) -> Discovery:
    """Models and adapters in a hub cache: `models--org--name/snapshots/<revision>/`."""
    found = Discovery()
    try:
        repos = sorted(p for p in root.iterdir() if p.name.startswith("models--"))
    except OSError as exc:
        found.problems.append(f"cannot read the Hugging Face cache {root}: {exc.strerror or exc}")
        return found
    for repo in repos:
        repo_name = repo.name.removeprefix("models--").replace("--", "/")
        snapshot = current_snapshot(repo)
        if snapshot is None:
            continue
        found.extend(walk_folder(snapshot, "hf-cache", repo_name))
    return found


# ---------------------------------------------------------------- Ollama
def ollama_dirs(env: Mapping[str, str], home: Path) -> list[Path]:
    """OLLAMA_MODELS, else the user's store and the Linux service's store."""
    if env.get("OLLAMA_MODELS"):
        return [Path(env["OLLAMA_MODELS"])]
    return [home / ".ollama" / "models", Path("/usr/share/ollama/.ollama/models")]


def _ollama_name(relative: Path) -> str:
    parts = relative.parts
    if len(parts) == 4 and (parts[0], parts[1]) == OLLAMA_DEFAULT_REGISTRY:
        return f"{parts[2]}:{parts[3]}"
    return f"{'/'.join(parts[:-1])}:{parts[-1]}"


def discover_ollama(root: Path) -> Discovery:
    """One candidate per model blob, named `name:tag` (several tags may share a blob)."""
    found = Discovery()
    manifests = root / "manifests"
    names: dict[Path, list[str]] = {}
    errors: dict[Path, str] = {}
    for manifest in sorted(p for p in manifests.rglob("*") if p.is_file()):
        tag = _ollama_name(manifest.relative_to(manifests))
        try:
            layers = json.loads(manifest.read_text(encoding="utf-8"))["layers"]
            digests = [
                (layer["mediaType"], str(layer["digest"]))
                for layer in layers
                if layer.get("mediaType") in (OLLAMA_MODEL, OLLAMA_ADAPTER)
            ]
        except (
            OSError,
            UnicodeDecodeError,
            ValueError,
            KeyError,
            TypeError,
            AttributeError,
        ) as exc:
            found.problems.append(
                f"Ollama manifest {tag}: unreadable ({type(exc).__name__}: {exc})"
            )
            continue
        for media_type, digest in digests:
            blob = root / "blobs" / digest.replace(":", "-")
            label = tag if media_type == OLLAMA_MODEL else f"{tag} (adapter)"
            names.setdefault(blob, []).append(label)
            if not blob.exists():
                errors[blob] = f"blob {blob.name} is missing (an unfinished `ollama pull`?)"
    for blob, labels in names.items():
        found.candidates.append(Candidate(blob, "ollama", ", ".join(labels), errors.get(blob)))
    return found


# ---------------------------------------------------------------- LM Studio
def lmstudio_dirs(env: Mapping[str, str], home: Path) -> list[Path]:
    """LM Studio's models folder: ~/.lmstudio/models (0.3+) or ~/.cache/lm-studio/models."""
    if env.get("LMSTUDIO_MODELS"):
        return [Path(env["LMSTUDIO_MODELS"])]
    return [home / ".lmstudio" / "models", home / ".cache" / "lm-studio" / "models"]


def discover_lmstudio(root: Path) -> Discovery:
    """`publisher/model/file.gguf` below the models folder, named by that relative path."""
    found = Discovery()
    for candidate in walk_folder(root, "lmstudio").candidates:
        relative = candidate.path.relative_to(root).as_posix()
        found.candidates.append(Candidate(candidate.path, "lmstudio", relative))
    return found


# ---------------------------------------------------------------- all together
def discover(
    folders: Iterable[Path],
    *,
    include_defaults: bool = True,
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> Discovery:
    """Every candidate from the default stores (that exist) and the user's folders.

    A path found twice keeps its first, most specific source (hf-cache, ollama, lmstudio
    before a plain folder). A user folder that does not exist is a problem, not an error.
    """
    env = os.environ if env is None else env
    home = Path.home() if home is None else home
    found = Discovery()
    if include_defaults:
        hub = hf_cache_dir(env, home)
        if hub.is_dir():
            found.extend(discover_hf_cache(hub))
        for root in ollama_dirs(env, home):
            if (root / "manifests").is_dir():
                found.extend(discover_ollama(root))
        for root in lmstudio_dirs(env, home):
            if root.is_dir():
                found.extend(discover_lmstudio(root))
    for given in folders:
        folder = Path(given).expanduser()
        if not folder.exists() and not folder.is_symlink():
            found.problems.append(f"model folder {folder} does not exist")
            continue
        found.extend(walk_folder(folder))
    unique: dict[Path, Candidate] = {}
    for candidate in found.candidates:
        unique.setdefault(candidate.path.absolute(), candidate)
    found.candidates = list(unique.values())
    return found
