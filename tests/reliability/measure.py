"""Runs `rigdeck chat` as a child process and measures it: exit code, output, wall time
and peak RSS (the kernel's own high-water mark for that one child, from `wait4`).

Every measurement is kept in FIGURES; the reliability tests' conftest prints them as a
table at the end of the run, so CI logs carry the figures per case.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
RSS_LIMIT_MIB = 300


@dataclass(frozen=True)
class Figure:
    """One case's measurement, for the table."""

    case: str
    way: str
    """"cli" (a `rigdeck chat` child) or "service" (ChatService in this process)."""
    peak_rss_mib: float
    wall_s: float
    exit_code: int | None
    message: str


FIGURES: list[Figure] = []


@dataclass(frozen=True)
class ChatRun:
    code: int
    stdout: bytes
    stderr: bytes
    peak_rss_mib: float
    wall_s: float

    @property
    def err(self) -> str:
        return self.stderr.decode("utf-8", errors="replace")

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8", errors="replace")


def run_chat(case: str, url: str, home: Path, *extra: str, timeout_s: float = 120.0,
             prompt: str = "Hi") -> ChatRun:
    """`rigdeck chat --url URL/v1 ... PROMPT` in a child with its own RIGDECK_HOME and no
    Docker engine (an engine that is not there is skipped: the URL still works).

    Fails the test (via AssertionError) when the child outlives `timeout_s`: it is killed.
    """
    out_path, err_path = home / f"{case}.out", home / f"{case}.err"
    env = {**os.environ, "RIGDECK_HOME": str(home), "PYTHONPATH": str(ROOT),
           "DOCKER_HOST": f"unix://{home}/no-engine.sock", "PYTHONFAULTHANDLER": "1"}
    command = [sys.executable, "-m", "app", "chat", "--url", f"{url}/v1", *extra, prompt]
    start = time.monotonic()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        child = subprocess.Popen(command, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                 cwd=ROOT, env=env)
    status, usage = _wait(child, start + timeout_s)
    wall = time.monotonic() - start
    child.returncode = os.waitstatus_to_exitcode(status) if status is not None else -9
    assert status is not None, f"{case}: rigdeck chat still ran after {timeout_s:g} s"
    assert usage is not None
    peak = usage.ru_maxrss / 1024  # KiB on Linux
    return ChatRun(child.returncode, out_path.read_bytes(), err_path.read_bytes(), peak, wall)


def _wait(child: subprocess.Popen[bytes], deadline: float
          ) -> tuple[int | None, resource.struct_rusage | None]:
    """Reap `child` with wait4 (its own peak RSS comes with it); kill it at `deadline`."""
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            return status, usage
        if time.monotonic() > deadline:
            child.send_signal(signal.SIGKILL)
            os.wait4(child.pid, 0)
            return None, None
        time.sleep(0.02)


class RssPeak:
    """This process's peak RSS while a block runs, polled every few ms by a thread (the
    kernel's high-water mark cannot be reset, and earlier tests raised it)."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="rss-peak")
        self.baseline_mib = 0.0
        self.peak_mib = 0.0

    def _rss(self) -> float:
        return float(self._process.memory_info().rss) / (1024 * 1024)

    def _poll(self) -> None:
        while not self._stop.wait(0.005):
            self.peak_mib = max(self.peak_mib, self._rss())

    def __enter__(self) -> RssPeak:
        self.baseline_mib = self.peak_mib = self._rss()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mib = max(self.peak_mib, self._rss())

    @property
    def growth_mib(self) -> float:
        return self.peak_mib - self.baseline_mib
