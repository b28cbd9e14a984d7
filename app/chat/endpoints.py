"""Saved chat endpoints: a name, a base URL and, if the server wants one, an API key.

The key never touches the file: it is kept in the OS keyring under `endpoint:<name>`
(app.secrets). Until the Backends service exists, this is how the chat finds servers;
Rigdeck's own backends will be offered beside these.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from app.chat.base_url import normalise_base_url
from app.errors import UserError
from app.secrets import SecretStore
from app.user_files import (
    UserFileError,
    folder_lock,
    read_toml,
    saving_failed,
    write_atomically,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Endpoint:
    name: str
    url: str
    has_key: bool = False

    @property
    def secret_name(self) -> str:
        return f"endpoint:{self.name}"


class EndpointStore:
    """endpoints.toml in the config folder, one [[endpoint]] table each.

    `problems` says what of the file could not be read (refreshed by every `all()`). An
    entry that is not an endpoint is kept in the file as it is when others are saved;
    while the whole file cannot be read, saving is refused rather than overwriting it.
    """

    def __init__(self, path: Path, secrets: SecretStore) -> None:
        self.path = path
        self.secrets = secrets
        self.problems: list[str] = []

    def all(self) -> list[Endpoint]:
        return self._read()[0]

    def _read(self) -> tuple[list[Endpoint], list[Any]]:
        """The endpoints, and the entries that are not endpoints (kept as they are).

        Raises nothing: problems go to `problems`.
        """
        self.problems = []
        try:
            data = read_toml(self.path)
        except UserFileError as exc:
            self._problem(f"saved endpoints {exc}")
            return [], []
        entries = (data or {}).get("endpoint", [])
        if not isinstance(entries, list):
            self._problem(f"saved endpoints {self.path}: endpoint must be a list of tables "
                          "([[endpoint]])")
            return [], []
        found: list[Endpoint] = []
        kept: list[Any] = []
        for number, entry in enumerate(entries, 1):
            endpoint = _endpoint(entry)
            if endpoint is None:
                self._problem(f"saved endpoints {self.path}: entry {number} is no endpoint "
                              "(a name and a url, as text); left in the file as it is")
                kept.append(entry)
            else:
                found.append(endpoint)
        return found, kept

    def _problem(self, text: str) -> None:
        self.problems.append(text)
        log.info("%s", text)  # said by the caller: the window at start, `rigdeck problems`

    def get(self, name: str) -> Endpoint:
        """Raises UserError when no endpoint has that name."""
        for endpoint in self.all():
            if endpoint.name == name:
                return endpoint
        known = ", ".join(e.name for e in self.all()) or "none saved yet"
        raise UserError(f"no saved endpoint named {name!r} ({known}); use --url, or save "
                        "one on the Chat page")

    def save(self, name: str, url: str, api_key: str | None = None) -> Endpoint:
        """Add or replace an endpoint; an API key goes to the keyring.

        Raises:
            UserError: a bad URL, the keyring cannot store the key, or the file cannot be
                read or written (it is then unchanged).
        """
        try:
            url = normalise_base_url(url)
        except ValueError as exc:
            raise UserError(f"{exc}: an endpoint looks like http://127.0.0.1:8080") from None
        with folder_lock(self.path.parent):
            endpoints, kept = self._readable()
            if api_key:
                self.secrets.set(f"endpoint:{name}", api_key)
            endpoint = Endpoint(name, url, has_key=bool(api_key))
            others = [e for e in endpoints if e.name != name]
            self._write([*others, endpoint], kept)
        return endpoint

    def remove(self, name: str) -> None:
        """Raises UserError: the file cannot be read or written (it is then unchanged)."""
        with folder_lock(self.path.parent):
            endpoints, kept = self._readable()
            self.secrets.delete(f"endpoint:{name}")
            self._write([e for e in endpoints if e.name != name], kept)

    def api_key(self, endpoint: Endpoint) -> str | None:
        return self.secrets.get(endpoint.secret_name) if endpoint.has_key else None

    def _readable(self) -> tuple[list[Endpoint], list[Any]]:
        """As `_read`, for a change of the file: one that cannot be read is not replaced."""
        endpoints, kept = self._read()
        if self.problems and not kept:
            raise UserError(f"{self.problems[0]}; fix or remove the file, then save again "
                            "(it was left as it is)")
        return endpoints, kept

    def _write(self, endpoints: list[Endpoint], kept: list[Any]) -> None:
        data = {"endpoint": [*({"name": e.name, "url": e.url, "has_key": e.has_key}
                               for e in endpoints), *kept]}
        try:
            write_atomically(self.path, tomli_w.dumps(data).encode("utf-8"))
        except OSError as exc:
            raise saving_failed("the saved endpoints", self.path, exc) from exc


def _endpoint(entry: Any) -> Endpoint | None:
    """The endpoint an [[endpoint]] table holds, or None if it holds none."""
    if not isinstance(entry, dict):
        return None
    name, url, has_key = entry.get("name"), entry.get("url"), entry.get("has_key", False)
    if not (isinstance(name, str) and name and isinstance(url, str) and url
            and isinstance(has_key, bool)):
        return None
    return Endpoint(name, url, has_key)
