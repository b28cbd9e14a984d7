"""The Settings page writes what the user changes and shows what the keyring can do."""

from pathlib import Path

import pytest
from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from app import __version__
from app.paths import AppPaths
from app.settings import SettingsStore
from ui.pages.settings_page import SettingsPage
from ui.services import Services


@pytest.fixture
def page(qtbot: QtBot, services: Services) -> SettingsPage:
    widget = SettingsPage(services)
    qtbot.add_widget(widget)
    widget.show()
    return widget


def test_changes_are_saved_to_the_file(page: SettingsPage, app_paths: AppPaths) -> None:
    page.theme_box.setCurrentIndex(2)  # Dark
    page.interval_box.setValue(2.5)
    page.add_folder("/srv/models")
    page.add_folder("/srv/models")  # once only

    saved = SettingsStore(app_paths.settings_file).settings
    assert saved.theme == "dark"
    assert saved.sampling_interval_s == 2.5
    assert saved.model_folders == ["/srv/models"]
    assert [page.folders_list.item(i).text() for i in range(page.folders_list.count())] == [
        "/srv/models"
    ]


def test_removing_a_folder(page: SettingsPage, services: Services) -> None:
    page.add_folder("/a")
    page.add_folder("/b")
    page.folders_list.item(0).setSelected(True)
    page.remove_folder_button.click()
    assert services.settings.get("model_folders") == ["/b"]
    assert page.folders_list.count() == 1


def test_a_change_made_elsewhere_shows_on_the_page(page: SettingsPage, services: Services) -> None:
    services.settings.set("theme", "light")
    assert page.theme_box.currentText() == "Light"


@pytest.mark.usefixtures("no_keyring")
def test_missing_keyring_is_said_on_the_page(qtbot: QtBot, services: Services) -> None:
    widget = SettingsPage(services)
    qtbot.add_widget(widget)
    qtbot.waitUntil(lambda: "No system keyring is available" in widget.secrets_label.text(),
                    timeout=5000)


def test_start_at_login_writes_and_removes_the_autostart_entry(
    qtbot: QtBot, page: SettingsPage, services: Services, tmp_path: Path
) -> None:
    entry = tmp_path / "xdg-config" / "autostart" / "rigdeck.desktop"
    assert not page.login_box.isChecked()

    with qtbot.wait_signal(services.tasks.idle, timeout=5000):
        page.login_box.setChecked(True)
    assert "gui --tray" in entry.read_text(encoding="utf-8")
    assert services.settings.get("start_in_tray_at_login") is True
    assert str(entry) in page.login_box.toolTip()

    with qtbot.wait_signal(services.tasks.idle, timeout=5000):
        page.login_box.setChecked(False)
    assert not entry.exists()
    assert services.settings.get("start_in_tray_at_login") is False


def test_a_login_entry_that_cannot_be_written_is_reported_and_unticked(
    qtbot: QtBot, page: SettingsPage, services: Services, tmp_path: Path
) -> None:
    (tmp_path / "xdg-config").mkdir()
    (tmp_path / "xdg-config" / "autostart").write_text("not a folder", encoding="utf-8")
    with qtbot.wait_signal(services.notifier.posted, timeout=5000) as posted:
        page.login_box.setChecked(True)
    notice = posted.args[0]
    assert "Cannot write the login entry" in notice.text
    assert not page.login_box.isChecked()
    assert services.settings.get("start_in_tray_at_login") is False


def test_about_names_the_version(page: SettingsPage) -> None:
    about = page.findChild(QLabel, "aboutLabel")
    assert about is not None
    assert f"Rigdeck {__version__}" in about.text()


def test_the_bench_group_saves_the_repetitions_and_a_checked_text(
        qtbot: QtBot, page: SettingsPage, services: Services, tmp_path: Path) -> None:
    group = page.bench_group
    group.reps_spin.setValue(9)
    assert services.settings.get("bench_repetitions") == 9
    group.text_edit.setText("/no/such.txt")
    group.text_edit.editingFinished.emit()
    qtbot.waitUntil(group.text_note.isVisible)
    assert "there is no file at /no/such.txt" in group.text_note.text()
    text = tmp_path / "novel.txt"
    text.write_text("It was a dark and stormy night.", encoding="utf-8")
    group.text_edit.setText(str(text))
    group.text_edit.editingFinished.emit()
    qtbot.waitUntil(lambda: services.settings.get("bench_text") == str(text))
    assert not group.text_note.isVisible()
