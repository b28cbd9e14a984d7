"""API keys for backends: a fresh random key per backend, kept in the keyring.

Where no keyring works, the key is held only in this process's memory (and in the
container's environment, from which a later Rigdeck reads it back on re-attach); it is
never written to settings, logs or a command line. `persisted` says which, for the UI.
"""

from __future__ import annotations

import logging
import secrets

from app.secrets import SecretStore, SecretStoreUnavailableError

log = logging.getLogger(__name__)


class KeyKeeper:
    """Makes and remembers backend API keys under names like `backend:local:qwen3`."""

    def __init__(self, store: SecretStore) -> None:
        self._store = store
        self._memory: dict[str, str] = {}

    @property
    def persisted(self) -> bool:
        """Whether keys survive a restart of Rigdeck (a keyring works)."""
        return self._store.unavailable_reason() is None

    @property
    def not_persisted_reason(self) -> str | None:
        if self.persisted:
            return None
        return ("No keyring is available: backend API keys are kept in memory only and are "
                "not saved anywhere.")

    def new_key(self, ref: str) -> str:
        """A fresh key for backend `ref`, stored in the keyring when one works."""
        key = secrets.token_urlsafe(32)
        self._memory[ref] = key
        if self.persisted:
            try:
                self._store.set(ref, key)
            except SecretStoreUnavailableError as exc:
                log.info("API key of %s kept in memory only: %s", ref, exc)
        return key

    def remember(self, ref: str, key: str) -> None:
        """Hold a key read back from a running backend (re-attach)."""
        self._memory[ref] = key

    def get(self, ref: str) -> str | None:
        return self._memory.get(ref) or self._store.get(ref)

    def forget(self, ref: str) -> None:
        self._memory.pop(ref, None)
        self._store.delete(ref)
