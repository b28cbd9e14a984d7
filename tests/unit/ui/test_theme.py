"""Light and dark colours follow the setting (and the system when set to 'system')."""

from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from ui.services import Services
from ui.theme import apply_theme, is_dark


@pytest.fixture
def qapp_restored(qapp: QApplication) -> Iterator[QApplication]:
    palette, style = QPalette(qapp.palette()), qapp.style().name()
    yield qapp
    qapp.setStyle(style)
    qapp.setPalette(palette)


def _window_lightness(app: QApplication) -> int:
    return app.palette().color(QPalette.ColorRole.Window).lightness()


def test_dark_and_light_palettes(qapp_restored: QApplication) -> None:
    apply_theme(qapp_restored, "dark")
    assert _window_lightness(qapp_restored) < 80
    apply_theme(qapp_restored, "light")
    assert _window_lightness(qapp_restored) > 200


def test_system_choice_follows_the_color_scheme(qapp_restored: QApplication) -> None:
    system_dark = qapp_restored.styleHints().colorScheme() == Qt.ColorScheme.Dark
    assert is_dark("system") is system_dark
    assert is_dark("dark") is True
    assert is_dark("light") is False


def test_changing_the_setting_recolours_the_app(
    qtbot: QtBot, qapp_restored: QApplication, services: Services
) -> None:
    from ui.application import RigdeckApp

    rigdeck = RigdeckApp(qapp_restored, services.paths)
    qtbot.add_widget(rigdeck.window)
    try:
        rigdeck.services.settings.set("theme", "dark")
        assert _window_lightness(qapp_restored) < 80
        rigdeck.services.settings.set("theme", "light")
        assert _window_lightness(qapp_restored) > 200
    finally:
        rigdeck.services.shutdown()
