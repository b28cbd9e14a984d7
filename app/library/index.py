"""The library's index: every entry read so far, in SQLite, keyed by path, size and mtime.

A rescan stats each candidate and reads only those whose size or mtime changed (for a
folder: the size and mtime of each file in it). A corrupt index file is set aside and
rebuilt; it is only a cache, so nothing the user made is lost.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from app.library.entries import Entry, entry_from_json, entry_to_record

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    stamp TEXT NOT NULL,
    record TEXT NOT NULL
)
"""
SCHEMA_VERSION = 2
"""2: PEFT adapters carry their base's architecture (entries read before lack it)."""


@dataclass(frozen=True)
class Stamp:
    """What identifies one version of a candidate on disk."""

    size: int
    mtime_ns: int
    detail: str = ""
    """For a folder: each file's name, size and mtime."""


def stamp_of(path: Path) -> Stamp:
    """The stamp of a file (following links) or of a model folder's files.

    A path that cannot be stat'ed (a broken link, permission denied) gets a stamp that
    still changes when the link itself changes.
    """
    try:
        if not path.is_dir():
            info = path.stat()
            return Stamp(info.st_size, info.st_mtime_ns)
        parts: list[str] = []
        size = mtime = 0
        with os.scandir(path) as children:
            for child in sorted(children, key=lambda e: e.name):
                try:
                    if not child.is_file():
                        continue
                    info = child.stat()
                except OSError:
                    parts.append(f"{child.name}:?")
                    continue
                size += info.st_size
                mtime = max(mtime, info.st_mtime_ns)
                parts.append(f"{child.name}:{info.st_size}:{info.st_mtime_ns}")
        return Stamp(size, mtime, "|".join(parts))
    except OSError as exc:
        try:
            link = path.lstat()
            return Stamp(-1, link.st_mtime_ns, f"error:{exc.errno}")
        except OSError:
            return Stamp(-1, 0, f"error:{exc.errno}")


class LibraryIndex:
    """Entries by path in SQLite; safe to use from one worker thread at a time."""

    def __init__(self, path: Path | None) -> None:
        """`path` None keeps the index in memory (tests, `rigdeck show`)."""
        self.path = path
        self._lock = threading.Lock()
        self._closed = False
        self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        if self.path is None:
            return self._init(sqlite3.connect(":memory:", check_same_thread=False))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return self._init(sqlite3.connect(self.path, check_same_thread=False))
        except sqlite3.DatabaseError as exc:
            backup = self.path.with_name(
                f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}"
            )
            log.warning(
                "library index %s unreadable (%s); rebuilding, old file kept as %s",
                self.path,
                exc,
                backup,
            )
            self.path.replace(backup)
            return self._init(sqlite3.connect(self.path, check_same_thread=False))

    @staticmethod
    def _init(db: sqlite3.Connection) -> sqlite3.Connection:
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                db.execute("DROP TABLE IF EXISTS entries")
            db.execute(SCHEMA)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.commit()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def lookup(self, path: Path, stamp: Stamp) -> Entry | None:
        """The stored entry for `path` if it was read at this same stamp."""
        with self._lock:
            row = self._db.execute(
                "SELECT size, mtime_ns, stamp, record FROM entries WHERE path = ?", (str(path),)
            ).fetchone()
        if row is None or (row[0], row[1], row[2]) != (stamp.size, stamp.mtime_ns, stamp.detail):
            return None
        try:
            return entry_from_json(json.loads(row[3]))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("index record for %s unreadable (%s); reading the file again", path, exc)
            return None

    def store(self, entry: Entry, stamp: Stamp) -> None:
        record = json.dumps(entry_to_record(entry))
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO entries (path, size, mtime_ns, stamp, record)"
                " VALUES (?, ?, ?, ?, ?)",
                (str(entry.path), stamp.size, stamp.mtime_ns, stamp.detail, record),
            )

    def forget_except(self, keep: set[str]) -> None:
        """Drop entries whose path is no longer found."""
        with self._lock:
            stored = [row[0] for row in self._db.execute("SELECT path FROM entries")]
            gone = [(p,) for p in stored if p not in keep]
            self._db.executemany("DELETE FROM entries WHERE path = ?", gone)

    def commit(self) -> None:
        with self._lock:
            self._db.commit()

    def close(self) -> None:
        """Commit and close; closing twice is harmless."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._db.commit()
            self._db.close()
