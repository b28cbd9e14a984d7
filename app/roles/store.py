"""The roles on disk: the shipped defaults (resources/roles/) overlaid with the user's.

The user's own roles, and edited copies of the defaults, live in <config>/roles/ and win
by name, like presets do; a role can be exported to a file and imported from one.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import replace
from importlib import resources
from pathlib import Path

from app.roles.role import Role, RoleError, role_from_toml
from app.user_files import (
    UserFileError,
    folder_lock,
    read_folder,
    read_text,
    saving_failed,
    write_atomically,
)

log = logging.getLogger(__name__)


def file_name(name: str) -> str:
    """The file a role of this name is saved as.

    Raises:
        RoleError: the name has no letter or digit to make a file name from.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    if not slug:
        raise RoleError(f"a role needs a name with letters or digits, not {name!r}")
    return f"{slug}.toml"


class RoleStore:
    """The shipped roles overlaid with the user's; `problems` lists the user's files that
    could not be read (each by path and why), refreshed by every `all()`."""

    def __init__(self, user_folder: Path) -> None:
        self.user_folder = user_folder
        self.problems: list[str] = []

    def _builtin(self) -> dict[str, Role]:
        found: dict[str, Role] = {}
        folder = resources.files("resources") / "roles"
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".toml"):
                role = role_from_toml(entry.read_text(encoding="utf-8"), builtin=True,
                                      source=entry.name)
                found[role.name] = role
        return found

    def _user_files(self) -> tuple[dict[Path, Role], dict[Path, str]]:
        """The user's role files: those read (path → role) and those not (path → why)."""
        return read_folder(self.user_folder,
                           lambda text, source: role_from_toml(text, source=source),
                           "role", (RoleError,))

    def all(self) -> dict[str, Role]:
        """Every role by name: shipped ones first (in file order), then the user's."""
        roles = self._builtin()
        found, bad = self._user_files()
        self.problems = list(bad.values())
        for problem in self.problems:
            log.info("%s", problem)  # said by the caller: the window, `rigdeck problems`
        for role in found.values():
            roles[role.name] = replace(role, builtin=role.name in roles)
        return roles

    def get(self, name: str) -> Role:
        """Raises RoleError if there is no role of that name (saying which files could not
        be read: the role may be in one of them)."""
        roles = self.all()
        try:
            return roles[name]
        except KeyError:
            unread = (f"; {len(self.problems)} role file(s) could not be read: "
                      + "; ".join(self.problems)) if self.problems else ""
            raise RoleError(f"no role named {name!r} (known: {', '.join(roles)}){unread}"
                            ) from None

    def save(self, role: Role, *, replaces: str | None = None) -> Path:
        """Write `role` to the user folder; `replaces` is its old name when renamed.

        The role goes to the file that holds it already, else to the file its name makes;
        a file holding another role, or one that cannot be read, is never overwritten.

        Raises:
            RoleError: the name makes no file name, the file is another role's, or the
                disk is full (the old file is then unchanged).
        """
        with folder_lock(self.user_folder):
            found, bad = self._user_files()
            keep = {role.name, replaces} - {None}
            holding = [p for p, r in found.items() if r.name in keep]
            path = next((p for p, r in found.items() if r.name == role.name), None)
            path = path or self._free_path(role.name, found, bad, keep)
            try:
                write_atomically(path, role.to_toml().encode("utf-8"))
            except OSError as exc:
                raise RoleError(str(saving_failed(f"role {role.name!r}", path, exc))
                                ) from exc
            for old in holding:
                if old != path:
                    old.unlink(missing_ok=True)
        return path

    def _free_path(self, name: str, found: dict[Path, Role], bad: dict[Path, str],
                   keep: set[str | None]) -> Path:
        """The file a new role `name` is written to, if no other role's file is there."""
        path = self.user_folder / file_name(name)
        if path in bad:
            raise RoleError(f"role {name!r} would be saved as {path}, which is there but "
                            f"cannot be read ({bad[path]}); nothing was overwritten: fix "
                            "or remove that file first")
        if path in found and found[path].name not in keep:
            raise RoleError(f"role {name!r} would be saved as {path.name}, the file of your "
                            f"role {found[path].name!r} (their names make the same file "
                            "name); nothing was overwritten: give the role another name")
        if path not in found and os.path.lexists(path):
            raise RoleError(f"{path} is there but is no role file; nothing was "
                            "overwritten: remove it first")
        return path

    def delete(self, name: str) -> None:
        """Delete the user's role (for an edited default: back to the shipped one).

        Raises:
            RoleError: there is no user file of that name.
        """
        with folder_lock(self.user_folder):
            paths = [p for p, r in self._user_files()[0].items() if r.name == name]
            if not paths:
                raise RoleError(f"{name!r} is not one of your roles (shipped roles stay)")
            for path in paths:
                path.unlink(missing_ok=True)

    def import_file(self, path: Path, *, overwrite: bool = False) -> Role:
        """Read a role file and keep it as the user's. Never overwrites another role: a
        name that makes the file name of another role is refused.

        Raises:
            RoleError: the file cannot be read, is not a role, or the name (or the file
                name it makes) is taken.
        """
        try:
            text = read_text(path)
        except UserFileError as exc:
            raise RoleError(f"cannot read role file {exc}") from exc
        if text is None:
            raise RoleError(f"cannot read role file {path}: there is no such file")
        role = role_from_toml(text, source=str(path))
        with folder_lock(self.user_folder):
            if not overwrite and role.name in self.all():
                raise RoleError(f"a role named {role.name!r} already exists; rename it in "
                                f"{path.name} or replace the existing one")
            try:
                self.save(role)
            except RoleError as exc:
                raise RoleError(f"cannot import {path}: {exc}") from None
        return replace(role, builtin=False)

    def export_file(self, name: str, path: Path) -> Path:
        """Write role `name` to `path` as TOML.

        Raises:
            RoleError: no such role, or the file cannot be written.
        """
        role = self.get(name)
        try:
            write_atomically(path, role.to_toml().encode("utf-8"), create_folder=False)
        except OSError as exc:
            raise RoleError(f"cannot write {path}: {exc.strerror or exc}") from exc
        return path
