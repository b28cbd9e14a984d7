"""The history keeps every conversation and reply, even one cut by a crash, and writes
a streaming reply in a few commits a second, not one per token."""

import sqlite3
import stat
from pathlib import Path

from app.chat.history import FLUSH_INTERVAL_S, HistoryStore
from app.chat.stream_parser import LONE_CLOSE, Piece


class Clock:
    """Time as the writer reads it, moved by the test (tokens 10 ms apart, say)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_streamed_reply_is_stored_with_its_reasoning_and_timings(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "chat.sqlite3")
    chat = store.create_conversation("Haiku", endpoint="local", model="qwen3")
    store.add_message(chat.id, "user", "Write a haiku")
    writer = store.begin_reply(chat.id, endpoint="local", model="qwen3", preset="Deep",
                               role_name="poet", thinking=True)
    writer.extend([Piece("reasoning", "Five, seven, "), Piece("reasoning", "five."),
                   Piece("answer", "\n\nSteam rises")])
    message = writer.finish(state="done", ttft_s=0.05, tokens_per_s=42.0,
                            completion_tokens=3, reasoning_tokens=2, finish_reason="stop")
    assert (message.content, message.reasoning) == ("Steam rises", "Five, seven, five.")
    assert (message.preset, message.role_name, message.thinking) == ("Deep", "poet", True)
    store.close()

    reopened = HistoryStore(tmp_path / "chat.sqlite3")
    stored = reopened.messages(chat.id)
    assert [m.role for m in stored] == ["user", "assistant"]
    assert stored[1].tokens_per_s == 42.0
    assert stored[1].state == "done"
    reopened.close()


def test_a_kill_mid_stream_keeps_what_arrived_before_the_last_batch(tmp_path: Path) -> None:
    path = tmp_path / "chat.sqlite3"
    store = HistoryStore(path)
    chat = store.create_conversation("Cut short")
    clock = Clock()
    writer = store.begin_reply(chat.id, clock=clock)
    writer.extend([Piece("answer", "partial reasoning "), LONE_CLOSE, Piece("answer", "and")])
    clock.now += FLUSH_INTERVAL_S
    writer.append(Piece("answer", " an answer"))  # a quarter second on: all four committed
    writer.append(Piece("answer", " and more"))  # not yet: a kill loses this one
    # No finish() and no close(): as if the process was killed here. A second connection
    # sees what the first committed.
    reopened = HistoryStore(path)
    [message] = reopened.messages(chat.id)
    assert message.state == "interrupted"
    assert (message.reasoning, message.content) == ("partial reasoning", "and an answer")
    assert "what had arrived is kept" in (message.error or "")
    reopened.close()
    store.close()


def test_the_database_uses_wal(tmp_path: Path) -> None:
    HistoryStore(tmp_path / "chat.sqlite3").close()
    with sqlite3.connect(tmp_path / "chat.sqlite3") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_search_rename_delete() -> None:
    store = HistoryStore(None)
    first = store.create_conversation("Rust lifetimes")
    second = store.create_conversation("Dinner")
    store.add_message(second.id, "user", "A recipe with 100% rye_flour?")
    assert [c.title for c in store.conversations("lifetimes")] == ["Rust lifetimes"]
    assert [c.title for c in store.conversations("100% rye_")] == ["Dinner"]
    assert store.conversations("100%% nothing") == []
    store.rename(first.id, "Borrow checker")
    assert store.conversation(first.id).title == "Borrow checker"  # type: ignore[union-attr]
    store.delete(second.id)
    assert [c.title for c in store.conversations()] == ["Borrow checker"]
    assert store.messages(second.id) == []
    store.close()


def test_regenerate_drops_the_reply_and_what_follows() -> None:
    store = HistoryStore(None)
    chat = store.create_conversation("x")
    store.add_message(chat.id, "user", "one")
    reply = store.add_message(chat.id, "assistant", "first try")
    store.add_message(chat.id, "user", "two")
    store.delete_messages_from(reply.id)
    assert [m.content for m in store.messages(chat.id)] == ["one"]
    store.close()


def test_a_thousand_tokens_are_a_few_commits_not_a_thousand(tmp_path: Path) -> None:
    path = tmp_path / "chat.sqlite3"
    store = HistoryStore(path)
    chat = store.create_conversation("Long")
    clock = Clock()
    writer = store.begin_reply(chat.id, clock=clock)
    watcher = sqlite3.connect(path)  # data_version moves when another connection commits
    seen = watcher.execute("PRAGMA data_version").fetchone()[0]
    commits = 0
    for index in range(1000):  # 100 tokens a second for 10 s
        clock.now += 0.01
        writer.append(Piece("answer", f" word{index}"))
        version = watcher.execute("PRAGMA data_version").fetchone()[0]
        commits += version != seen
        seen = version
    message = writer.finish(state="done")
    watcher.close()
    assert commits <= 10 / FLUSH_INTERVAL_S + 1  # 40 batches of 25 tokens
    assert commits >= 10  # and not all of it held back to the end
    assert message.content == " ".join(f"word{index}" for index in range(1000))
    store.close()


def test_the_database_is_private_to_its_user(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = HistoryStore.in_data_folder(data)
    chat = store.create_conversation("Secret plans")
    store.add_message(chat.id, "user", "only for me")
    files = sorted(data.iterdir())
    assert [f.name for f in files] == ["chat.sqlite3", "chat.sqlite3-shm", "chat.sqlite3-wal"]
    assert {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o600}
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    store.close()


def test_an_older_world_readable_database_is_tightened_on_open(tmp_path: Path) -> None:
    data = tmp_path / "data"
    HistoryStore.in_data_folder(data).close()
    data.chmod(0o755)
    (data / "chat.sqlite3").chmod(0o644)
    store = HistoryStore.in_data_folder(data)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert {stat.S_IMODE(f.stat().st_mode) for f in data.iterdir()} == {0o600}
    store.close()
