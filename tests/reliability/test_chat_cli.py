"""`rigdeck chat --url` against a hostile server: every case ends within its timeout,
under 300 MB of memory, with a clear message, a non-zero exit where it failed, and no
traceback (issue 17)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.chat.history import HistoryStore
from app.paths import AppPaths
from app.settings import SettingsStore
from tests.reliability import hostile_server as hostile
from tests.reliability.measure import FIGURES, RSS_LIMIT_MIB, ChatRun, Figure, run_chat

Start = Callable[[str], hostile.HostileServer]


@pytest.fixture
def serve() -> Iterator[Start]:
    servers: list[hostile.HostileServer] = []

    def start(case: str) -> hostile.HostileServer:
        server = hostile.HostileServer(hostile.CASES[case]).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def chat(serve: Start, tmp_path: Path, case: str, *extra: str,
         timeout_s: float = 120.0) -> ChatRun:
    """Run the case through `rigdeck chat`, record its figures and check the bounds
    every case shares: under the RSS limit, no traceback."""
    return chat_at(serve(case), tmp_path, case, *extra, timeout_s=timeout_s)


def chat_at(server: hostile.HostileServer, tmp_path: Path, case: str, *extra: str,
            timeout_s: float = 120.0) -> ChatRun:
    """`chat` against a server already started."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    run = run_chat(case, server.url, home, *extra, timeout_s=timeout_s)
    message = run.err.strip().splitlines()[-1] if run.err.strip() else ""
    FIGURES.append(Figure(case, "cli", run.peak_rss_mib, run.wall_s, run.code, message))
    print(f"{case}: peak RSS {run.peak_rss_mib:.1f} MiB, {run.wall_s:.2f} s, exit {run.code}")
    assert "Traceback" not in run.err, run.err[-3000:]
    assert run.peak_rss_mib < RSS_LIMIT_MIB, f"{case}: {run.peak_rss_mib:.0f} MiB"
    return run


def test_an_endless_error_page_is_read_to_a_cap(serve: Start, tmp_path: Path) -> None:
    run = chat(serve, tmp_path, "endless_error", "--no-save")
    assert run.code == 2
    assert "The server answered HTTP 500 Internal Server Error" in run.err
    assert "Internal Server Error xxxx" in run.err
    assert "(shortened)" in run.err
    assert len(run.err) < 2000


def test_a_300_mb_error_is_read_to_a_cap(serve: Start, tmp_path: Path) -> None:
    run = chat(serve, tmp_path, "huge_error", "--no-save")
    assert run.code == 2
    assert "HTTP 500" in run.err
    assert "out of memory: xxx" in run.err
    assert "(shortened)" in run.err


def test_a_300_mb_event_is_cut_at_the_event_cap(serve: Start, tmp_path: Path) -> None:
    run = chat(serve, tmp_path, "huge_event")
    assert run.code == 1  # the part received is kept
    assert run.out == "Hello\n"
    assert "The reply was ended: the server sent an event longer than 8 MiB" in run.err
    assert "What had arrived is kept." in run.err


def test_a_300_mb_line_without_a_newline_is_cut_at_the_line_cap(serve: Start,
                                                                  tmp_path: Path) -> None:
    run = chat(serve, tmp_path, "huge_line")
    assert run.code == 1
    assert run.out == "Hello\n"
    assert "The reply was ended: the server sent a line longer than 8 MiB" in run.err


def test_an_endless_reply_is_cut_at_the_longest_reply(serve: Start, tmp_path: Path) -> None:
    home = tmp_path / "home"
    SettingsStore(AppPaths.under(home).settings_file).set("chat_max_reply_mib", 1)
    run = chat(serve, tmp_path, "endless_reply")
    assert run.code == 1
    assert run.out == "z" * (1024 * 1024) + "\n"
    assert ("Answer cut at 1 MiB, the longest reply kept (Settings → Chat → Longest reply); "
            "the part received is kept.") in run.err
    store = HistoryStore.in_data_folder(AppPaths.under(home).data)
    try:
        [conversation] = store.conversations("")
        reply = store.messages(conversation.id)[-1]
    finally:
        store.close()
    assert reply.state == "error"
    assert reply.content == "z" * (1024 * 1024)
    assert reply.error is not None
    assert reply.error.startswith("Answer cut at 1 MiB")


def test_an_endless_reply_is_cut_at_the_default_16_mib(serve: Start, tmp_path: Path) -> None:
    run = chat(serve, tmp_path, "endless_reply", "--no-save")
    assert run.code == 1
    assert len(run.stdout) == 16 * 1024 * 1024 + 1
    assert "Answer cut at 16 MiB" in run.err


def test_json_nested_100000_deep_is_named(serve: Start, tmp_path: Path) -> None:
    """The probes (/lora-adapters, /props) get it too: they are ignored, the chat says it."""
    run = chat(serve, tmp_path, "deep_json", "--no-save")
    assert run.code == 1
    assert run.out == "Hello\n"
    assert ("The server's stream broke off: the server sent JSON nested deeper than 64 "
            "levels. What had arrived is kept.") in run.err
    assert "RecursionError" not in run.err


def test_escape_sequences_never_reach_the_terminal(serve: Start, tmp_path: Path) -> None:
    run = chat(serve, tmp_path, "escapes")
    assert run.code == 0
    assert run.out == ("Plain start, red, clipboard gone, split green, bell cr over 31m c1, "
                       "title  dcs, tab\tand end\n")
    assert run.err.startswith("think quietly\n")
    for control in (b"\x1b", b"\r", b"\x07", "\x9b".encode()):
        assert control not in run.stdout + run.stderr
    store = HistoryStore.in_data_folder(AppPaths.under(tmp_path / "home").data)
    try:
        [conversation] = store.conversations("")
        reply = store.messages(conversation.id)[-1]
    finally:
        store.close()
    assert "\x1b[31mred" in reply.content  # the history keeps the reply as it came


def test_a_gzipped_stream_is_read(serve: Start, tmp_path: Path) -> None:
    run = chat(serve, tmp_path, "gzip", "--no-save")
    assert run.code == 0, run.err
    assert run.out == "Hello from a gzipped stream.\n"


def test_a_gzip_bomb_is_cut_at_the_line_cap(serve: Start, tmp_path: Path) -> None:
    run = chat(serve, tmp_path, "gzip_bomb", "--no-save")
    assert run.code == 1
    assert run.out == "Hello\n"
    assert "The reply was ended: the server sent a line longer than 8 MiB" in run.err


def test_a_redirect_is_named_not_followed(serve: Start, tmp_path: Path) -> None:
    server = serve("redirect")
    run = chat_at(server, tmp_path, "redirect", "--no-save")
    assert run.code == 2
    assert (f"The server redirected to {server.url}/elsewhere/v1/chat/completions (HTTP 307); "
            f"use that URL ({server.url}/elsewhere/v1) instead.") in run.err
    assert not [r for r in server.requests if "/elsewhere" in r]


def test_a_whole_answer_to_a_stream_request_is_the_reply(serve: Start,
                                                          tmp_path: Path) -> None:
    run = chat(serve, tmp_path, "not_streamed", "--no-save")
    assert run.code == 0, run.err
    assert run.out == hostile.WHOLE_ANSWER + "\n"
    assert run.err.startswith("Thought first.\n")


def test_a_web_page_is_named_for_what_it_is(serve: Start, tmp_path: Path) -> None:
    run = chat(serve, tmp_path, "html_page", "--no-save")
    assert run.code == 2
    assert ("The server answered text/html, not a stream of events, beginning "
            "“<!DOCTYPE html><html><body>Please log in") in run.err
    assert "is this an OpenAI-compatible server" in run.err


def test_a_reset_connection_is_said_so(serve: Start, tmp_path: Path) -> None:
    run = chat(serve, tmp_path, "reset", "--no-save", "--timeout", "5")
    assert run.code in (1, 2)  # 1 where "Hello" beat the reset to the client
    assert "The connection to the server broke" in run.err
    assert "reset by peer" in run.err


def test_silence_mid_reply_ends_within_the_timeout(serve: Start, tmp_path: Path) -> None:
    """Every question is silent (LoRA list, template, the chat after one word): each
    waits the user's --timeout, not the default 10 s of a probe."""
    run = chat(serve, tmp_path, "silence", "--no-save", "--timeout", "2", timeout_s=30)
    assert run.code == 1
    assert run.out == "Hello\n"
    assert ("The server sent nothing for 2 s, so the request was given up. What had "
            "arrived is kept.") in run.err


def test_a_server_that_never_answers_ends_within_the_timeout(serve: Start,
                                                             tmp_path: Path) -> None:
    run = chat(serve, tmp_path, "mute", "--no-save", "--timeout", "2", timeout_s=30)
    assert run.code == 2
    assert "The server sent nothing for 2 s" in run.err
