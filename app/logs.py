"""Logging set-up, done once by the entry point: a rotating file and stderr.

Modules only call `logging.getLogger(__name__)`. A filter masks anything that looks like
an API key or token, so secrets never reach a log file even if a message carries one.
"""

import json
import logging
import logging.handlers
import re
import sys

from app.paths import AppPaths

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


def configure_logging(paths: AppPaths, *, debug: bool = False, json_lines: bool = False) -> None:
    """Log to the rotating `paths.log_file` (5 files of 2 MB) and warnings to stderr."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.DEBUG)
    redacting = RedactingFilter()
    paths.logs.mkdir(parents=True, exist_ok=True)
    file_handler = logging.handlers.RotatingFileHandler(
        paths.log_file, maxBytes=2_000_000, backupCount=5, encoding="utf-8"
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
