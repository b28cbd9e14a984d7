"""Conversations and messages in SQLite (WAL) in the user's data folder.

A reply is written while it streams: every piece is appended to `message_chunks` and
committed at once, so a crash or a kill loses at most the tokens not yet received. When
the reply ends, the pieces are folded into the message row; a row still marked
"streaming" when the store opens is folded the same way and marked "interrupted".
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from app.chat.stream_parser import LONE_CLOSE, Piece, ReplyText

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    endpoint TEXT,
    model TEXT,
    preset TEXT
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    content TEXT NOT NULL DEFAULT '',
    reasoning TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'done',
    error TEXT,
    endpoint TEXT,
    model TEXT,
    preset TEXT,
    role_name TEXT,
    thinking INTEGER,
    ttft_s REAL,
    tokens_per_s REAL,
    completion_tokens INTEGER,
    reasoning_tokens INTEGER,
    finish_reason TEXT
);
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages(conversation_id, id);
CREATE TABLE IF NOT EXISTS message_chunks (
    message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (message_id, seq)
);
"""

STATES = ("done", "streaming", "stopped", "error", "interrupted")
"""A message's state: a reply that was stopped, failed or cut by a crash keeps its text."""


@dataclass(frozen=True)
class Conversation:
    id: int
    title: str
    created: float
    updated: float
    endpoint: str | None = None
    model: str | None = None
    preset: str | None = None


@dataclass(frozen=True)
class Message:
    """One turn; an assistant message also records how it was made and how fast."""

    id: int
    conversation_id: int
    role: str
    content: str
    reasoning: str
    created: float
    state: str = "done"
    error: str | None = None
    endpoint: str | None = None
    model: str | None = None
    preset: str | None = None
    role_name: str | None = None
    thinking: bool | None = None
    ttft_s: float | None = None
    tokens_per_s: float | None = None
    completion_tokens: int | None = None
    reasoning_tokens: int | None = None
    finish_reason: str | None = None


_MESSAGE_COLUMNS = tuple(f.name for f in fields(Message))
_META_COLUMNS = ("endpoint", "model", "preset", "role_name", "thinking")


class HistoryStore:
    """The chat history; safe to use from the GUI thread and one streaming worker at once."""

    def __init__(self, path: Path | None) -> None:
        """`path` None keeps the history in memory only (`rigdeck chat --no-save`)."""
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(":memory:" if path is None else path,
                                   check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a process kill
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)  # idempotent; executescript commits by itself
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        self._recover()

    @classmethod
    def in_data_folder(cls, data: Path) -> HistoryStore:
        return cls(data / "chat.sqlite3")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # ------------------------------------------------------------ conversations
    def create_conversation(self, title: str, *, endpoint: str | None = None,
                            model: str | None = None, preset: str | None = None
                            ) -> Conversation:
        now = time.time()
        with self._tx() as db:
            cursor = db.execute(
                "INSERT INTO conversations (title, created, updated, endpoint, model, preset)"
                " VALUES (?, ?, ?, ?, ?, ?)", (title, now, now, endpoint, model, preset))
        assert cursor.lastrowid is not None
        return Conversation(cursor.lastrowid, title, now, now, endpoint, model, preset)

    def conversation(self, conversation_id: int) -> Conversation | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM conversations WHERE id = ?",
                                   (conversation_id,)).fetchone()
        return Conversation(**dict(row)) if row else None

    def conversations(self, search: str = "") -> list[Conversation]:
        """Newest first; with `search`, those whose title or any message contains it."""
        query = "SELECT * FROM conversations"
        args: tuple[Any, ...] = ()
        if search.strip():
            pattern = "%" + _escape_like(search.strip()) + "%"
            query += (" WHERE title LIKE ?1 ESCAPE '\\' OR id IN (SELECT conversation_id FROM"
                      " messages WHERE content LIKE ?1 ESCAPE '\\' OR reasoning LIKE ?1"
                      " ESCAPE '\\')")
            args = (pattern,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY updated DESC, id DESC", args).fetchall()
        return [Conversation(**dict(row)) for row in rows]

    def rename(self, conversation_id: int, title: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE conversations SET title = ? WHERE id = ?",
                       (title.strip() or "Untitled", conversation_id))

    def delete(self, conversation_id: int) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    def set_conversation_settings(self, conversation_id: int, *, endpoint: str | None,
                                  model: str | None, preset: str | None) -> None:
        with self._tx() as db:
            db.execute("UPDATE conversations SET endpoint = ?, model = ?, preset = ?"
                       " WHERE id = ?", (endpoint, model, preset, conversation_id))

    # ------------------------------------------------------------ messages
    def messages(self, conversation_id: int) -> list[Message]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM messages WHERE conversation_id = ? ORDER BY id",
                (conversation_id,)).fetchall()
        return [_message(row) for row in rows]

    def add_message(self, conversation_id: int, role: str, content: str, *,
                    reasoning: str = "", **meta: Any) -> Message:
        """Store a finished message (a user turn, a system prompt, an imported reply)."""
        values = {"conversation_id": conversation_id, "role": role, "content": content,
                  "reasoning": reasoning, "created": time.time(), **meta}
        unknown = set(values) - set(_MESSAGE_COLUMNS)
        if unknown:
            raise TypeError(f"unknown message fields: {sorted(unknown)}")
        if "thinking" in values and values["thinking"] is not None:
            values["thinking"] = int(bool(values["thinking"]))
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        with self._tx() as db:
            cursor = db.execute(f"INSERT INTO messages ({columns}) VALUES ({marks})",
                                tuple(values.values()))
            db.execute("UPDATE conversations SET updated = ? WHERE id = ?",
                       (values["created"], conversation_id))
        assert cursor.lastrowid is not None
        message = self.message(cursor.lastrowid)
        assert message is not None
        return message

    def message(self, message_id: int) -> Message | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM messages WHERE id = ?",
                                   (message_id,)).fetchone()
        return _message(row) if row else None

    def edit_message(self, message_id: int, content: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE messages SET content = ? WHERE id = ?", (content, message_id))

    def delete_messages_from(self, message_id: int) -> None:
        """Drop a message and every later one of its conversation (regenerate, edit)."""
        with self._tx() as db:
            row = db.execute("SELECT conversation_id FROM messages WHERE id = ?",
                             (message_id,)).fetchone()
            if row:
                db.execute("DELETE FROM messages WHERE conversation_id = ? AND id >= ?",
                           (row[0], message_id))

    def begin_reply(self, conversation_id: int, **meta: Any) -> ReplyWriter:
        """An empty assistant message in state "streaming", and the writer that fills it."""
        unknown = set(meta) - set(_META_COLUMNS)
        if unknown:
            raise TypeError(f"unknown reply fields: {sorted(unknown)}")
        message = self.add_message(conversation_id, "assistant", "", state="streaming", **meta)
        return ReplyWriter(self, message.id)

    # ------------------------------------------------------------ streaming internals
    def _append_chunk(self, message_id: int, seq: int, piece: Piece) -> None:
        kind = "lone" if piece is LONE_CLOSE else piece.kind
        with self._lock:  # autocommit: one statement, one commit
            self._db.execute("INSERT INTO message_chunks (message_id, seq, kind, text)"
                             " VALUES (?, ?, ?, ?)", (message_id, seq, kind, piece.text))

    def _fold(self, db: sqlite3.Connection, message_id: int, result: dict[str, Any]) -> None:
        text = ReplyText()
        for row in db.execute("SELECT kind, text FROM message_chunks WHERE message_id = ?"
                              " ORDER BY seq", (message_id,)):
            text.apply(LONE_CLOSE if row[0] == "lone" else Piece(row[0], row[1]))
        values = {"content": text.clean_answer(), "reasoning": text.clean_reasoning(),
                  **result}
        sets = ", ".join(f"{name} = ?" for name in values)
        db.execute(f"UPDATE messages SET {sets} WHERE id = ?", (*values.values(), message_id))
        db.execute("DELETE FROM message_chunks WHERE message_id = ?", (message_id,))
        db.execute("UPDATE conversations SET updated = ? WHERE id = (SELECT conversation_id"
                   " FROM messages WHERE id = ?)", (time.time(), message_id))

    def _recover(self) -> None:
        with self._tx() as db:
            rows = db.execute("SELECT id FROM messages WHERE state = 'streaming'").fetchall()
            for row in rows:
                self._fold(db, row[0], {"state": "interrupted",
                                        "error": "Rigdeck stopped while this reply streamed; "
                                                 "what had arrived is kept."})
        if rows:
            log.info("recovered %d interrupted replies", len(rows))


class ReplyWriter:
    """Appends a streaming reply's pieces as they arrive; `finish` folds them into the row."""

    def __init__(self, store: HistoryStore, message_id: int) -> None:
        self.store = store
        self.message_id = message_id
        self._seq = 0

    def append(self, piece: Piece) -> None:
        self._seq += 1
        self.store._append_chunk(self.message_id, self._seq, piece)

    def extend(self, pieces: Sequence[Piece]) -> None:
        for piece in pieces:
            self.append(piece)

    def finish(self, *, state: str, error: str | None = None, ttft_s: float | None = None,
               tokens_per_s: float | None = None, completion_tokens: int | None = None,
               reasoning_tokens: int | None = None, finish_reason: str | None = None,
               model: str | None = None) -> Message:
        """Fold the pieces into the message and record how the reply ended."""
        if state not in STATES:
            raise ValueError(f"unknown state {state!r}")
        result: dict[str, Any] = {"state": state, "error": error, "ttft_s": ttft_s,
                                  "tokens_per_s": tokens_per_s,
                                  "completion_tokens": completion_tokens,
                                  "reasoning_tokens": reasoning_tokens,
                                  "finish_reason": finish_reason}
        if model:
            result["model"] = model
        with self.store._tx() as db:
            self.store._fold(db, self.message_id, result)
        message = self.store.message(self.message_id)
        assert message is not None
        return message


def _message(row: sqlite3.Row) -> Message:
    values = dict(row)
    if values.get("thinking") is not None:
        values["thinking"] = bool(values["thinking"])
    return Message(**values)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
