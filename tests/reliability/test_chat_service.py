"""ChatService, in this process, against the hostile server: the same bounds hold for
the Chat page's path (the service's client, the run, the stored reply) as for the CLI."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.chat.client import Timeouts
from app.chat.service import ChatService
from app.chat.session import TurnSettings
from app.paths import AppPaths
from app.runtime.setup import build_service
from app.secrets import SecretStore
from tests.reliability import hostile_server as hostile
from tests.reliability.measure import FIGURES, RSS_LIMIT_MIB, Figure, RssPeak


@pytest.fixture
def service(app_paths: AppPaths, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[ChatService]:
    """The chat service with no Docker engine (nothing to find there; URLs still work)."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    backends = build_service(app_paths)
    chat = ChatService(app_paths, SecretStore(), backends)
    yield chat
    chat.close()
    backends.close()


def turn(service: ChatService, case: str, timeouts: Timeouts | None = None
         ) -> tuple[str, str | None, str, float]:
    """One turn against the case's server: the stored reply's state, error and content,
    and the growth of this process's RSS meanwhile (MiB)."""
    server = hostile.HostileServer(hostile.CASES[case]).start()
    try:
        target = service.resolve(f"{server.url}/v1")
        start = time.monotonic()
        with RssPeak() as rss:
            client = service.client(target, timeouts) if timeouts is not None else None
            run = service.send(None, "Hi", target, TurnSettings(), client=client)
            try:
                result = run.run()
            finally:
                run.close()
        wall = time.monotonic() - start
    finally:
        server.close()
    message = result.message
    FIGURES.append(Figure(case, "service", rss.peak_mib, wall, None,
                          f"+{rss.growth_mib:.1f} MiB; {message.error}"))
    print(f"{case} (service): peak RSS {rss.peak_mib:.1f} MiB (+{rss.growth_mib:.1f}), "
          f"{wall:.2f} s")
    assert rss.growth_mib < RSS_LIMIT_MIB
    stored = service.history.message(message.id)
    assert stored is not None
    return stored.state, stored.error, stored.content, rss.growth_mib


def test_an_endless_error_page_ends_in_a_stored_error(service: ChatService) -> None:
    state, error, content, _ = turn(service, "endless_error")
    assert state == "error"
    assert error is not None
    assert error.startswith("The server answered HTTP 500 Internal Server Error: <html>")
    assert error.endswith("(shortened).")
    assert content == ""


def test_a_huge_event_keeps_what_came_before_it(service: ChatService) -> None:
    state, error, content, _ = turn(service, "huge_event")
    assert state == "error"
    assert error == ("The reply was ended: the server sent an event longer than 8 MiB "
                     "(no chat chunk is that long). What had arrived is kept.")
    assert content == "Hello"


def test_an_endless_reply_is_cut_and_stored_up_to_the_cut(service: ChatService) -> None:
    service.max_reply_mib = 2
    state, error, content, _ = turn(service, "endless_reply")
    assert state == "error"
    assert error is not None
    assert error.startswith("Answer cut at 2 MiB, the longest reply kept")
    assert content == "z" * (2 * 1024 * 1024)


def test_the_client_s_longest_reply_is_the_setting_s_default() -> None:
    from app.chat.bounds import MAX_REPLY_MIB
    from app.settings import Settings

    assert Settings().chat_max_reply_mib == MAX_REPLY_MIB


def test_a_reset_connection_is_stored_as_a_broken_reply(service: ChatService) -> None:
    state, error, _, _ = turn(service, "reset")
    assert state == "error"
    assert error is not None
    assert error.startswith("The connection to the server broke ([Errno 104] Connection "
                            "reset by peer)")


def test_silence_ends_at_the_read_timeout_and_keeps_the_word(service: ChatService) -> None:
    state, error, content, _ = turn(service, "silence", Timeouts(read=1.0))
    assert state == "error"
    assert error == ("The server sent nothing for 1 s, so the request was given up. What "
                     "had arrived is kept.")
    assert content == "Hello"
