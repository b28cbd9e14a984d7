"""An excepthook that logs an unexpected error and shows it with the log's path."""

import logging
import sys
import traceback
from types import TracebackType

from PySide6.QtWidgets import QApplication, QMessageBox

log = logging.getLogger(__name__)


def crash_message_box(error: BaseException, log_path: str) -> QMessageBox:
    """The dialog shown for an unexpected error (built apart so tests can read it)."""
    box = QMessageBox(QMessageBox.Icon.Critical, "Rigdeck hit an unexpected error", "")
    box.setText(
        f"Something went wrong that Rigdeck did not expect:\n\n{type(error).__name__}: {error}"
    )
    box.setInformativeText(
        f"Your settings and data are saved. The details are in the log file:\n{log_path}"
    )
    box.setDetailedText("".join(traceback.format_exception(error)))
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    return box


def install_excepthook(log_path: str) -> None:
    """Log every uncaught exception and, when a GUI runs, show the crash dialog."""

    def hook(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            QApplication.quit()
            return
        log.critical("uncaught exception", exc_info=(kind, error, tb))
        if QApplication.instance() is not None:
            crash_message_box(error, log_path).exec()

    sys.excepthook = hook
