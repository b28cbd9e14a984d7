"""Fixtures for the reliability tests: a small disk that can be filled, and a local
OpenAI-compatible server whose stream the test scripts; the hostile-server cases print
their figures (peak RSS, wall time) as one table."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from app.paths import AppPaths
from tests.realparts.fixtures import part_missing
from tests.reliability.measure import FIGURES
from tests.reliability.sse_server import SseServer

if TYPE_CHECKING:  # Qt is imported by the tests that use the window only
    from ui.services import Services


class SmallDisk:
    """A tmpfs of a few MB mounted on a folder; `fill` leaves only `free` bytes."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.filler = folder / "filler.bin"

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.folder).free

    def fill(self, free: int) -> None:
        with self.filler.open("ab") as out:
            out.write(b"\0" * max(self.free_bytes() - free, 0))

    def make_room(self) -> None:
        self.filler.unlink(missing_ok=True)


@pytest.fixture
def small_disk() -> Iterator[Callable[[Path, int], SmallDisk]]:
    """mount(folder, size): a tmpfs of `size` bytes on `folder` (created), unmounted after
    the test. CI runs as root; elsewhere the test is skipped (failed under CI=true)."""
    mounted: list[Path] = []

    def mount(folder: Path, size: int) -> SmallDisk:
        folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            part_missing("mounting a small tmpfs needs root (CI runs as root)")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700",
                               "tmpfs", str(folder)], capture_output=True, text=True)
        if done.returncode != 0:
            part_missing(f"cannot mount a tmpfs: {done.stderr.strip()}")
        mounted.append(folder)
        return SmallDisk(folder)

    yield mount
    for folder in reversed(mounted):
        subprocess.run(["umount", "-l", str(folder)], check=True)


@pytest.fixture
def sse_server() -> Iterator[SseServer]:
    server = SseServer()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def _no_docker_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing here needs Docker: point the local host at a socket nobody serves, so the
    window's backend refresh never touches an engine other tests share."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")


@pytest.fixture
def data_disk(app_paths: AppPaths, small_disk: Callable[[Path, int], SmallDisk]) -> SmallDisk:
    """The data folder (chat history) on a 4 MB disk."""
    return small_disk(app_paths.data, 4 * 1024 * 1024)


@pytest.fixture
def services(qtbot: object, data_disk: SmallDisk, app_paths: AppPaths) -> Iterator[Services]:
    """The window's services with the data folder on the small disk."""
    from ui.services import Services

    built = Services.build(app_paths)
    yield built
    built.shutdown()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES:
        return
    terminalreporter.section("hostile server: peak RSS and wall time per case")
    terminalreporter.write_line(f"{'case':<16} {'way':<8} {'peak RSS MiB':>12} "
                                f"{'wall s':>7} {'exit':>5}  message")
    for figure in FIGURES:
        code = "-" if figure.exit_code is None else str(figure.exit_code)
        terminalreporter.write_line(
            f"{figure.case:<16} {figure.way:<8} {figure.peak_rss_mib:>12.1f} "
            f"{figure.wall_s:>7.2f} {code:>5}  {figure.message[:110]}")
