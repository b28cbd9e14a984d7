"""The log file receives the app's messages with secrets masked."""

import logging
import logging.handlers

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


@pytest.mark.parametrize("message", [
    "no keyring: the Secret Service is not running",
    "reply: 61.3 tokens/s, ttft 0.14 s",
    "the password field is empty",
])
def test_ordinary_words_are_left_alone(message: str) -> None:
    assert redact(message) == message


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


def test_health_checks_write_no_line_per_poll(app_paths: AppPaths) -> None:
    """httpx logs each request at INFO; a backend's health is asked every two seconds."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from app.runtime.health import HealthProbe

    class Healthy(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Healthy)
    serving = threading.Thread(target=server.serve_forever, name="healthy-server")
    serving.start()
    configure_logging(app_paths)
    probe = HealthProbe()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/health"
        assert [probe.state(url) for _ in range(5)] == ["ready"] * 5
        logging.getLogger("app.test").info("after the polls")
        for handler in logging.getLogger().handlers:
            handler.flush()
        text = app_paths.log_file.read_text(encoding="utf-8")
    finally:
        probe.close()
        server.shutdown()
        serving.join()
        server.server_close()
        for handler in list(logging.getLogger().handlers):
            logging.getLogger().removeHandler(handler)
            handler.close()
    assert "after the polls" in text
    assert "HTTP Request" not in text


def test_the_log_is_private_to_its_user_and_an_older_one_is_tightened(
        app_paths: AppPaths) -> None:
    import stat

    app_paths.logs.mkdir(parents=True, mode=0o755)
    app_paths.logs.chmod(0o755)
    older = app_paths.logs / "rigdeck.log.1"
    older.write_text("from an older version\n", encoding="utf-8")
    older.chmod(0o644)
    configure_logging(app_paths)
    try:
        logging.getLogger("app.test").warning("a line")
        rotating = next(h for h in logging.getLogger().handlers
                        if isinstance(h, logging.handlers.RotatingFileHandler))
        rotating.flush()
        rotating.doRollover()  # the next file is made private too
        logging.getLogger("app.test").warning("after the rollover")
    finally:
        for handler in list(logging.getLogger().handlers):
            logging.getLogger().removeHandler(handler)
            handler.close()
    assert stat.S_IMODE(app_paths.logs.stat().st_mode) == 0o700
    files = sorted(app_paths.logs.iterdir())
    assert [f.name for f in files] == ["rigdeck.log", "rigdeck.log.1", "rigdeck.log.2"]
    assert {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o600}
