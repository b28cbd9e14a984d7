"""An unexpected error is shown with the path of the log that holds the details."""

from pytestqt.qtbot import QtBot

from ui.crash_dialog import crash_message_box


def test_crash_dialog_names_the_error_and_the_log(qtbot: QtBot) -> None:
    try:
        raise ValueError("bad header")
    except ValueError as error:
        box = crash_message_box(error, "/home/u/.local/state/rigdeck/log/rigdeck.log")
    qtbot.add_widget(box)
    assert "ValueError: bad header" in box.text()
    assert "/home/u/.local/state/rigdeck/log/rigdeck.log" in box.informativeText()
    assert "raise ValueError" in box.detailedText()
