"""API keys and tokens, kept only in the operating system's keyring.

If no keyring backend works (a headless Linux without a Secret Service, say), storing is
refused with a message that says so: a secret never falls back to a plain-text file.
"""

import contextlib
import logging

import keyring
import keyring.backend
import keyring.errors
from keyring.backends import fail

from app.errors import UserError

log = logging.getLogger(__name__)

SERVICE = "rigdeck"


class SecretStoreUnavailableError(UserError):
    """No working keyring backend: secrets cannot be stored safely here."""


class SecretStore:
    """Reads and writes secrets under one keyring service name."""

    def __init__(self, service: str = SERVICE) -> None:
        self.service = service

    def backend(self) -> keyring.backend.KeyringBackend:
        return keyring.get_keyring()

    def unavailable_reason(self) -> str | None:
        """Why secrets cannot be stored here, or None when a keyring works."""
        backend = self.backend()
        if isinstance(backend, fail.Keyring) or backend.priority <= 0:
            return (
                "No system keyring is available (no Secret Service, KWallet, macOS Keychain "
                "or Windows Credential Manager was found), so Rigdeck will not store API keys "
                "or tokens. Install and unlock a keyring (for example gnome-keyring) and restart."
            )
        return None

    def _require_backend(self) -> None:
        reason = self.unavailable_reason()
        if reason:
            raise SecretStoreUnavailableError(reason)

    def set(self, name: str, value: str) -> None:
        """Store secret `name`.

        Raises:
            SecretStoreUnavailableError: no keyring works, or the keyring refused the write.
        """
        self._require_backend()
        try:
            keyring.set_password(self.service, name, value)
        except keyring.errors.KeyringError as exc:
            raise SecretStoreUnavailableError(
                f"The keyring refused to store {name!r}: {exc}"
            ) from exc
        log.info("stored secret %r in %s", name, type(self.backend()).__name__)

    def get(self, name: str) -> str | None:
        """The secret `name`, or None when it is not stored or no keyring works."""
        if self.unavailable_reason():
            return None
        try:
            return keyring.get_password(self.service, name)
        except keyring.errors.KeyringError as exc:
            log.warning("could not read secret %r: %s", name, exc)
            return None

    def delete(self, name: str) -> None:
        """Forget secret `name` (nothing happens if it is not stored)."""
        if self.unavailable_reason():
            return
        with contextlib.suppress(keyring.errors.PasswordDeleteError):
            keyring.delete_password(self.service, name)
