"""Secrets live in the OS keyring only; without one, storing is refused, never written to disk."""

from pathlib import Path

import pytest

from app.paths import AppPaths
from app.secrets import SecretStore, SecretStoreUnavailableError
from tests.realparts.process_keyring import ProcessKeyring


@pytest.mark.usefixtures("no_keyring")
def test_without_a_keyring_storing_is_refused_with_the_reason(app_paths: AppPaths) -> None:
    store = SecretStore()

    with pytest.raises(SecretStoreUnavailableError, match="No system keyring is available"):
        store.set("backend-key", "sk-123456")

    assert store.get("backend-key") is None
    written = [p for p in Path(app_paths.config).parent.rglob("*") if p.is_file()]
    assert all("sk-123456" not in p.read_text(errors="ignore") for p in written)


def test_with_a_keyring_secrets_round_trip(working_keyring: ProcessKeyring) -> None:
    store = SecretStore()
    assert store.unavailable_reason() is None

    store.set("backend-key", "sk-abc")
    assert store.get("backend-key") == "sk-abc"
    assert working_keyring.store == {("rigdeck", "backend-key"): "sk-abc"}

    store.delete("backend-key")
    store.delete("backend-key")  # deleting twice is harmless
    assert store.get("backend-key") is None
