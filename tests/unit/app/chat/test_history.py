"""The history keeps every conversation and reply, even one cut by a crash."""

import sqlite3
from pathlib import Path

from app.chat.history import HistoryStore
from app.chat.stream_parser import LONE_CLOSE, Piece


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


def test_a_kill_mid_stream_keeps_every_piece_received(tmp_path: Path) -> None:
    path = tmp_path / "chat.sqlite3"
    store = HistoryStore(path)
    chat = store.create_conversation("Cut short")
    writer = store.begin_reply(chat.id)
    writer.extend([Piece("answer", "partial reasoning "), LONE_CLOSE, Piece("answer", "and")])
    writer.append(Piece("answer", " an answer"))
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
