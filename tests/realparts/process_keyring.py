"""A keyring backend that keeps passwords in this process, standing in for the OS keyring
(this machine has no Secret Service); Rigdeck's SecretStore talks to it through the real
`keyring` package, as it would to the OS one."""

from __future__ import annotations

import keyring
import keyring.backend
import keyring.errors


class ProcessKeyring(keyring.backend.KeyringBackend):
    priority = 1

    def __init__(self) -> None:  # the base __init__ only reads keyring's env settings
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if (service, username) not in self.store:
            raise keyring.errors.PasswordDeleteError(username)
        del self.store[(service, username)]
