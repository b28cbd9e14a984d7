"""The Library service: the index spares re-reading, events follow files on disk."""

import os
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import Executor
from pathlib import Path

import pytest

from app.library.entries import Entry
from app.library.index import LibraryIndex, stamp_of
from app.library.library import Library, ScanReport
from tests.unit.app.library.builders import Shape, write_gguf, write_hf_model, write_peft


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    write_gguf(root / "a.gguf")
    write_hf_model(root / "hf")
    write_peft(root / "lora")
    return root


@pytest.fixture
def library(folder: Path, tmp_path: Path) -> Iterator[Library]:
    library = Library(
        [folder], include_defaults=False, index_path=tmp_path / "data" / "library.sqlite3"
    )
    yield library
    library.close()


class Recorder:
    def __init__(self, library: Library) -> None:
        self.events: list[tuple[str, str]] = []
        library.added.connect(lambda e: self.events.append(("added", e.path.name)))
        library.changed.connect(lambda e: self.events.append(("changed", e.path.name)))
        library.removed.connect(lambda e: self.events.append(("removed", e.path.name)))


def test_first_scan_adds_everything(library: Library) -> None:
    recorder = Recorder(library)

    report = library.rescan()

    assert sorted(recorder.events) == [("added", "a.gguf"), ("added", "hf"), ("added", "lora")]
    assert (report.read, report.reused) == (3, 0)
    assert [e.kind for e in library.entries] == ["model", "model", "adapter"]


def test_second_scan_reads_nothing_and_emits_nothing(library: Library) -> None:
    library.rescan()
    recorder = Recorder(library)

    report = library.rescan()

    assert (report.read, report.reused) == (0, 3)
    assert recorder.events == []


def test_a_new_index_object_reuses_the_file(folder: Path, tmp_path: Path, library: Library) -> None:
    library.rescan()
    library.close()
    again = Library(
        [folder], include_defaults=False, index_path=tmp_path / "data" / "library.sqlite3"
    )

    report = again.rescan()
    again.close()

    assert (report.read, report.reused) == (0, 3)
    assert [e.to_json() for e in report.entries] == [e.to_json() for e in library.entries]


def test_changed_added_and_removed_files(library: Library, folder: Path) -> None:
    library.rescan()
    recorder = Recorder(library)
    write_gguf(folder / "a.gguf", Shape(layers=5))  # rewritten: new size and mtime
    write_gguf(folder / "new.gguf")
    shutil.rmtree(folder / "lora")

    report = library.rescan()

    assert sorted(recorder.events) == [
        ("added", "new.gguf"),
        ("changed", "a.gguf"),
        ("removed", "lora"),
    ]
    assert report.read == 2
    changed = library.get(folder / "a.gguf")
    assert changed is not None
    assert changed.layers == 5


def test_a_download_shows_incomplete_until_whole(
    library: Library, folder: Path, tmp_path: Path
) -> None:
    whole = write_gguf(tmp_path / "whole.gguf").read_bytes()
    target = folder / "downloading.gguf"
    target.write_bytes(whole[: len(whole) // 2])
    library.rescan()
    entry = library.get(target)
    assert entry is not None
    assert entry.error is None
    assert not entry.complete
    seen: list[Entry] = []
    library.changed.connect(seen.append)

    target.write_bytes(whole)
    os.utime(target, ns=(1, 2_000_000_000))  # a distinct mtime even on coarse clocks
    library.rescan()

    assert [e.complete for e in seen] == [True]


def test_a_changed_hf_folder_is_read_again(library: Library, folder: Path) -> None:
    library.rescan()
    (folder / "hf" / "tokenizer_config.json").write_text("{broken")

    library.rescan()

    entry = library.get(folder / "hf")
    assert entry is not None
    assert entry.error is not None
    assert entry.error.startswith("tokenizer_config.json: invalid JSON")


def test_bad_files_are_entries_and_the_scan_goes_on(library: Library, folder: Path) -> None:
    (folder / "bad.gguf").write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 16)

    report = library.rescan()

    errors = {e.path.name: e.error for e in report.entries if e.error}
    assert list(errors) == ["bad.gguf"]
    assert errors["bad.gguf"] is not None
    assert "impossible" in errors["bad.gguf"]
    assert len(report.entries) == 4


def test_corrupt_index_is_rebuilt(folder: Path, tmp_path: Path) -> None:
    index_path = tmp_path / "data" / "library.sqlite3"
    index_path.parent.mkdir(parents=True)
    index_path.write_bytes(b"this is not sqlite" * 100)

    library = Library([folder], include_defaults=False, index_path=index_path)
    report = library.rescan()
    library.close()

    assert len(report.entries) == 3
    assert list(index_path.parent.glob("library.sqlite3.corrupt-*"))


def test_index_stamps_follow_size_and_mtime(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf")
    index = LibraryIndex(None)
    entry_stamp = stamp_of(path)
    from app.library.loader import load_entry

    index.store(load_entry(path), entry_stamp)
    assert index.lookup(path, entry_stamp) is not None

    os.utime(path, ns=(1, 1))
    assert index.lookup(path, stamp_of(path)) is None
    index.close()


def test_compatible_models(library: Library) -> None:
    library.rescan()
    adapter = next(e for e in library.entries if e.kind == "adapter")

    verdicts = library.compatible_models(adapter)

    assert [(m.path.name, c.fits) for m, c in verdicts] == [("a.gguf", True), ("hf", True)]


def test_watching_picks_up_a_new_file(library: Library, folder: Path) -> None:
    first = threading.Event()
    arrived = threading.Event()
    library.scanned.connect(lambda report: first.set())
    library.added.connect(lambda e: arrived.set() if e.path.name == "late.gguf" else None)

    library.start_watching(interval_s=0.05)
    assert first.wait(30)
    write_gguf(folder / "late.gguf")
    assert arrived.wait(30)
    library.stop_watching()

    assert library.get(folder / "late.gguf") is not None


def test_scanned_event_carries_the_report(library: Library) -> None:
    reports: list[ScanReport] = []
    library.scanned.connect(reports.append)

    report = library.rescan()

    assert reports == [report]


def test_a_large_cold_scan_in_worker_processes_finds_what_threads_find(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From PROCESS_MIN_READS files to read, worker processes read them (on two cores or
    more): the entries, bad files included, are the ones a threaded scan finds."""
    import app.library.library as library_module

    copies = library_module.PROCESS_MIN_READS
    for index in range(copies):
        shutil.copy(folder / "a.gguf", folder / f"copy-{index:02d}.gguf")
    (folder / "bad.gguf").write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 16)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)  # processes even on a one-core machine
    pools: list[str] = []
    make_pool = library_module._read_pool

    def recording_pool(reads: int) -> Executor:
        pool = make_pool(reads)
        pools.append(type(pool).__name__)
        return pool

    monkeypatch.setattr(library_module, "_read_pool", recording_pool)

    def scan(name: str) -> ScanReport:
        library = Library([folder], include_defaults=False, index_path=tmp_path / name)
        try:
            return library.rescan()
        finally:
            library.close()

    by_processes = scan("processes.sqlite3")
    monkeypatch.setattr(library_module, "PROCESS_MIN_READS", 10**9)
    by_threads = scan("threads.sqlite3")

    assert pools == ["ProcessPoolExecutor", "ThreadPoolExecutor"]
    assert by_processes.read == by_threads.read == copies + 4  # + a.gguf, hf, lora, bad
    assert by_processes.entries == by_threads.entries
    assert [e.path.name for e in by_processes.entries if e.error] == ["bad.gguf"]
