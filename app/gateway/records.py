"""What the Gateway served: each request's client, model id, role, backend, tokens, time to
first token, tokens/s and outcome — the last ones in memory for the live table, all of
them in gateway.sqlite3 in the data folder for the history and the usage per key and role.

A record is written when its request ends, from the request's own thread; a write that
fails (a full disk) is logged and the request's answer is not affected.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from app.paths import private_file, private_folder

log = logging.getLogger(__name__)

LIVE_RECORDS = 500
"""Requests the live table keeps (older ones are in the history)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY,
    started REAL NOT NULL,
    client TEXT NOT NULL,
    peer TEXT NOT NULL,
    path TEXT NOT NULL,
    model TEXT NOT NULL,
    role TEXT,
    backend TEXT,
    host TEXT,
    stream INTEGER NOT NULL,
    status INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    ttft_s REAL,
    tokens_per_s REAL,
    duration_s REAL,
    waited_s REAL
);
CREATE INDEX IF NOT EXISTS requests_started ON requests(started);
"""


@dataclass
class RequestRecord:
    """One request through the Gateway; filled in as it goes."""

    client: str
    """The gateway key's name ("no key" where none is needed)."""
    peer: str
    path: str
    model: str
    stream: bool
    started: float = field(default_factory=time.time)
    role: str | None = None
    backend: str | None = None
    host: str | None = None
    status: int = 0
    """0 while it runs."""
    outcome: str = "running"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    ttft_s: float | None = None
    tokens_per_s: float | None = None
    duration_s: float | None = None
    waited_s: float | None = None
    """Time spent waiting for a start on demand or a free slot."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Usage:
    """Requests and tokens of one key and role."""

    client: str
    role: str | None
    requests: int
    failed: int
    prompt_tokens: int
    completion_tokens: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class RequestLog:
    """The live records and the history; safe from any thread."""

    def __init__(self, path: Path | None) -> None:
        """`path` None: the history is kept in memory only."""
        if path is not None:
            private_folder(path.parent)
            private_file(path)
        self._lock = threading.Lock()
        self.live: deque[RequestRecord] = deque(maxlen=LIVE_RECORDS)
        self._db = sqlite3.connect(":memory:" if path is None else path,
                                   check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # no fsync per request; survives a kill
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def begin(self, record: RequestRecord) -> None:
        with self._lock:
            self.live.append(record)

    def finish(self, record: RequestRecord) -> None:
        values = record.as_dict()
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        try:
            with self._lock:
                self._db.execute(f"INSERT INTO requests ({columns}) VALUES ({marks})",
                                 [int(v) if isinstance(v, bool) else v for v in values.values()])
        except sqlite3.Error as exc:
            log.warning("a gateway request was not written to the history: %s", exc)

    def recent(self, limit: int = 100) -> list[RequestRecord]:
        """The newest requests from the history, newest first."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM requests ORDER BY started DESC LIMIT ?",
                                    (limit,)).fetchall()
            names = [d[0] for d in self._db.execute("SELECT * FROM requests LIMIT 0").description]
        out = []
        for row in rows:
            values = dict(zip(names, row, strict=True))
            values.pop("id")
            values["stream"] = bool(values["stream"])
            out.append(RequestRecord(**values))
        return out

    def usage(self, since: float = 0.0) -> list[Usage]:
        """Per key and role since `since` (a time.time()), most requests first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT client, role, COUNT(*), SUM(status >= 400), "
                "COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0) "
                "FROM requests WHERE started >= ? GROUP BY client, role "
                "ORDER BY COUNT(*) DESC, client, role", (since,)).fetchall()
        return [Usage(r[0], r[1], int(r[2]), int(r[3] or 0), int(r[4]), int(r[5]))
                for r in rows]
