"""The role chip of the Chat page: pick a role; roles the backend cannot serve are shown
disabled with the reason; the chosen role's request fields are ready before Send.

A swap costs no request to the server on llama.cpp (the adapters' ids are known from the
check), so Send right after a swap is not delayed; a vLLM adapter that is not loaded yet
is loaded once, on the task runner, when the role is chosen.
"""

from __future__ import annotations

import logging

import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap, QStandardItemModel
from PySide6.QtWidgets import QComboBox

from app.roles.binding import bind_role_at
from app.roles.check import BackendRoles
from app.roles.requests import BASE_MODEL, RoleRequest, role_request
from app.roles.role import Role, RoleError
from app.roles.served import NO_LORA
from ui.role_feed import NO_ROLE, RoleFeed

log = logging.getLogger(__name__)

NONE_LABEL = "Role: none"


def colour_dot(colour: str, size: int = 12) -> QIcon:
    """A filled circle in the role's colour, for lists and menus."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setBrush(QColor(colour))
    painter.setPen(Qt.PenStyle.NoPen)
    painter.drawEllipse(1, 1, size - 2, size - 2)
    painter.end()
    return QIcon(pixmap)


class RoleChipWidget(QComboBox):
    """Follows `RoleFeed.chosen`; a user's pick goes back to the feed."""

    def __init__(self, feed: RoleFeed) -> None:
        super().__init__()
        self.feed = feed
        self.backend: BackendRoles | None = None
        self._url: str | None = None
        self._key: str | None = None
        self._bound: dict[str, RoleRequest] = {}
        """vLLM roles whose adapter was loaded at run time, by name."""
        self._load_failed: dict[str, str] = {}
        """vLLM roles whose adapter the backend refused to load, with its reason."""
        self.setToolTip("The role of this conversation and of new ones: a LoRA adapter, "
                        "a system prompt and sampling (edit them on the Roles page).")
        self.activated.connect(self._on_self_activated)
        feed.changed.connect(self._on_feed_changed)
        feed.chosen.connect(self._on_feed_chosen)
        self._fill()

    # ------------------------------------------------------------------ list
    def _fill(self) -> None:
        self.blockSignals(True)
        self.clear()
        self.addItem(NONE_LABEL, NO_ROLE)
        for role in self.feed.roles().values():
            self.addItem(colour_dot(role.colour), role.label, role.name)
            self.setItemData(self.count() - 1, role.description or role.name,
                             Qt.ItemDataRole.ToolTipRole)
        self._apply_availability()
        index = self.findData(self.feed.current)
        self.setCurrentIndex(max(index, 0))
        self.blockSignals(False)

    def _apply_availability(self) -> None:
        model = self.model()
        assert isinstance(model, QStandardItemModel)
        for row in range(1, self.count()):
            reason = self.reason(str(self.itemData(row)))
            item = model.item(row)
            item.setEnabled(reason is None)
            if reason is not None:
                item.setToolTip(f"Not available on this backend: {reason}")

    def reason(self, name: str) -> str | None:
        """Why the checked backend cannot serve role `name` (None: it can, or unchecked)."""
        verdict = self.backend.availability.get(name) if self.backend else None
        if verdict is not None and not verdict.ok:
            return verdict.reason
        return self._load_failed.get(name)

    def _on_feed_changed(self) -> None:
        self._fill()
        if self._url is not None:
            self.set_backend(self._url, self._key)

    def _on_feed_chosen(self, name: str) -> None:
        self.blockSignals(True)
        self.setCurrentIndex(max(self.findData(name), 0))
        self.blockSignals(False)
        self._prepare(name)

    def _on_self_activated(self, index: int) -> None:
        self.feed.choose(str(self.itemData(index)))

    # ------------------------------------------------------------------ backend
    def set_backend(self, url: str, api_key: str | None) -> None:
        """Check every role against the backend at `url` (on the task runner)."""
        self._url, self._key = url, api_key
        self.backend = None  # what another backend served says nothing about this one
        self._apply_availability()
        self.feed.check_backend(url, api_key, self._on_backend_checked,
                                self._on_backend_check_failed)

    def _on_backend_checked(self, result: BackendRoles) -> None:
        if not shiboken6.isValid(self) or result.url != self._url:
            return
        self.backend = result
        self._bound.clear()
        self._load_failed.clear()
        self._apply_availability()
        self._prepare(self.feed.current)

    def _on_backend_check_failed(self, error: BaseException) -> None:
        log.info("role check of %s failed: %s", self._url, error)

    def _prepare(self, name: str) -> None:
        """Load a vLLM adapter the chosen role needs, once, off the GUI thread."""
        role = self.feed.roles().get(name)
        backend = self.backend
        if role is None or backend is None:
            return
        verdict = backend.availability.get(name)
        if verdict is None or not verdict.to_load or name in self._bound:
            return
        url, key = backend.url, self._key
        self._load_failed.pop(name, None)

        def job() -> RoleRequest:
            return bind_role_at(url, key, role, backend.served)

        def failed(error: BaseException) -> None:
            log.info("loading the adapter of role %s failed: %s", name, error)
            self._load_failed[name] = str(error)
            if shiboken6.isValid(self):
                self._apply_availability()

        self.feed.tasks.run(job, description=f"Loading the adapter of role {name}",
                            on_done=lambda bound: self._bound.__setitem__(name, bound),
                            on_error=failed)

    # ------------------------------------------------------------------ sending
    def current_role(self) -> Role | None:
        return self.feed.roles().get(str(self.currentData()))

    def role_request(self) -> RoleRequest | None:
        """The request fields of the chosen role (None: no role and nothing to switch off).

        Raises:
            RoleError: the backend cannot serve it (yet); the message says why.
        """
        role = self.current_role()
        if role is None:
            served = self.backend.served if self.backend is not None else None
            if served is not None and served.engine == "llamacpp" and served.adapters:
                return role_request(BASE_MODEL, served)  # adapters off, not at scale 1
            return None
        if role.name in self._bound:
            return self._bound[role.name]
        reason = self.reason(role.name)
        if reason is not None:
            raise RoleError(f"role {role.name!r} is not available on this backend: {reason}")
        if self.backend is None:
            if role.adapters:
                raise RoleError(f"role {role.name!r} needs a backend that serves its "
                                "adapters; choose a reachable backend first")
            return role_request(role, NO_LORA)
        verdict = self.backend.availability.get(role.name)
        if verdict is not None and verdict.to_load:
            raise RoleError(f"the adapter of role {role.name!r} is still being loaded")
        return role_request(role, self.backend.served)
