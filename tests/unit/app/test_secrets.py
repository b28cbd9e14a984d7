"""Secrets live in the OS keyring only; without one, storing is refused, never written to disk."""

from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backend
import pytest

from app.paths import AppPaths
from app.secrets import SecretStore, SecretStoreUnavailableError


class _ProcessKeyring(keyring.backend.KeyringBackend):
    """A keyring backend that keeps passwords in this process, standing in for the OS one."""

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


@pytest.fixture
def working_keyring() -> Iterator[_ProcessKeyring]:
    previous = keyring.get_keyring()
    backend = _ProcessKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.mark.usefixtures("no_keyring")
def test_without_a_keyring_storing_is_refused_with_the_reason(app_paths: AppPaths) -> None:
    store = SecretStore()

    with pytest.raises(SecretStoreUnavailableError, match="No system keyring is available"):
        store.set("backend-key", "sk-123456")

    assert store.get("backend-key") is None
    written = [p for p in Path(app_paths.config).parent.rglob("*") if p.is_file()]
    assert all("sk-123456" not in p.read_text(errors="ignore") for p in written)


def test_with_a_keyring_secrets_round_trip(working_keyring: _ProcessKeyring) -> None:
    store = SecretStore()
    assert store.unavailable_reason() is None

    store.set("backend-key", "sk-abc")
    assert store.get("backend-key") == "sk-abc"
    assert working_keyring.store == {("rigdeck", "backend-key"): "sk-abc"}

    store.delete("backend-key")
    store.delete("backend-key")  # deleting twice is harmless
    assert store.get("backend-key") is None
