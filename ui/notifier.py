"""The one place where failures and notices reach the user.

Pages and the task runner report here; the main window shows the latest message in a
banner and the tray can raise it as a desktop notification.
"""

import logging
from dataclasses import dataclass
from enum import Enum

from PySide6.QtCore import QObject, Signal

from app.errors import UserError

log = logging.getLogger(__name__)


class Level(Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class Notice:
    level: Level
    text: str


class Notifier(QObject):
    """Collects notices and emits `posted(Notice)` for each one."""

    posted = Signal(object)

    def __init__(self, log_path: str) -> None:
        super().__init__()
        self.log_path = log_path
        self.history: list[Notice] = []

    def post(self, level: Level, text: str) -> None:
        notice = Notice(level, text)
        self.history.append(notice)
        del self.history[:-100]
        self.posted.emit(notice)

    def info(self, text: str) -> None:
        self.post(Level.INFO, text)

    def warning(self, text: str) -> None:
        log.warning("%s", text)
        self.post(Level.WARNING, text)

    def error(self, description: str, error: BaseException) -> None:
        """Report a failed job: a user error by its message, anything else with the log path."""
        if isinstance(error, UserError):
            log.warning("%s: %s", description, error)
            self.post(Level.ERROR, f"{description}: {error}")
            return
        log.error("%s failed", description, exc_info=error)
        self.post(
            Level.ERROR,
            f"{description} failed: {error or type(error).__name__}. "
            f"Details are in {self.log_path}",
        )
