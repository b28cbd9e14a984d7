"""Where model files appear inside a container: exactly the files a backend needs, each
read-only, never a whole folder of the host.

A file the user names may be a symlink (the Hugging Face cache's snapshots are relative
links into `blobs/`, and people link models into a folder of their own): its target is
mounted, under the name the user gave it, so the engine sees the file and not a dangling
link. A split GGUF brings its other shards (llama.cpp opens them by name beside the first),
a model folder (vLLM) brings every file in it. On a remote host the files cannot be seen
from here: there the folder that holds them is mounted, as the path says.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path, PurePosixPath

from app.engines.plan import PlanError
from app.engines.spec import NOBODY, Mount

MODELS_ROOT = "/models"
MAX_FOLDER_FILES = 4096
"""A model folder holds tens of files; thousands means the wrong folder was chosen."""
SHARD = re.compile(r"^(?P<stem>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$")


def shards_of(path: Path) -> list[Path]:
    """`path` and, for the first file of a split GGUF, the other shards beside it."""
    found = SHARD.match(path.name)
    if found is None:
        return [path]
    count = int(found["count"])
    return [path.with_name(f"{found['stem']}-{i:05d}-of-{count:05d}.gguf")
            for i in range(1, count + 1)]


class ModelMounts:
    """Maps host paths to container paths and lists the mounts that make them exist.

    `in_container=False` (a local process): paths are used as they are. `local`: the
    paths are on this machine, so links are followed and single files mounted; otherwise
    (a remote host) each parent folder is mounted once.
    """

    def __init__(self, in_container: bool, *, local: bool = True) -> None:
        self.in_container = in_container
        self.local = local
        self._folders: dict[str, str] = {}
        self._mounts: dict[str, Mount] = {}

    def file(self, host_path: str) -> str:
        """The path the engine should open for the host file `host_path`."""
        if not self.in_container:
            return host_path
        path = PurePosixPath(host_path)
        folder = self._target(str(path.parent))
        if not self.local:
            self._mount(str(path.parent), folder)
            return f"{folder}/{path.name}"
        for shard in shards_of(Path(host_path)):
            if shard.name == path.name or shard.exists():
                self._mount(os.path.realpath(shard), f"{folder}/{shard.name}")
        return f"{folder}/{path.name}"

    def folder(self, host_path: str) -> str:
        """The path the engine should open for the host folder `host_path`.

        Raises:
            PlanError: the folder holds more files than any model does.
        """
        if not self.in_container:
            return host_path
        root = host_path.rstrip("/") or "/"
        target = self._target(root)
        if not self.local:
            self._mount(root, target)
            return target
        files = []
        for where, _dirs, names in os.walk(root, followlinks=True):
            files += [Path(where) / name for name in names]
            if len(files) > MAX_FOLDER_FILES:
                raise PlanError(f"{root} holds over {MAX_FOLDER_FILES} files: choose the "
                                "model's own folder")
        for path in files:
            relative = path.relative_to(root).as_posix()
            self._mount(os.path.realpath(path), f"{target}/{relative}")
        return target

    def _target(self, folder: str) -> str:
        if folder not in self._folders:
            self._folders[folder] = f"{MODELS_ROOT}/m{len(self._folders)}"
        return self._folders[folder]

    def _mount(self, source: str, target: str) -> None:
        self._mounts.setdefault(target, Mount(source, target, True))

    @property
    def mounts(self) -> tuple[Mount, ...]:
        return tuple(self._mounts.values())

    def user(self) -> str:
        """Who the engine runs as: the owner of the mounted files (never root), else nobody.

        Raises:
            PlanError: a file only root may read (the engine does not run as root).
        """
        if not self.local or not self._mounts:
            return NOBODY
        found = {m.source: _stat(m) for m in self._mounts.values()}
        known = {source: st for source, st in found.items() if st is not None}
        owners = {(st.st_uid, st.st_gid) for st in known.values()}
        if len(owners) == 1 and next(iter(owners))[0] != 0:
            uid, gid = next(iter(owners))
            return f"{uid}:{gid}"
        for source, st in known.items():  # nobody must be able to read each one
            if not st.st_mode & stat.S_IROTH:
                raise PlanError(f"{source} is readable only by its owner, and backends "
                                "do not run as root: make it readable (chmod a+r)")
        return NOBODY


def _stat(mount: Mount) -> os.stat_result | None:
    """The file's status; None when it is not here (a path checked later, or elsewhere)."""
    try:
        return Path(mount.source).stat()
    except OSError:
        return None
