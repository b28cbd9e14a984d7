"""A data disk that fills while a reply streams: the user is told once, the reply stays
in memory and is saved when there is room again, and nothing saved before is lost. The
data folder is a real 4 MB tmpfs; the reply comes from a local streaming server through
Rigdeck's own client, session and history (and, once, through `rigdeck chat`)."""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from app.chat.client import ChatClient
from app.chat.history import DiskFullError, HistoryStore
from app.chat.service import conversation_title
from app.chat.session import ReplyRun, TurnSettings, build_request
from app.chat.stream_parser import Piece
from app.paths import AppPaths
from app.presets.thinking import support_from_template
from tests.reliability.conftest import SmallDisk
from tests.reliability.sse_server import SseServer

FULL = "the data disk is full: the reply is kept in memory and saved when space is free again"


def long_reply(server: SseServer) -> None:
    """2,000 tokens of 400 characters (800 KB), streamed over about 2 s: more than the
    disk has left, in many batches."""
    server.tokens = [f" t{index:04d}" + "x" * 394 for index in range(2000)]
    server.pace_s = 0.02


def seed_earlier(store: HistoryStore) -> int:
    chat = store.create_conversation("Earlier")
    store.add_message(chat.id, "user", "What is kept?")
    writer = store.begin_reply(chat.id)
    writer.extend([Piece("reasoning", "Everything."), Piece("answer", "All of it.")])
    writer.finish(state="done", completion_tokens=4)
    return chat.id


def read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def stored(path: Path) -> list[tuple[str, str, str, str, str | None]]:
    """Every message on disk (conversation title, role, content, state, error), read
    by a connection of its own that cannot write."""
    db = read_only(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return db.execute("SELECT c.title, m.role, m.content, m.state, m.error FROM messages m"
                          " JOIN conversations c ON c.id = m.conversation_id"
                          " ORDER BY m.id").fetchall()
    finally:
        db.close()


def ask(store: HistoryStore, url: str, text: str) -> ReplyRun:
    chat = store.create_conversation(conversation_title(text))
    store.add_message(chat.id, "user", text)
    support = support_from_template(None)
    settings = TurnSettings()
    request = build_request(store.messages(chat.id), settings, support)
    return ReplyRun(ChatClient(url), store, chat.id, request, settings, endpoint=url,
                    support=support)


def test_a_reply_that_fills_the_disk_is_kept_and_saved_once_there_is_room(
        data_disk: SmallDisk, app_paths: AppPaths, sse_server: SseServer,
        caplog: pytest.LogCaptureFixture) -> None:
    store = HistoryStore.in_data_folder(app_paths.data)
    seed_earlier(store)
    before = stored(store.path)  # type: ignore[arg-type]  # a file store has a path
    long_reply(sse_server)
    run = ask(store, sse_server.url, "Write a lot")
    data_disk.fill(free=300_000)
    with caplog.at_level(logging.WARNING, logger="app.chat.history"):
        result = run.run()
    run.close()

    # one clear message, however many batches failed
    told = [r.getMessage() for r in caplog.records if "disk is full" in r.getMessage()]
    assert told == [f"{FULL} ({store.path})"]
    # the reply is whole in memory, and the view of the history shows it
    assert result.message.content == sse_server.answer.strip()
    assert result.message.state == "done"
    assert FULL in (result.message.error or "")
    assert store.messages(run.conversation_id)[-1].content == sse_server.answer.strip()
    # what was saved before is there, unchanged, and the database is sound
    path = store.path
    assert path is not None
    on_disk = stored(path)
    assert on_disk[:len(before)] == before
    assert on_disk[-1][1:4] == ("assistant", "", "streaming")  # its batches wait in chunks

    # a write of the user's while the disk is still full says so, and changes nothing
    with pytest.raises(DiskFullError, match="the data disk is full"):
        store.add_message(run.conversation_id, "user", "x" * 400_000)

    data_disk.make_room()
    store.rename(run.conversation_id, "A lot")  # the next write saves what waits first
    assert stored(path)[-1][1:] == ("assistant", sse_server.answer.strip(), "done", None)
    assert store.disk_full is None
    store.close()


def test_a_reply_fits_again_after_the_disk_had_filled_mid_stream(
        data_disk: SmallDisk, app_paths: AppPaths, sse_server: SseServer) -> None:
    """Room comes back while the reply still streams: a later batch saves it all."""
    store = HistoryStore.in_data_folder(app_paths.data)
    long_reply(sse_server)
    sse_server.pace_s = 0.04  # 4 s: the writer tries again (every 2 s) while it streams
    run = ask(store, sse_server.url, "Write more")
    data_disk.fill(free=200_000)

    def room_back(piece: Piece) -> None:
        if store.disk_full is not None:
            data_disk.make_room()

    result = run.run(room_back)
    run.close()
    assert result.message.error is None  # saved by the time it ended: nothing to say
    assert store.disk_full is None
    path = store.path
    assert path is not None
    assert stored(path)[-1][1:] == ("assistant", sse_server.answer.strip(), "done", None)
    store.close()


def test_the_cli_says_it_once_and_shows_no_traceback(
        data_disk: SmallDisk, app_paths: AppPaths, sse_server: SseServer,
        tmp_path: Path) -> None:
    store = HistoryStore.in_data_folder(app_paths.data)
    seed_earlier(store)
    store.close()
    before = stored(app_paths.data / "chat.sqlite3")
    long_reply(sse_server)
    # the CLI writes its conversation before the reply: leave room for that, not the reply
    data_disk.fill(free=300_000)
    env = {**os.environ, "RIGDECK_HOME": str(app_paths.config.parent)}
    done = subprocess.run([sys.executable, "-m", "app", "chat", "--url", sse_server.url,
                           "Write a lot"], capture_output=True, text=True, env=env,
                          timeout=120, cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == sse_server.answer.strip()  # the whole answer was shown
    assert "Traceback" not in done.stderr
    assert done.stderr.count("the data disk is full") == 1
    assert f"{FULL} ({app_paths.data / 'chat.sqlite3'})" in done.stderr
    assert "the data disk is still full" in done.stderr  # and, at exit, that it is not saved
    on_disk = stored(app_paths.data / "chat.sqlite3")
    assert on_disk[:len(before)] == before
    assert on_disk[-2][1:3] == ("user", "Write a lot")


def test_a_full_log_disk_is_said_once_not_as_a_traceback_per_line(
        small_disk: object, app_paths: AppPaths) -> None:
    script = ("import logging, sys; from app.logs import configure_logging; "
              "from app.paths import AppPaths; "
              "configure_logging(AppPaths.under(__import__('pathlib').Path(sys.argv[1]))); "
              "[logging.getLogger('app.x').info('line %d %s', i, 'y' * 500) "
              "for i in range(400)]")
    mount = small_disk
    assert callable(mount)
    mount(app_paths.logs, 64 * 1024)
    done = subprocess.run([sys.executable, "-c", script, str(app_paths.config.parent)],
                          capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "--- Logging error ---" not in done.stderr
    assert done.stderr.count("rigdeck: cannot write the log") == 1
    assert "No space left on device" in done.stderr
