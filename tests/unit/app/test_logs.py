"""The log file receives the app's messages with secrets masked."""

import logging

import pytest

from app.logs import configure_logging, redact
from app.paths import AppPaths


@pytest.mark.parametrize(
    ("message", "secret"),
    [
        ("starting with api_key=sk-live-123", "sk-live-123"),
        ("header Authorization: Bearer abc.def.ghi", "abc.def.ghi"),
        ("token: hf_ABCDEF", "hf_ABCDEF"),
        ("--api-key s3cr3t --port 8080", "s3cr3t"),
    ],
)
def test_secrets_are_masked(message: str, secret: str) -> None:
    assert secret not in redact(message)
    assert "****" in redact(message)


def test_log_file_gets_messages_without_secrets(app_paths: AppPaths) -> None:
    configure_logging(app_paths)
    try:
        logging.getLogger("app.test").info("backend up, api_key=%s port=%d", "sk-xyz", 8080)
        for handler in logging.getLogger().handlers:
            handler.flush()
        text = app_paths.log_file.read_text(encoding="utf-8")
    finally:
        for handler in list(logging.getLogger().handlers):
            logging.getLogger().removeHandler(handler)
            handler.close()
    assert "backend up" in text
    assert "port=8080" in text
    assert "sk-xyz" not in text
