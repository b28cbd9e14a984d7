"""The tray menu: Open, backends, roles, the Gateway, Quit."""

from pytestqt.qtbot import QtBot

from ui.tray import TrayIcon


def test_tray_menu_has_open_sections_and_quit(qtbot: QtBot) -> None:
    tray = TrayIcon()
    texts = [action.text() for action in tray.menu.actions() if not action.isSeparator()]
    assert texts == ["Open Rigdeck", "Backends", "Roles", "Gateway", "Quit"]
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


def test_the_gateway_entry_switches_it_and_shows_where_it_serves(qtbot: QtBot) -> None:
    tray = TrayIcon()
    assert not tray.gateway_action.isChecked()
    with qtbot.wait_signal(tray.gateway_toggled, timeout=1000) as toggled:
        tray.gateway_action.trigger()
    assert toggled.args == [True]
    tray.set_gateway("http://127.0.0.1:8765/v1")
    assert tray.gateway_action.text() == "Gateway at http://127.0.0.1:8765/v1"
    assert tray.gateway_action.isChecked()
    tray.set_gateway("")
    assert (tray.gateway_action.text(), tray.gateway_action.isChecked()) == ("Gateway", False)
