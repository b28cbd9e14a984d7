"""Logging set-up, done once by the entry point: a rotating file and stderr.

Modules only call `logging.getLogger(__name__)`. A filter masks anything that looks like
an API key or token, so secrets never reach a log file even if a message carries one. The
log files are 0600 in a 0700 folder; a log that cannot be written (a full disk) is said
once on stderr, not as a traceback per line.
"""

import io
import json
import logging
import logging.handlers
import os
import re
import sys
from pathlib import Path
from typing import cast

from app.paths import PRIVATE_FILE_MODE, AppPaths, private_folder, tighten

_SECRET = re.compile(
    r"(?i)(?P<key>--[\w-]*(?:api[-_]?key|token|password|secret)[\w-]*\s+"  # --api-key X
    r"|\b(?:api[-_]?key|token|authorization|password|secret)\s*[=:]\s*"  # key=X, token: X
    r"|\bbearer\s+)"  # Bearer X
    r"(?P<bearer>bearer\s+)?(?P<value>[^\s,;'\"]+)"
)
"""A value after a key and `=` or `:`, after a secret's command-line flag, or after
Bearer; the words alone ("the Secret Service", "tokens/s") are left as they are."""


def redact(text: str) -> str:
    """Replace the value after key=, token:, --api-key or Bearer with asterisks."""
    return _SECRET.sub(lambda m: f"{m.group('key')}{m.group('bearer') or ''}****", text)


class RedactingFilter(logging.Filter):
    """Masks secrets in every record's final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for tests that read the app's log."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "time": record.created,
                "level": record.levelname,
                "logger": record.name,
                "message": record.getMessage(),
            }
        )


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log whose files only their owner can read, which says once on stderr
    when it cannot write (instead of a "--- Logging error ---" traceback per record)."""

    def __init__(self, filename: str, *, max_bytes: int, backup_count: int) -> None:
        for index in range(backup_count + 1):
            tighten(_rotated(filename, index))  # an older install's files
        super().__init__(filename, maxBytes=max_bytes, backupCount=backup_count,
                         encoding="utf-8")
        self._failed = False

    def _open(self) -> io.TextIOWrapper:
        def private(path: str, flags: int) -> int:
            return os.open(path, flags, PRIVATE_FILE_MODE)

        # a text mode ("a"), so open() gives a TextIOWrapper; mypy sees only the str mode
        return cast(io.TextIOWrapper, open(self.baseFilename, self.mode,
                                           encoding=self.encoding, errors=self.errors,
                                           opener=private))

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):
            super().handleError(record)
            return
        if not self._failed:
            self._failed = True
            sys.stderr.write(f"rigdeck: cannot write the log {self.baseFilename}: "
                             f"{error.strerror or error}; its lines are dropped meanwhile\n")


def _rotated(filename: str, index: int) -> Path:
    return Path(filename if index == 0 else f"{filename}.{index}")


def configure_logging(paths: AppPaths, *, debug: bool = False, json_lines: bool = False) -> None:
    """Log to the rotating `paths.log_file` (5 files of 2 MB) and warnings to stderr."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.DEBUG)
    redacting = RedactingFilter()
    private_folder(paths.logs)
    file_handler = PrivateRotatingFileHandler(
        str(paths.log_file), max_bytes=2_000_000, backup_count=5
    )
    file_handler.setLevel(logging.DEBUG if debug else logging.INFO)
    file_handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    )
    stderr_handler = logging.StreamHandler(sys.stderr)
    stderr_handler.setLevel(logging.DEBUG if debug or json_lines else logging.WARNING)
    stderr_handler.setFormatter(
        JsonFormatter() if json_lines else logging.Formatter("%(levelname)s %(name)s: %(message)s")
    )
    for handler in (file_handler, stderr_handler):
        handler.addFilter(redacting)
        root.addHandler(handler)
    # httpx logs every request at INFO: the health checks alone wrote thousands of lines
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
