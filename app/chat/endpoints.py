"""Saved chat endpoints: a name, a base URL and, if the server wants one, an API key.

The key never touches the file: it is kept in the OS keyring under `endpoint:<name>`
(app.secrets). Until the Backends service exists, this is how the chat finds servers;
Rigdeck's own backends will be offered beside these.
"""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from app.chat.base_url import normalise_base_url
from app.errors import UserError
from app.secrets import SecretStore

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
    """endpoints.toml in the config folder, one [[endpoint]] table each."""

    def __init__(self, path: Path, secrets: SecretStore) -> None:
        self.path = path
        self.secrets = secrets

    def all(self) -> list[Endpoint]:
        try:
            data = tomllib.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, tomllib.TOMLDecodeError) as exc:
            log.warning("ignoring unreadable %s: %s", self.path, exc)
            return []
        return [Endpoint(str(e["name"]), str(e["url"]), bool(e.get("has_key", False)))
                for e in data.get("endpoint", []) if "name" in e and "url" in e]

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
            UserError: a bad URL, or the keyring cannot store the key.
        """
        try:
            url = normalise_base_url(url)
        except ValueError as exc:
            raise UserError(f"{exc}: an endpoint looks like http://127.0.0.1:8080") from None
        if api_key:
            self.secrets.set(f"endpoint:{name}", api_key)
        endpoint = Endpoint(name, url, has_key=bool(api_key))
        others = [e for e in self.all() if e.name != name]
        self._write([*others, endpoint])
        return endpoint

    def remove(self, name: str) -> None:
        self.secrets.delete(f"endpoint:{name}")
        self._write([e for e in self.all() if e.name != name])

    def api_key(self, endpoint: Endpoint) -> str | None:
        return self.secrets.get(endpoint.secret_name) if endpoint.has_key else None

    def _write(self, endpoints: list[Endpoint]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"endpoint": [{"name": e.name, "url": e.url, "has_key": e.has_key}
                             for e in endpoints]}
        self.path.write_text(tomli_w.dumps(data), encoding="utf-8")
