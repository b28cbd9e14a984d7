"""The main window: every page opens, state is remembered, notices reach the user."""

from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.paths import AppPaths
from app.settings import SettingsStore
from tests.journeys.conftest import choose_folder_when_asked
from ui.application import RigdeckApp
from ui.main_window import MainWindow
from ui.pages.empty_state import EmptyStateWidget
from ui.pages.placeholders import EmptyPage
from ui.pages.registry import PAGE_NAMES
from ui.services import Services


@pytest.fixture
def rigdeck_app(qtbot: QtBot, app_paths: AppPaths, monkeypatch: pytest.MonkeyPatch
                ) -> tuple[RigdeckApp, list[bool]]:
    """The whole app with its window shown; the list records each call of the Qt
    application's quit (which would end pytest-qt's event loop)."""
    from PySide6.QtWidgets import QApplication

    qapp = QApplication.instance()
    assert isinstance(qapp, QApplication)
    quits: list[bool] = []
    monkeypatch.setattr(qapp, "quit", lambda: quits.append(True))
    rigdeck = RigdeckApp(qapp, app_paths)
    qtbot.add_widget(rigdeck.window)
    rigdeck.show_window()
    return rigdeck, quits


def _window(qtbot: QtBot, services: Services) -> MainWindow:
    window = MainWindow(services)
    qtbot.add_widget(window)
    window.show()
    qtbot.wait_exposed(window)
    return window


def test_the_rail_lists_every_area_in_order(qtbot: QtBot, services: Services) -> None:
    window = _window(qtbot, services)
    titles = [window.rail.item(i).text() for i in range(window.rail.count())]
    assert titles == ["Library", "Fit", "Backends", "Monitor", "Chat", "Roles", "Bench",
                      "Gateway", "Settings"]


@pytest.mark.parametrize("name", PAGE_NAMES)
def test_every_page_opens(qtbot: QtBot, services: Services, name: str) -> None:
    window = _window(qtbot, services)
    window.show_page(name)
    page = window.pages[name]
    assert window.stack.currentWidget() is page
    assert page.isVisible()
    if isinstance(page, EmptyPage):
        state: EmptyStateWidget = page.empty_state
        assert state.title_label.text()
        assert state.what_label.text()
        assert state.needs_label.text(), "an empty page must say what the user must set up"


def test_clicking_the_rail_switches_pages(qtbot: QtBot, services: Services) -> None:
    window = _window(qtbot, services)
    window.rail.setCurrentRow(PAGE_NAMES.index("monitor"))
    assert window.current_page == "monitor"
    assert window.stack.currentWidget() is window.pages["monitor"]


def test_last_page_and_geometry_are_remembered(
    qtbot: QtBot, services: Services, app_paths: AppPaths
) -> None:
    window = _window(qtbot, services)
    window.resize(790, 610)  # the offscreen screen is 800x800
    window.show_page("chat")
    window.save_state()

    reloaded = Services.build(app_paths)
    try:
        again = _window(qtbot, reloaded)
        assert again.current_page == "chat"
        assert (again.width(), again.height()) == (790, 610)
    finally:
        reloaded.shutdown()


def test_library_empty_state_button_adds_the_folder_picked(
        qtbot: QtBot, services: Services, tmp_path: Path) -> None:
    window = _window(qtbot, services)
    page = window.pages["library"]
    assert isinstance(page, EmptyPage)
    assert page.empty_state.action_button is not None
    models = tmp_path / "models"
    models.mkdir()
    choose_folder_when_asked(qtbot, models)
    page.empty_state.action_button.click()
    assert services.settings.get("model_folders") == [str(models)]
    assert window.current_page == "library"


def test_a_corrupt_settings_file_shows_a_banner_and_the_window_opens(
    qtbot: QtBot, app_paths: AppPaths
) -> None:
    app_paths.config.mkdir(parents=True)
    app_paths.settings_file.write_bytes(b"\xff\xfe not toml at all [[[")

    services = Services.build(app_paths)
    try:
        window = _window(qtbot, services)
        assert window.banner.isVisible()
        assert "could not be read" in window.banner.label.text()
        assert window.current_page == "library"
        assert list(app_paths.config.glob("settings.toml.corrupt-*"))
        assert SettingsStore(app_paths.settings_file).problems == []
    finally:
        services.shutdown()


def test_without_a_tray_closing_the_window_quits(
    rigdeck_app: tuple[RigdeckApp, list[bool]], app_paths: AppPaths
) -> None:
    from PySide6.QtWidgets import QSystemTrayIcon

    rigdeck, quits = rigdeck_app
    assert not QSystemTrayIcon.isSystemTrayAvailable()  # offscreen has no tray

    assert rigdeck.tray is None
    assert not rigdeck.keeps_running_in_tray
    rigdeck.window.close()

    assert quits == [True]
    assert SettingsStore(app_paths.settings_file).settings.window_geometry


def test_ctrl_q_quits_rigdeck(
    qtbot: QtBot, rigdeck_app: tuple[RigdeckApp, list[bool]]
) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    rigdeck, quits = rigdeck_app
    qtbot.wait_exposed(rigdeck.window)
    rigdeck.window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is rigdeck.window, timeout=5000)
    QTest.keyClick(rigdeck.window, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    assert quits == [True]
    assert rigdeck.has_quit
    assert not rigdeck.window.isVisible()
