"""LibraryFeed: the Qt-free `Library` seen from the GUI thread.

The library scans on its own watcher thread (and on the task runner for scans the user
asks for) and emits its psygnal events there; this adapter re-emits each one as a Qt
signal, which Qt queues onto the GUI thread. It also follows the `model_folders`
setting, so a folder added or removed anywhere leads to a rescan with the new list.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, wait
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.library.entries import Entry
from app.library.library import INDEX_FILE_NAME, Library, ScanReport
from app.paths import AppPaths
from app.settings import SettingsStore
from ui.tasks import TaskRunner

log = logging.getLogger(__name__)

WATCH_INTERVAL_S = 3.0
"""Seconds between two polls of the folders (cheap: unchanged files come from the index)."""


class LibraryFeed(QObject):
    """Owns the app's `Library`; scans off the GUI thread and emits on the GUI thread."""

    entry_added = Signal(object)
    entry_changed = Signal(object)
    entry_removed = Signal(object)
    scanned = Signal(object)
    """A `ScanReport`, after every scan (watcher polls included)."""
    scanning_changed = Signal(bool)
    """True while a scan this feed started (the first one, a folder change) runs."""

    def __init__(
        self,
        library: Library,
        tasks: TaskRunner,
        settings: SettingsStore | None = None,
        *,
        watch_interval_s: float = WATCH_INTERVAL_S,
    ) -> None:
        super().__init__()
        self.library = library
        self._tasks = tasks
        self._settings = settings
        self._interval_s = watch_interval_s
        self._started = False
        self._closed = False
        self._scanning = False
        self._scan: Future[ScanReport] | None = None
        """The latest scan on the task runner, waited for by `close()`."""
        self._scan_again = False
        self.last_report: ScanReport | None = None
        library.added.connect(self._on_library_added)
        library.changed.connect(self._on_library_changed)
        library.removed.connect(self._on_library_removed)
        library.scanned.connect(self._on_library_scanned)
        if settings is not None:
            settings.changed.connect(self._on_settings_changed)

    @classmethod
    def build(cls, settings: SettingsStore, paths: AppPaths, tasks: TaskRunner) -> LibraryFeed:
        """The app's library: the user's folders plus the default stores, indexed in data."""
        folders = [Path(f).expanduser() for f in settings.get("model_folders")]
        library = Library(folders, index_path=paths.data / INDEX_FILE_NAME)
        return cls(library, tasks, settings)

    # ------------------------------------------------------------ reading
    @property
    def entries(self) -> list[Entry]:
        return self.library.entries

    @property
    def problems(self) -> tuple[str, ...]:
        return self.library.problems

    @property
    def scanning(self) -> bool:
        return self._scanning

    # ------------------------------------------------------------ scanning
    def start(self) -> None:
        """Scan now on the task runner, then keep watching the folders (idempotent)."""
        if self._started or self._closed:
            return
        self._started = True
        self.rescan()

    def rescan(self) -> None:
        """Scan once on the task runner; a request during a scan runs one more after it."""
        if self._closed:
            return
        if self._scanning:
            self._scan_again = True
            return
        # Set before run(): a job that ends at once may deliver inside run() itself.
        self._scanning = True
        self.scanning_changed.emit(True)
        self._scan = self._tasks.run(
            self.library.rescan,
            description="Scanning the model folders",
            on_done=self._on_scan_done,
            on_error=self._on_scan_failed,
        )

    def _on_scan_done(self, report: ScanReport) -> None:
        self._finish_scan()

    def _on_scan_failed(self, error: BaseException) -> None:
        log.error("library scan failed", exc_info=error)
        self._finish_scan()

    def _finish_scan(self) -> None:
        self._scanning = False
        if self._closed:
            return
        if self._scan_again:
            self._scan_again = False
            self.rescan()
            return
        self.scanning_changed.emit(False)
        self.library.start_watching(self._interval_s)

    def add_folder(self, folder: str) -> None:
        """Search `folder` too (once): the `model_folders` setting grows, and following it
        rescans. The Library's "Add a model folder…" comes here.

        Raises:
            RuntimeError: this feed follows no settings (a test's library of its own).
        """
        if self._settings is None:
            raise RuntimeError("this library feed follows no settings to add a folder to")
        folders: list[str] = list(self._settings.get("model_folders"))
        if folder not in folders:
            self._settings.set("model_folders", [*folders, folder])

    def _on_settings_changed(self, name: str, value: object) -> None:
        if name != "model_folders" or not isinstance(value, list):
            return
        self.library.set_folders(Path(str(f)).expanduser() for f in value)
        if self._started:
            self.rescan()

    # ------------------------------------------------------------ from the scanning thread
    def _on_library_added(self, entry: Entry) -> None:
        self.entry_added.emit(entry)

    def _on_library_changed(self, entry: Entry) -> None:
        self.entry_changed.emit(entry)

    def _on_library_removed(self, entry: Entry) -> None:
        self.entry_removed.emit(entry)

    def _on_library_scanned(self, report: ScanReport) -> None:
        self.last_report = report
        self.scanned.emit(report)

    # ------------------------------------------------------------ ending
    def stop(self) -> None:
        """Stop watching and scanning; a scan already running is left to finish."""
        self._closed = True
        if self._settings is not None:
            self._settings.changed.disconnect(self._on_settings_changed)
            self._settings = None
        self.library.stop_watching()

    def close(self) -> None:
        """Stop, wait for a scan in flight (it writes the index), then close the index."""
        self.stop()
        if self._scan is not None:
            wait([self._scan])
        for signal, slot in (
            (self.library.added, self._on_library_added),
            (self.library.changed, self._on_library_changed),
            (self.library.removed, self._on_library_removed),
            (self.library.scanned, self._on_library_scanned),
        ):
            signal.disconnect(slot)
        self.library.close()
