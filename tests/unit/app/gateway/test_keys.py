"""Gateway keys: made here, kept in the keyring, checked by their digest; a revoked key is
refused; without a keyring none can be made."""

from __future__ import annotations

import pytest

from app.errors import UserError
from app.gateway.keys import GatewayKeys
from app.paths import AppPaths
from app.secrets import SecretStore
from tests.realparts.process_keyring import ProcessKeyring


def keys(app_paths: AppPaths) -> GatewayKeys:
    return GatewayKeys(app_paths.config / "gateway_keys.toml", SecretStore())


def test_a_key_is_made_kept_checked_shown_again_and_revoked(
        app_paths: AppPaths, working_keyring: ProcessKeyring) -> None:
    store = keys(app_paths)
    key = store.create("n8n")
    assert key.startswith("rdk-")
    assert key not in (app_paths.config / "gateway_keys.toml").read_text()
    assert working_keyring.store[("rigdeck", "gateway-key:n8n")] == key
    assert store.check(key) == "n8n"
    assert store.check(key + "x") is None
    assert keys(app_paths).reveal("n8n") == key  # another process reads the same
    assert [(k.name, k.hint) for k in store.all()] == [("n8n", key[-4:])]
    with pytest.raises(UserError, match="exists"):
        store.create("n8n")
    store.revoke("n8n")
    assert store.check(key) is None
    assert not store.any()
    with pytest.raises(UserError, match="no gateway key named"):
        store.revoke("n8n")


@pytest.mark.usefixtures("working_keyring")
def test_a_bad_name_is_refused(app_paths: AppPaths) -> None:
    with pytest.raises(UserError, match="a key name is"):
        keys(app_paths).create("")


@pytest.mark.usefixtures("no_keyring")
def test_without_a_keyring_no_key_is_made_and_nothing_is_written(app_paths: AppPaths) -> None:
    with pytest.raises(UserError, match="No system keyring"):
        keys(app_paths).create("n8n")
    assert not (app_paths.config / "gateway_keys.toml").exists()
