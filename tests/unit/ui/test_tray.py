"""The tray menu: Open, backends, roles, Quit."""

from pytestqt.qtbot import QtBot

from ui.tray import TrayIcon


def test_tray_menu_has_open_sections_and_quit(qtbot: QtBot) -> None:
    tray = TrayIcon()
    texts = [action.text() for action in tray.menu.actions() if not action.isSeparator()]
    assert texts == ["Open Rigdeck", "Backends", "Roles", "Quit"]
    assert [a.text() for a in tray.backends_menu.actions()] == ["No backends running"]
    assert not tray.backends_menu.actions()[0].isEnabled()


def test_tray_actions_emit_requests(qtbot: QtBot) -> None:
    tray = TrayIcon()
    with qtbot.wait_signal(tray.open_requested, timeout=1000):
        tray.open_action.trigger()
    with qtbot.wait_signal(tray.quit_requested, timeout=1000):
        tray.quit_action.trigger()


def test_backends_section_lists_entries(qtbot: QtBot) -> None:
    tray = TrayIcon()
    stopped: list[str] = []
    tray.set_backends([("Stop qwen3 (:8080)", lambda: stopped.append("qwen3"))])
    actions = tray.backends_menu.actions()
    assert [a.text() for a in actions] == ["Stop qwen3 (:8080)"]
    actions[0].trigger()
    assert stopped == ["qwen3"]
