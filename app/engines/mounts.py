"""Where model files appear inside a container: each host folder once, read-only."""

from __future__ import annotations

from pathlib import PurePosixPath

from app.engines.spec import Mount

MODELS_ROOT = "/models"


class ModelMounts:
    """Maps host paths to container paths, mounting each parent folder once (read-only).

    In a local process (`in_container=False`) paths are used as they are.
    """

    def __init__(self, in_container: bool) -> None:
        self.in_container = in_container
        self._folders: dict[str, str] = {}

    def file(self, host_path: str) -> str:
        """The path the engine should open for the host file `host_path`."""
        if not self.in_container:
            return host_path
        path = PurePosixPath(host_path)
        return f"{self._target(str(path.parent))}/{path.name}"

    def folder(self, host_path: str) -> str:
        """The path the engine should open for the host folder `host_path`."""
        if not self.in_container:
            return host_path
        return self._target(host_path.rstrip("/") or "/")

    def _target(self, folder: str) -> str:
        if folder not in self._folders:
            self._folders[folder] = f"{MODELS_ROOT}/m{len(self._folders)}"
        return self._folders[folder]

    @property
    def mounts(self) -> tuple[Mount, ...]:
        return tuple(Mount(source, target, True) for source, target in self._folders.items())
