"""A full disk while saving: the config folder on a 64 KiB tmpfs (mounting needs root, as
in CI). A role, a preset, the settings or an endpoint that does not fit is refused with a
clear message, and the file that was there is left whole."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from app.chat.endpoints import EndpointStore
from app.errors import UserError
from app.paths import AppPaths
from app.presets.presets import Preset, PresetError, PresetStore, RequestSettings
from app.roles.role import Role, RoleError
from app.roles.store import RoleStore
from app.secrets import SecretStore
from app.settings import SettingsStore
from tests.reliability.conftest import SmallDisk
from tests.reliability.user_files_cli import rigdeck

TOO_BIG = "x" * (200 << 10)
"""A system prompt larger than the whole disk."""


@pytest.fixture
def full_config(app_paths: AppPaths, small_disk: Callable[[Path, int], SmallDisk]
                ) -> AppPaths:
    """`app_paths` with its config folder on a 64 KiB tmpfs, unmounted afterwards."""
    small_disk(app_paths.config, 64 << 10)
    return app_paths


def _no_temporary_files(folder: Path) -> None:
    assert [p.name for p in folder.rglob("*.tmp")] == []


def test_a_role_that_does_not_fit_leaves_the_old_one(full_config: AppPaths) -> None:
    store = RoleStore(full_config.config / "roles")
    saved = store.save(Role(name="Chef", system_prompt="Cook."))
    before = saved.read_bytes()
    with pytest.raises(RoleError, match=r"cannot save role 'Chef' to .*chef\.toml: No space "
                                        r"left on device; the file there is unchanged"):
        store.save(Role(name="Chef", system_prompt=TOO_BIG))
    assert saved.read_bytes() == before
    assert store.get("Chef").system_prompt == "Cook."
    assert store.problems == []
    _no_temporary_files(full_config.config)


def test_rigdeck_roles_import_on_a_full_disk_says_so(full_config: AppPaths,
                                                     tmp_path: Path) -> None:
    home = full_config.config.parent
    first = tmp_path / "chef.toml"
    first.write_text('name = "Chef"\nsystem_prompt = "Cook."\n', encoding="utf-8")
    assert rigdeck(home, "roles", "--import", str(first)).returncode == 0
    bigger = tmp_path / "chef-big.toml"
    bigger.write_text(f'name = "Chef"\nsystem_prompt = "{TOO_BIG}"\n', encoding="utf-8")
    run = rigdeck(home, "roles", "--import", str(bigger), "--replace")
    assert run.returncode == 2
    assert "No space left on device; the file there is unchanged" in run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    assert RoleStore(full_config.config / "roles").get("Chef").system_prompt == "Cook."
    _no_temporary_files(full_config.config)


def test_presets_settings_and_endpoints_that_do_not_fit_leave_the_old_files(
        full_config: AppPaths, no_keyring: None) -> None:
    presets = PresetStore(full_config.config / "presets")
    presets.save(Preset(name="Mine", request=RequestSettings(system_prompt="Short.")))
    with pytest.raises(PresetError, match="No space left on device"):
        presets.save(Preset(name="Mine", request=RequestSettings(system_prompt=TOO_BIG)))
    assert presets.get("Mine").request.system_prompt == "Short."

    settings = SettingsStore(full_config.settings_file)
    settings.set("theme", "dark")
    settings.settings.model_folders = [TOO_BIG]
    with pytest.raises(UserError, match="No space left on device"):
        settings.save()
    assert SettingsStore(full_config.settings_file).get("theme") == "dark"

    endpoints = EndpointStore(full_config.config / "endpoints.toml", SecretStore())
    endpoints.save("local", "http://127.0.0.1:8080")
    with pytest.raises(UserError, match="No space left on device"):
        endpoints.save("x" * len(TOO_BIG), "http://127.0.0.1:8081")
    assert [e.name for e in endpoints.all()] == ["local"]
    _no_temporary_files(full_config.config)
