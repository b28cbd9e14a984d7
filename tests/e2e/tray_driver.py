"""Drives a real Rigdeck with a real system tray (run by test_tray.py on Xvfb + trayer).

Prints one line per observed step; the test reads them. Exits when Rigdeck quits.
"""

import sys
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from app.paths import AppPaths
from ui.application import RigdeckApp


def say(text: str) -> None:
    print(text, flush=True)


def main(home: str) -> int:
    qapp = QApplication(sys.argv[:1])
    rigdeck = RigdeckApp(qapp, AppPaths.under(Path(home)))
    rigdeck.show_window()

    def check_tray() -> None:
        say(f"tray={rigdeck.tray is not None and rigdeck.tray.isVisible()}")
        rigdeck.window.close()
        QTimer.singleShot(200, after_close)

    def after_close() -> None:
        say(f"after-close window-visible={rigdeck.window.isVisible()}")
        assert rigdeck.tray is not None
        rigdeck.tray.open_action.trigger()
        QTimer.singleShot(200, after_open)

    def after_open() -> None:
        say(f"after-open window-visible={rigdeck.window.isVisible()}")
        rigdeck.services.settings.set("close_to_tray", False)
        rigdeck.window.close()  # now closing quits
        QTimer.singleShot(5000, still_running)

    def still_running() -> None:
        say("still-running")
        qapp.exit(3)

    qapp.aboutToQuit.connect(lambda: say("quitting"))
    QTimer.singleShot(500, check_tray)
    return qapp.exec()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
