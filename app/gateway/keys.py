"""Gateway keys: what n8n, agents and scripts send as their OpenAI API key.

A key is made here (random, `rdk-` and 43 URL-safe characters), named by the user, and kept
in the OS keyring under `gateway-key:<name>` so the window can show it again; the file
gateway_keys.toml in the config folder holds only names, dates and each key's SHA-256,
which is what a request is checked against. Backends' own keys never leave Rigdeck: a
client only ever holds a gateway key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from app.errors import UserError
from app.secrets import SecretStore
from app.user_files import UserFileError, folder_lock, read_toml, saving_failed, write_atomically

PREFIX = "rdk-"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.@-]{0,63}$")


@dataclass(frozen=True)
class GatewayKey:
    """One key as listed: never the key itself, which only the keyring holds."""

    name: str
    created: float
    sha256: str
    hint: str
    """The key's last four characters, to tell keys apart in a list."""


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class GatewayKeys:
    """gateway_keys.toml plus the keyring; `problems` as the other stores have it."""

    def __init__(self, path: Path, store: SecretStore) -> None:
        self.path = path
        self.store = store
        self.problems: list[str] = []
        self._cache: tuple[float, dict[str, str]] | None = None

    def all(self) -> list[GatewayKey]:
        self.problems = []
        try:
            data = read_toml(self.path) or {}
        except UserFileError as exc:
            self.problems.append(f"gateway keys {exc}")
            return []
        keys = []
        for entry in data.get("key", []) if isinstance(data.get("key"), list) else []:
            try:
                keys.append(GatewayKey(str(entry["name"]), float(entry["created"]),
                                       str(entry["sha256"]), str(entry.get("hint", ""))))
            except (KeyError, TypeError, ValueError):
                self.problems.append(f"gateway keys {self.path}: an entry without name, "
                                     "created and sha256 was skipped")
        return keys

    def create(self, name: str) -> str:
        """Make a key named `name`, keep it, and return it (shown to the user once here,
        and later again from the keyring).

        Raises:
            UserError: a bad or taken name, no keyring, or the file cannot be written.
        """
        name = name.strip()
        if not NAME_RE.match(name):
            raise UserError(f"a key name is 1 to 64 letters, digits, spaces or _.@- (not "
                            f"{name!r}), e.g. n8n or coding-agent")
        with folder_lock(self.path.parent):
            keys = self._writable()
            if any(k.name == name for k in keys):
                raise UserError(f"a gateway key named {name!r} exists; revoke it first or "
                                "choose another name")
            key = PREFIX + secrets.token_urlsafe(32)
            self.store.set(self._secret(name), key)  # refused when no keyring works
            entry = GatewayKey(name, time.time(), _digest(key), key[-4:])
            self._write([*keys, entry])
        return key

    def revoke(self, name: str) -> None:
        """Raises UserError: no key of that name, or the file cannot be written."""
        with folder_lock(self.path.parent):
            keys = self._writable()
            if not any(k.name == name for k in keys):
                known = ", ".join(k.name for k in keys) or "none"
                raise UserError(f"no gateway key named {name!r} (keys: {known})")
            self._write([k for k in keys if k.name != name])
            self.store.delete(self._secret(name))

    def reveal(self, name: str) -> str:
        """The key itself, from the keyring.

        Raises:
            UserError: no such key, or the keyring no longer holds it.
        """
        if not any(k.name == name for k in self.all()):
            raise UserError(f"no gateway key named {name!r}")
        key = self.store.get(self._secret(name))
        if key is None:
            raise UserError(f"the keyring does not hold gateway key {name!r} any more; revoke "
                            "it and create a new one")
        return key

    def check(self, presented: str | None) -> str | None:
        """The name of the key `presented` is, or None."""
        if not presented:
            return None
        digest = _digest(presented)
        for known, name in self._known().items():
            if hmac.compare_digest(known, digest):
                return name
        return None

    def any(self) -> bool:
        """Whether any key exists (then every request must bring one)."""
        return bool(self._known())

    def _known(self) -> dict[str, str]:
        """Digest → name, read from the file at most once a second: a request must not
        wait on the disk each time; a key made or revoked applies within a second."""
        now = time.monotonic()
        if self._cache is None or now - self._cache[0] > 1.0:
            self._cache = (now, {k.sha256: k.name for k in self.all()})
        return self._cache[1]

    @staticmethod
    def _secret(name: str) -> str:
        return f"gateway-key:{name}"

    def _writable(self) -> list[GatewayKey]:
        keys = self.all()
        if self.problems and not keys and self.path.exists():
            raise UserError(f"{self.problems[0]}; fix or remove the file (it was left as it is)")
        return keys

    def _write(self, keys: list[GatewayKey]) -> None:
        data: dict[str, Any] = {"key": [{"name": k.name, "created": k.created,
                                         "sha256": k.sha256, "hint": k.hint} for k in keys]}
        try:
            write_atomically(self.path, tomli_w.dumps(data).encode("utf-8"))
        except OSError as exc:
            raise saving_failed("the gateway keys", self.path, exc) from exc
        self._cache = None
