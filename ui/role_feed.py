"""RoleFeed: the roles seen from the GUI, and the role chosen for conversations.

Owns the `RoleStore`; `changed` tells the Roles page, the Chat page and the tray that the
list changed; `chosen` carries the role the user picked (on the Roles page, a Chat chip
or the tray) for the current conversation and new ones. Checking a role against a
backend reads adapter files and asks the server, and judging the roles for a model reads
file headers, so both run on the task runner.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.chat.service import ChatService
from app.errors import UserError
from app.roles.check import BackendRoles, check_roles
from app.roles.launch import ModelRoles, relaunch_with_roles, roles_for_model
from app.roles.role import Role
from app.roles.store import RoleStore
from app.runtime.backend import Backend
from ui.tasks import TaskRunner

log = logging.getLogger(__name__)

NO_ROLE = ""
"""The name `chosen` carries for "no role" (the plain base model, no system prompt)."""
NO_ROLE_LABEL = "No role"


class RoleFeed(QObject):
    """The roles and the chosen one; every blocking step goes through the task runner."""

    changed = Signal()
    chosen = Signal(str)
    """The role name (NO_ROLE for none) for the current conversation and new ones."""

    def __init__(self, store: RoleStore, tasks: TaskRunner, chat: ChatService) -> None:
        super().__init__()
        self.store = store
        self.tasks = tasks
        self.chat = chat
        """Which backend a URL is (a Rigdeck backend's plan and key say what its API does
        not), and the relaunch of one with roles."""
        self.current = NO_ROLE

    def roles(self) -> dict[str, Role]:
        return self.store.all()

    def choose(self, name: str) -> None:
        """Make `name` the role of the current conversation and of new ones."""
        if name != self.current:
            self.current = name
            self.chosen.emit(name)

    def save(self, role: Role, *, replaces: str | None = None) -> None:
        """Raises RoleError: the name cannot be a file name."""
        self.store.save(role, replaces=replaces)
        if replaces and self.current == replaces != role.name:
            self.choose(role.name)
        self.changed.emit()

    def delete(self, name: str) -> None:
        """Raises RoleError: not one of the user's roles."""
        self.store.delete(name)
        if name == self.current and name not in self.store.all():
            self.choose(NO_ROLE)
        self.changed.emit()

    def add_from(self, change: Callable[[RoleStore], object]) -> None:
        """Run a store change (import) and tell everyone; RoleError passes through."""
        change(self.store)
        self.changed.emit()

    def check_backend(self, url: str, api_key: str | None,
                      on_done: Callable[[BackendRoles], None],
                      on_error: Callable[[BaseException], None] | None = None) -> None:
        """Ask the backend at `url` what it serves, and judge every role against it.

        For a backend Rigdeck started, its plan adds the model (compatibility) and vLLM's
        --max-lora-rank and runtime loading; for a bare URL the model is not known.
        """
        roles = list(self.roles().values())
        chat = self.chat

        def job() -> BackendRoles:
            target = chat.resolve(url)
            return check_roles(roles, url, api_key or chat.api_key(target), target.plan)

        self.tasks.run(job, description=f"Asking {url} which LoRA adapters it serves",
                       on_done=on_done, on_error=on_error)

    def backend_at(self, url: str) -> Backend | None:
        """The running Rigdeck backend that serves `url`, if one does."""
        try:
            return self.chat.resolve(url).backend
        except UserError:
            return None

    def relaunch_with_roles(self, backend: Backend, needed: str,
                            on_done: Callable[[Backend], None],
                            on_error: Callable[[BaseException], None]) -> None:
        """Relaunch `backend` with every role that fits its model preloaded (`needed`
        among them, or RoleError), on the task runner; `on_done` once it is ready."""
        service = self.chat.backends
        roles = list(self.roles().values())
        self.tasks.run(lambda: relaunch_with_roles(service, backend, roles, needed=[needed],
                                                   wait=True).backend,
                       description=f"Relaunching {backend.name} with role {needed}",
                       on_done=on_done, on_error=on_error)

    def roles_for_model(self, model_path: str, on_done: Callable[[ModelRoles], None],
                        on_error: Callable[[BaseException], None] | None = None) -> None:
        """Judge every role with adapters against the model at `model_path` (the Start
        dialog's preload list); reads the model's and adapters' headers on the runner."""
        roles = list(self.roles().values())
        self.tasks.run(lambda: roles_for_model(roles, model_path),
                       description=f"Reading which roles fit {Path(model_path).name}",
                       on_done=on_done, on_error=on_error)


def tray_role_entries(feed: RoleFeed) -> tuple[list[tuple[str, object]], str]:
    """The tray's Roles menu: "No role" and every role, each choosing itself; and the
    label of the current one (checked)."""
    entries: list[tuple[str, object]] = [(NO_ROLE_LABEL, lambda _=False: feed.choose(NO_ROLE))]
    current = NO_ROLE_LABEL
    for role in feed.roles().values():
        entries.append((role.label, lambda _=False, n=role.name: feed.choose(n)))
        if role.name == feed.current:
            current = role.label
    return entries, current
