"""Settings: typed, saved atomically, never lost, never a crash over a bad file."""

import tomllib
from pathlib import Path

from app.settings import Settings, SettingsStore
from app.user_files import LOCK_NAME


def test_settings_round_trip_through_the_file(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    store = SettingsStore(path)
    store.set("theme", "dark")
    store.set("model_folders", ["/models", "/more models"])
    store.set("close_to_tray", False)

    again = SettingsStore(path)

    assert again.settings.theme == "dark"
    assert again.settings.model_folders == ["/models", "/more models"]
    assert again.settings.close_to_tray is False
    assert again.problems == []


def test_a_change_is_announced_to_listeners(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "settings.toml")
    seen: list[tuple[str, object]] = []
    store.on_change(lambda name, value: seen.append((name, value)))

    store.set("sampling_interval_s", 2.5)
    store.set("sampling_interval_s", 2.5)  # unchanged: no second event

    assert seen == [("sampling_interval_s", 2.5)]


def test_corrupt_file_is_kept_aside_and_defaults_are_used(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text('theme = "dark"\nclose_to_tray = [unclosed', encoding="utf-8")

    store = SettingsStore(path)

    assert store.settings == Settings()
    assert len(store.problems) == 1
    assert "could not be read" in store.problems[0]
    backups = list(tmp_path.glob("settings.toml.corrupt-*"))
    assert len(backups) == 1
    assert "close_to_tray = [unclosed" in backups[0].read_text(encoding="utf-8")
    assert str(backups[0]) in store.problems[0]


def test_invalid_values_fall_back_one_by_one(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(
        'schema_version = 1\ntheme = "purple"\nclose_to_tray = "yes"\n'
        'sampling_interval_s = 3\nmodel_folders = ["/ok"]\nunknown_key = 1\n',
        encoding="utf-8",
    )

    store = SettingsStore(path)

    assert store.settings.theme == "system"
    assert store.settings.close_to_tray is True
    assert store.settings.sampling_interval_s == 3.0
    assert store.settings.model_folders == ["/ok"]
    assert any("close_to_tray" in p for p in store.problems)
    assert any("purple" in p for p in store.problems)


def test_a_version_0_file_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text('folders = ["/old/place"]\n', encoding="utf-8")

    store = SettingsStore(path)
    store.save()

    assert store.settings.model_folders == ["/old/place"]
    saved = tomllib.loads(path.read_text(encoding="utf-8"))
    assert saved["schema_version"] == 1
    assert "folders" not in saved


def test_saving_leaves_no_temporary_files(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path / "settings.toml")
    for theme in ("dark", "light", "system"):
        store.set("theme", theme)
    # the folder's lock file stays: removing it while another process waits on it is racy
    assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK_NAME, "settings.toml"]


def test_every_setting_has_a_description() -> None:
    from dataclasses import fields

    for spec in fields(Settings):
        assert Settings.description(spec.name).strip()


def test_a_change_made_elsewhere_meanwhile_is_kept(tmp_path: Path) -> None:
    window = SettingsStore(tmp_path / "settings.toml")
    command_line = SettingsStore(tmp_path / "settings.toml")
    command_line.set("theme", "dark")
    window.set("last_page", "chat")  # the window still holds the old theme
    again = SettingsStore(tmp_path / "settings.toml")
    assert (again.get("theme"), again.get("last_page")) == ("dark", "chat")


def test_a_fifo_or_device_as_settings_is_set_aside(tmp_path: Path) -> None:
    import os

    path = tmp_path / "settings.toml"
    os.mkfifo(path)
    store = SettingsStore(path)
    assert store.get("theme") == "system"
    assert "is a FIFO (named pipe), not a file" in store.problems[0]
