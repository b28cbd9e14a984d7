"""Conversations and messages in SQLite (WAL) in the user's data folder.

A reply is written while it streams: its pieces are appended to `message_chunks` in
batches, one commit at most every `FLUSH_INTERVAL_S` (a commit per token wrote 7.9 MB for
1,000 tokens), so a crash or a kill loses at most the last quarter second. When the reply
ends, the pieces are folded into the message row; a row still marked "streaming" when the
store opens is folded the same way and marked "interrupted".

A full data disk loses nothing: what is committed stays as it was (SQLite rolls the
failed write back), the reply goes on in memory, the user is told once, and what waits is
written at the next batch or the next write once there is space again. The database is
created 0600 in a 0700 folder.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from app.chat.stream_parser import LONE_CLOSE, Piece, ReplyText
from app.errors import UserError
from app.paths import private_file, private_folder, tighten

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
FLUSH_INTERVAL_S = 0.25
"""A streaming reply's pieces are committed at most this often (and at its end)."""
FULL_RETRY_S = 2.0
"""While the disk is full, how often a streaming reply tries to write what waits."""

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
    content_chars: int | None = None
    """In a preview (`HistoryStore.preview_messages`): the whole answer's length, when
    `content` holds only its start and end; None when `content` is whole."""
    reasoning_chars: int | None = None
    """The same for `reasoning`."""


_PREVIEW_FIELDS = ("content_chars", "reasoning_chars")
_MESSAGE_COLUMNS = tuple(f.name for f in fields(Message) if f.name not in _PREVIEW_FIELDS)
_META_COLUMNS = ("endpoint", "model", "preset", "role_name", "thinking")


class DiskFullError(UserError):
    """The data disk is full: this write was not made; everything saved before is intact."""


def disk_full_message(path: Path | None) -> str:
    """What the user reads, once, when a reply no longer fits on the data disk."""
    return ("the data disk is full: the reply is kept in memory and saved when space is "
            f"free again ({path})")


def _is_disk_full(error: sqlite3.Error) -> bool:
    return getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL


class HistoryStore:
    """The chat history; safe to use from the GUI thread and one streaming worker at once.

    Writes that cannot wait (a user's turn, a rename) raise `DiskFullError` on a full disk;
    a streaming reply never does: it waits in memory (`waiting`) and is written by the
    next batch or the next write that finds space, or by `save_waiting`.
    """

    def __init__(self, path: Path | None) -> None:
        """`path` None keeps the history in memory only (`rigdeck chat --no-save`).

        Raises:
            DiskFullError: a new database cannot be created on a full disk.
        """
        if path is not None:
            private_folder(path.parent)
            private_file(path)  # SQLite gives its -wal and -shm files the same mode
            for companion in ("-wal", "-shm"):
                tighten(path.with_name(path.name + companion))
        self.path = path
        self._lock = threading.RLock()
        self._waiting: dict[int, ReplyWriter] = {}
        """Replies with pieces or an end not yet committed, by message id."""
        self.disk_full: str | None = None
        """The message the user was given while the disk is full; None once all is saved."""
        self._db = sqlite3.connect(":memory:" if path is None else path,
                                   check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a kill
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)  # idempotent; commits by itself
            if self._db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.OperationalError as exc:
            if not _is_disk_full(exc):
                raise
            self._db.close()
            raise DiskFullError(f"the data disk is full: the chat history cannot be created "
                              f"({path})") from None
        try:
            self._recover()
        except DiskFullError:  # folded at a later start; the pieces are kept meanwhile
            log.warning("the data disk is full: interrupted replies are folded later (%s)",
                        path)

    @classmethod
    def in_data_folder(cls, data: Path) -> HistoryStore:
        return cls(data / "chat.sqlite3")

    def close(self) -> None:
        """Write what waits, if there is space now, and close the database."""
        with self._lock:
            if self._waiting and not self.save_waiting():
                count = len(self._waiting)
                lost = "a reply" if count == 1 else f"{count} replies"
                log.warning("the data disk is still full: %s kept in memory could not be "
                            "saved; what was written before the disk filled is kept (%s)",
                            lost, self.path)
            self._db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction; a full disk rolls it back and raises DiskFullError."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                    self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:  # SQLite may have rolled back already
                        self._db.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as exc:
                if not _is_disk_full(exc):
                    raise
                raise DiskFullError(f"the data disk is full: nothing new can be saved until "
                                  f"space is free again ({self.path})") from None

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """A write of the user's; replies waiting for space go first where they fit."""
        with self._lock:
            if self._waiting:
                self.save_waiting()
            with self._write() as db:
                yield db

    def save_waiting(self) -> bool:
        """Commit the pieces and ends of replies that wait in memory; False while the disk
        is still full (they keep waiting)."""
        with self._lock:
            for writer in list(self._waiting.values()):
                try:
                    with self._write() as db:
                        written, ended = self._save(db, writer)
                except DiskFullError:
                    self._tell_disk_full()
                    return False
                writer._saved(written, ended)
                if ended or not writer._pending:
                    del self._waiting[writer.message_id]
            if self.disk_full is not None:
                log.info("the data disk has space again: the replies kept in memory are "
                         "saved (%s)", self.path)
                self.disk_full = None
            return True

    def _tell_disk_full(self) -> None:
        if self.disk_full is None:
            self.disk_full = disk_full_message(self.path)
            log.warning("%s", self.disk_full)

    def _save(self, db: sqlite3.Connection, writer: ReplyWriter) -> tuple[int, bool]:
        """Write what `writer` holds; (pieces written, whether its end was folded)."""
        batch = list(writer._pending)
        result = writer._result
        if db.execute("SELECT 1 FROM messages WHERE id = ?",
                      (writer.message_id,)).fetchone() is None:
            return len(batch), True  # deleted meanwhile (regenerate): nothing to keep
        db.executemany("INSERT INTO message_chunks (message_id, seq, kind, text)"
                       " VALUES (?, ?, ?, ?)",
                       [(writer.message_id, *piece) for piece in batch])
        if result is not None:
            self._fold(db, writer.message_id, result)
        return len(batch), result is not None

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
        """The conversation's messages; a reply waiting for space as it is in memory."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM messages WHERE conversation_id = ? ORDER BY id",
                (conversation_id,)).fetchall()
            return [self._shown(row) for row in rows]

    def preview_messages(self, conversation_id: int, *, over: int, head: int, tail: int
                         ) -> list[Message]:
        """The conversation as a view shows it: an answer or thinking longer than `over`
        characters comes as its first `head` and last `tail` characters, its length in
        `content_chars`/`reasoning_chars`. SQLite cuts them: a 100 MB reply never becomes a
        Python string, whose making holds the GIL (and so the window) for 100 ms and more."""
        texts = {}
        for name in ("content", "reasoning"):
            texts[name] = (f"CASE WHEN length({name}) > :over THEN substr({name}, 1, :head) "
                           f"|| substr({name}, -:tail) ELSE {name} END AS {name}, "
                           f"CASE WHEN length({name}) > :over THEN length({name}) END "
                           f"AS {name}_chars")
        columns = ", ".join(texts.get(c, c) for c in _MESSAGE_COLUMNS)
        with self._lock:
            rows = self._db.execute(
                f"SELECT {columns} FROM messages WHERE conversation_id = :conversation "
                "ORDER BY id", {"over": over, "head": head, "tail": tail,
                                "conversation": conversation_id}).fetchall()
            return [self._shown(row) for row in rows]

    def message_texts(self, message_id: int) -> tuple[str, str]:
        """A message's whole answer and thinking (what "Show all" of a preview shows)."""
        with self._lock:
            waiting = self._waiting.get(message_id)
            if waiting is not None and waiting._in_memory is not None:
                return waiting._in_memory.content, waiting._in_memory.reasoning
            row = self._db.execute("SELECT content, reasoning FROM messages WHERE id = ?",
                                   (message_id,)).fetchone()
        return (str(row[0]), str(row[1])) if row is not None else ("", "")

    def add_message(self, conversation_id: int, role: str, content: str, *,
                    reasoning: str = "", **meta: Any) -> Message:
        """Store a finished message (a user turn, a system prompt, an imported reply).

        Raises:
            DiskFullError: the data disk is full (nothing was stored).
        """
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
            return self._shown(row) if row else None

    def _shown(self, row: sqlite3.Row) -> Message:
        waiting = self._waiting.get(row["id"])
        if waiting is not None and waiting._in_memory is not None:
            return waiting._in_memory
        return _message(row)

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

    def begin_reply(self, conversation_id: int, *,
                    clock: Callable[[], float] = time.monotonic, **meta: Any) -> ReplyWriter:
        """An empty assistant message in state "streaming", and the writer that fills it
        (`clock` paces its commits).

        Raises:
            DiskFullError: the data disk is full (no reply was begun).
        """
        unknown = set(meta) - set(_META_COLUMNS)
        if unknown:
            raise TypeError(f"unknown reply fields: {sorted(unknown)}")
        message = self.add_message(conversation_id, "assistant", "", state="streaming", **meta)
        return ReplyWriter(self, message.id, clock=clock)

    # ------------------------------------------------------------ streaming internals
    def _fold(self, db: sqlite3.Connection, message_id: int, result: dict[str, Any]) -> None:
        text = self._stored_text(db, message_id)
        values = {"content": text.clean_answer(), "reasoning": text.clean_reasoning(),
                  **result}
        sets = ", ".join(f"{name} = ?" for name in values)
        db.execute(f"UPDATE messages SET {sets} WHERE id = ?", (*values.values(), message_id))
        db.execute("DELETE FROM message_chunks WHERE message_id = ?", (message_id,))
        db.execute("UPDATE conversations SET updated = ? WHERE id = (SELECT conversation_id"
                   " FROM messages WHERE id = ?)", (time.time(), message_id))

    @staticmethod
    def _stored_text(db: sqlite3.Connection, message_id: int) -> ReplyText:
        text = ReplyText()
        for row in db.execute("SELECT kind, text FROM message_chunks WHERE message_id = ?"
                              " ORDER BY seq", (message_id,)):
            text.apply(_piece(row[0], row[1]))
        return text

    def _recover(self) -> None:
        with self._write() as db:
            rows = db.execute("SELECT id FROM messages WHERE state = 'streaming'").fetchall()
            for row in rows:
                self._fold(db, row[0], {"state": "interrupted",
                                        "error": "Rigdeck stopped while this reply streamed; "
                                                 "what had arrived is kept."})
        if rows:
            log.info("recovered %d interrupted replies", len(rows))


class ReplyWriter:
    """Appends a streaming reply's pieces as they arrive, committed in batches; `finish`
    folds them into the row. Never raises for a full disk: what does not fit waits."""

    def __init__(self, store: HistoryStore, message_id: int, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.message_id = message_id
        self._clock = clock
        self._seq = 0
        self._pending: list[tuple[int, str, str]] = []
        """(seq, kind, text) of pieces not yet committed."""
        self._result: dict[str, Any] | None = None
        """How the reply ended, until that is committed."""
        self._in_memory: Message | None = None
        """The ended reply as the user sees it, while it waits for space."""
        self._last_try = clock()

    def append(self, piece: Piece) -> None:
        with self.store._lock:
            self._seq += 1
            self._pending.append((self._seq, "lone" if piece is LONE_CLOSE else piece.kind,
                                  piece.text))
            self.store._waiting[self.message_id] = self
        now = self._clock()
        wait = FULL_RETRY_S if self.store.disk_full else FLUSH_INTERVAL_S
        if now - self._last_try >= wait:
            self._last_try = now
            self.flush()

    def extend(self, pieces: Sequence[Piece]) -> None:
        for piece in pieces:
            self.append(piece)

    def flush(self) -> bool:
        """Commit what has arrived (one transaction); False when the disk is full."""
        return self.store.save_waiting()

    def finish(self, *, state: str, error: str | None = None, ttft_s: float | None = None,
               tokens_per_s: float | None = None, completion_tokens: int | None = None,
               reasoning_tokens: int | None = None, finish_reason: str | None = None,
               model: str | None = None) -> Message:
        """Fold the pieces into the message and record how the reply ended; on a full
        disk the message comes back from memory, its error saying it waits for space."""
        if state not in STATES:
            raise ValueError(f"unknown state {state!r}")
        result: dict[str, Any] = {"state": state, "error": error, "ttft_s": ttft_s,
                                  "tokens_per_s": tokens_per_s,
                                  "completion_tokens": completion_tokens,
                                  "reasoning_tokens": reasoning_tokens,
                                  "finish_reason": finish_reason}
        if model:
            result["model"] = model
        store = self.store
        with store._lock:
            self._result = result
            store._waiting[self.message_id] = self
            if not store.save_waiting():
                self._in_memory = self._as_kept(result)
            message = store.message(self.message_id)
        if message is None:  # deleted while it streamed
            raise LookupError(f"message {self.message_id} was deleted")
        return message

    def _as_kept(self, result: dict[str, Any]) -> Message:
        """The reply from what is committed and what waits, as `finish` would store it."""
        store = self.store
        row = store._db.execute("SELECT * FROM messages WHERE id = ?",
                                (self.message_id,)).fetchone()
        text = store._stored_text(store._db, self.message_id)
        for _seq, kind, piece_text in self._pending:
            text.apply(_piece(kind, piece_text))
        note = store.disk_full or disk_full_message(store.path)
        error = f"{result['error']} {note}" if result.get("error") else note
        return replace(_message(row), content=text.clean_answer(),
                       reasoning=text.clean_reasoning(), **{**result, "error": error})

    def _saved(self, written: int, ended: bool) -> None:
        """`written` pieces (and the end, if `ended`) are committed: forget them."""
        del self._pending[:written]
        if ended:
            self._result = None
            self._in_memory = None


def _piece(kind: str, text: str) -> Piece:
    return LONE_CLOSE if kind == "lone" else Piece("answer" if kind == "answer"
                                                   else "reasoning", text)


def _message(row: sqlite3.Row) -> Message:
    values = dict(row)
    if values.get("thinking") is not None:
        values["thinking"] = bool(values["thinking"])
    return Message(**values)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
