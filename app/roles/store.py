"""The roles on disk: the shipped defaults (resources/roles/) overlaid with the user's.

The user's own roles, and edited copies of the defaults, live in <config>/roles/ and win
by name, like presets do; a role can be exported to a file and imported from one.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from importlib import resources
from pathlib import Path

from app.roles.role import Role, RoleError, role_from_toml

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
    """The shipped roles overlaid with the user's; `problems` lists files that failed."""

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

    def all(self) -> dict[str, Role]:
        """Every role by name: shipped ones first (in file order), then the user's."""
        roles = self._builtin()
        self.problems = []
        if self.user_folder.is_dir():
            for path in sorted(self.user_folder.glob("*.toml")):
                try:
                    role = role_from_toml(path.read_text(encoding="utf-8"), source=str(path))
                except (RoleError, OSError) as exc:
                    self.problems.append(str(exc))
                    log.warning("%s", exc)
                    continue
                roles[role.name] = replace(role, builtin=role.name in roles)
        return roles

    def get(self, name: str) -> Role:
        """Raises RoleError if there is no role of that name."""
        roles = self.all()
        try:
            return roles[name]
        except KeyError:
            raise RoleError(f"no role named {name!r} (known: {', '.join(roles)})") from None

    def save(self, role: Role, *, replaces: str | None = None) -> Path:
        """Write `role` to the user folder; `replaces` is its old name when renamed."""
        self.user_folder.mkdir(parents=True, exist_ok=True)
        path = self.user_folder / file_name(role.name)
        path.write_text(role.to_toml(), encoding="utf-8")
        if replaces and replaces != role.name:
            old = self.user_folder / file_name(replaces)
            if old.exists() and old != path:
                old.unlink()
        return path

    def delete(self, name: str) -> None:
        """Delete the user's role (for an edited default: back to the shipped one).

        Raises:
            RoleError: there is no user file of that name.
        """
        path = self.user_folder / file_name(name)
        if not path.exists():
            raise RoleError(f"{name!r} is not one of your roles (shipped roles stay)")
        path.unlink()

    def import_file(self, path: Path, *, overwrite: bool = False) -> Role:
        """Read a role file and keep it as the user's.

        Raises:
            RoleError: the file cannot be read, is not a role, or the name is taken.
        """
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RoleError(f"cannot read role file {path}: {exc}") from exc
        role = role_from_toml(text, source=str(path))
        if not overwrite and role.name in self.all():
            raise RoleError(f"a role named {role.name!r} already exists; rename it in "
                            f"{path.name} or replace the existing one")
        self.save(role)
        return replace(role, builtin=False)

    def export_file(self, name: str, path: Path) -> Path:
        """Write role `name` to `path` as TOML.

        Raises:
            RoleError: no such role, or the file cannot be written.
        """
        role = self.get(name)
        try:
            path.write_text(role.to_toml(), encoding="utf-8")
        except OSError as exc:
            raise RoleError(f"cannot write {path}: {exc.strerror or exc}") from exc
        return path
