"""Bench runs in SQLite (WAL) in the user's data folder, as the chat history is kept.

A run is written when it starts and again after each variant, so a crash or a kill keeps
what was measured; a run still marked "running" when the store opens was cut off and is
marked "cancelled". The database is created 0600 in a 0700 folder.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.bench.results import BenchRun, BenchSettings, VariantResult
from app.errors import UserError
from app.paths import private_file, private_folder

log = logging.getLogger(__name__)

FILE_NAME = "bench.sqlite3"
SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    created REAL NOT NULL,
    finished REAL,
    state TEXT NOT NULL,
    model TEXT NOT NULL,
    host TEXT NOT NULL,
    base_plan TEXT NOT NULL,
    settings TEXT NOT NULL,
    machine TEXT NOT NULL DEFAULT '{}',
    engine_version TEXT NOT NULL DEFAULT '',
    error TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS variants (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    result TEXT NOT NULL,
    PRIMARY KEY (run_id, idx)
);
"""


@dataclass(frozen=True)
class RunSummary:
    """A run as a list shows it."""

    id: int
    created: float
    state: str
    model: str
    host: str
    variants: int


class BenchStore:
    """The runs; safe to use from the GUI thread and the bench's worker at once."""

    def __init__(self, path: Path | None) -> None:
        """`path` None keeps the runs in memory only."""
        if path is not None:
            private_folder(path.parent)
            private_file(path)
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(":memory:" if path is None else path,
                                   check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        if self._db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        with self._lock:
            self._db.execute("UPDATE runs SET state = 'cancelled', error = ? WHERE state = "
                             "'running'", ("cut off: Rigdeck ended during the run",))

    @classmethod
    def in_data_folder(cls, data: Path) -> BenchStore:
        return cls(data / FILE_NAME)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _exec(self, sql: str, args: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        try:
            with self._lock:
                return self._db.execute(sql, args)
        except sqlite3.OperationalError as exc:
            raise UserError(f"cannot save the bench run in {self.path}: {exc}") from exc

    def create(self, run: BenchRun) -> BenchRun:
        """Store a new run (its id set here) and its variants."""
        cursor = self._exec(
            "INSERT INTO runs (created, state, model, host, base_plan, settings, machine,"
            " engine_version, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run.created, run.state, run.model, run.host, run.base_plan_json,
             json.dumps(run.settings.to_dict()), json.dumps(run.machine), run.engine_version,
             run.error))
        assert cursor.lastrowid is not None
        run.id = cursor.lastrowid
        for variant in run.variants:
            self.save_variant(run.id, variant)
        return run

    def save_variant(self, run_id: int, variant: VariantResult) -> None:
        self._exec("INSERT OR REPLACE INTO variants (run_id, idx, result) VALUES (?, ?, ?)",
                   (run_id, variant.index, json.dumps(variant.to_dict())))

    def finish(self, run: BenchRun) -> None:
        """Store the run's end: its state, error, machine and engine version."""
        run.finished = run.finished or time.time()
        self._exec("UPDATE runs SET state = ?, finished = ?, error = ?, machine = ?,"
                   " engine_version = ? WHERE id = ?",
                   (run.state, run.finished, run.error, json.dumps(run.machine),
                    run.engine_version, run.id))

    def runs(self) -> list[RunSummary]:
        """Every run, newest first."""
        rows = self._exec(
            "SELECT r.id, r.created, r.state, r.model, r.host, COUNT(v.idx) AS variants"
            " FROM runs r LEFT JOIN variants v ON v.run_id = r.id GROUP BY r.id"
            " ORDER BY r.created DESC, r.id DESC").fetchall()
        return [RunSummary(**dict(row)) for row in rows]

    def get(self, run_id: int) -> BenchRun:
        """Run `run_id` with its variants.

        Raises:
            UserError: there is no such run.
        """
        row = self._exec("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            known = ", ".join(str(r.id) for r in self.runs()[:10]) or "none yet"
            raise UserError(f"no bench run #{run_id} (runs: {known})")
        variants = [VariantResult.from_dict(json.loads(v["result"])) for v in self._exec(
            "SELECT result FROM variants WHERE run_id = ? ORDER BY idx", (run_id,)).fetchall()]
        return BenchRun(id=row["id"], created=row["created"], model=row["model"],
                        host=row["host"], base_plan_json=row["base_plan"],
                        settings=BenchSettings.from_dict(json.loads(row["settings"])),
                        variants=variants, state=row["state"], finished=row["finished"],
                        machine=json.loads(row["machine"]),
                        engine_version=row["engine_version"], error=row["error"])

    def delete(self, run_id: int) -> None:
        self._exec("DELETE FROM runs WHERE id = ?", (run_id,))
