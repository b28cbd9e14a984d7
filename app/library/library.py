"""The Library service: the list of models and adapters, kept current, with Qt-free events.

The UI adapts it later (a table model over `entries`, connected to `added`, `changed` and
`removed`). `rescan()` is blocking and meant for a worker thread; `start_watching()`
runs it on a background thread every few seconds (polling by mtime: portable, and cheap
thanks to the index). Events fire on the thread that scanned: a Qt adapter connects with
psygnal's `thread=` argument (or queues) to get them on the GUI thread.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from psygnal import Signal

from app.library.compat import Compatibility, check_compatibility
from app.library.entries import Entry, error_entry
from app.library.index import LibraryIndex, stamp_of
from app.library.loader import load_entry
from app.library.sources import Candidate, discover

log = logging.getLogger(__name__)

INDEX_FILE_NAME = "library.sqlite3"
READ_THREADS = 4
PROCESS_MIN_READS = 48
"""From this many files to read, worker processes read them: a GGUF header's vocabulary
is parsed in Python (~15 ms a file), so threads share one core; below it, starting the
processes (~0.2 s) costs more than it saves."""


def _read_pool(reads: int) -> Executor:
    """Processes for a large cold scan where there are several cores, else threads (which
    still overlap one file's disk reads with another's parsing)."""
    cores = os.cpu_count() or 1
    if reads >= PROCESS_MIN_READS and cores > 1:
        # spawn: the caller is a worker thread of a Qt app, which must not be forked
        return ProcessPoolExecutor(min(cores, 8), mp_context=multiprocessing.get_context("spawn"))
    return ThreadPoolExecutor(READ_THREADS, thread_name_prefix="library-read")


@dataclass(frozen=True)
class ScanReport:
    """What one rescan found: the entries, the problems (loops, unreadable folders) and
    how many candidates had to be read (the rest came from the index)."""

    entries: tuple[Entry, ...]
    problems: tuple[str, ...]
    read: int
    reused: int
    added: tuple[Entry, ...] = field(default=(), repr=False)
    changed: tuple[Entry, ...] = field(default=(), repr=False)
    removed: tuple[Entry, ...] = field(default=(), repr=False)


class Library:
    """Models and adapters from the user's folders and (optionally) the default stores.

    Events (each carries one `Entry`): `added`, `changed` (re-read with a different
    result, e.g. a download that completed), `removed`; `scanned(ScanReport)` after each
    rescan.
    """

    added = Signal(object)
    changed = Signal(object)
    removed = Signal(object)
    scanned = Signal(object)

    def __init__(
        self,
        folders: Iterable[Path] = (),
        *,
        index_path: Path | None = None,
        include_defaults: bool = True,
        env: Mapping[str, str] | None = None,
        home: Path | None = None,
    ) -> None:
        self._folders = [Path(f) for f in folders]
        self._include_defaults = include_defaults
        self._env = dict(os.environ if env is None else env)
        self._home = home
        self._index = LibraryIndex(index_path)
        self._entries: dict[Path, Entry] = {}
        self._problems: tuple[str, ...] = ()
        self._scan_lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    # ------------------------------------------------------------ reading
    @property
    def entries(self) -> list[Entry]:
        """The current entries, models and adapters, in path order."""
        return [self._entries[p] for p in sorted(self._entries)]

    @property
    def problems(self) -> tuple[str, ...]:
        return self._problems

    def get(self, path: Path) -> Entry | None:
        return self._entries.get(Path(path).absolute())

    def compatibility(self, adapter: Entry, model: Entry) -> Compatibility:
        return check_compatibility(adapter, model)

    def compatible_models(self, adapter: Entry) -> list[tuple[Entry, Compatibility]]:
        """Each model in the library with whether `adapter` fits it."""
        return [(m, check_compatibility(adapter, m)) for m in self.entries if m.kind == "model"]

    # ------------------------------------------------------------ scanning
    def set_folders(self, folders: Iterable[Path]) -> None:
        """Change the user's folders; the next rescan applies it."""
        self._folders = [Path(f) for f in folders]

    def _from_index(self, candidate: Candidate) -> Entry | None:
        """The candidate's entry without reading the file (an error found by discovery, or
        the index's record of an unchanged file), else None."""
        if candidate.error:
            adapter = bool(candidate.name and "(adapter)" in candidate.name)
            return error_entry(candidate.path, "gguf-lora" if adapter else "gguf",
                               candidate.error)
        return self._index.lookup(candidate.path, stamp_of(candidate.path))

    def _read_all(self, candidates: list[Candidate]) -> list[tuple[Entry, bool]]:
        """Every candidate's entry (named as its source says), and whether it was read."""
        known = [self._from_index(candidate) for candidate in candidates]
        to_read = [c.path for c, entry in zip(candidates, known, strict=True) if entry is None]
        read: dict[Path, Entry] = {}
        if to_read:
            with _read_pool(len(to_read)) as pool:
                read = dict(zip(to_read, pool.map(load_entry, to_read, chunksize=4),
                                strict=True))
            for path, entry in read.items():
                self._index.store(entry, stamp_of(path))
        results = []
        for candidate, cached in zip(candidates, known, strict=True):
            if candidate.error:  # discovery's verdict: named as discovery named it
                assert cached is not None
                results.append((cached.with_source(candidate.source, candidate.name), True))
                continue
            entry = read[candidate.path] if cached is None else cached
            results.append((entry.with_source(candidate.source, candidate.name or entry.name),
                            cached is None))
        return results

    def rescan(self, *, prune_index: bool = True) -> ScanReport:
        """Find and read everything again (unchanged files come from the index); emit events.

        `prune_index` drops index records of paths no longer found (off when scanning a
        few paths, so the full library's records survive).
        """
        with self._scan_lock:
            found = discover(
                self._folders,
                include_defaults=self._include_defaults,
                env=self._env,
                home=self._home,
            )
            fresh: dict[Path, Entry] = {}
            read = 0
            results = self._read_all(found.candidates)
            for candidate, (entry, was_read) in zip(found.candidates, results, strict=True):
                read += was_read
                fresh[candidate.path.absolute()] = entry
            if prune_index:
                self._index.forget_except({str(c.path) for c in found.candidates})
            self._index.commit()
            old = self._entries
            added = [e for p, e in fresh.items() if p not in old]
            changed = [e for p, e in fresh.items() if p in old and old[p] != e]
            removed = [e for p, e in old.items() if p not in fresh]
            self._entries = fresh
            self._problems = tuple(found.problems)
            report = ScanReport(
                entries=tuple(self.entries),
                problems=self._problems,
                read=read,
                reused=len(fresh) - read,
                added=tuple(added),
                changed=tuple(changed),
                removed=tuple(removed),
            )
        for entry in removed:
            self.removed.emit(entry)
        for entry in added:
            self.added.emit(entry)
        for entry in changed:
            self.changed.emit(entry)
        self.scanned.emit(report)
        return report

    # ------------------------------------------------------------ watching
    def start_watching(self, interval_s: float = 2.0) -> None:
        """Rescan every `interval_s` seconds on a daemon thread until `stop_watching()`."""
        if self._watcher is not None:
            return
        self._stop.clear()
        self._watcher = threading.Thread(
            target=self._watch, args=(interval_s,), name="library-watch", daemon=True
        )
        self._watcher.start()

    def _watch(self, interval_s: float) -> None:
        while not self._stop.is_set():
            try:
                self.rescan()
            except Exception:  # a watcher must survive anything one scan hits
                log.exception("library rescan failed")
            self._stop.wait(interval_s)

    def stop_watching(self) -> None:
        """Stop the watcher thread and wait for it (at most one scan's time)."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            self._stop.set()
            watcher.join()

    def close(self) -> None:
        self.stop_watching()
        self._index.close()
