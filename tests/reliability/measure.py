"""Runs `rigdeck chat` as a child process and measures it: exit code, output, wall time
and peak RSS: the kernel's own high-water mark of the child's memory (VmHWM in
/proc/PID/status), read every few milliseconds while it runs. (`wait4`'s ru_maxrss is no
good here: a child started with vfork inherits its parent's mark at exec, so it would
report pytest's memory.)

Every measurement is kept in FIGURES; the reliability tests' conftest prints them as a
table at the end of the run, so CI logs carry the figures per case.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

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
    try:
        child.returncode, peak = _wait(child.pid, start + timeout_s)
    except TimeoutError:
        child.kill()
        child.wait()
        raise AssertionError(f"{case}: rigdeck chat still ran after {timeout_s:g} s") from None
    wall = time.monotonic() - start
    return ChatRun(child.returncode, out_path.read_bytes(), err_path.read_bytes(),
                   peak / 1024, wall)


def _wait(pid: int, deadline: float) -> tuple[int, int]:
    """Reap child `pid`, reading its peak RSS (KiB) until it ends.

    Raises:
        TimeoutError: it still runs at `deadline` (the caller kills it).
    """
    peak = 0
    while True:
        peak = max(peak, high_water_kib(pid))
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status), peak
        if time.monotonic() > deadline:
            raise TimeoutError
        time.sleep(0.005)


def high_water_kib(pid: int | str) -> int:
    """The process's peak RSS so far (VmHWM, KiB); 0 once it has exited."""
    return _status_kib(pid, "VmHWM")


def _status_kib(pid: int | str, field: str) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    found = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) if found else 0


class RssPeak:
    """This process's peak RSS while a block runs: the kernel's high-water mark is reset
    at the start (`5` into /proc/self/clear_refs) and read at the end."""

    def __init__(self) -> None:
        self.baseline_mib = 0.0
        self.peak_mib = 0.0

    def __enter__(self) -> RssPeak:
        Path("/proc/self/clear_refs").write_text("5")
        self.baseline_mib = _status_kib("self", "VmRSS") / 1024
        return self

    def __exit__(self, *_: object) -> None:
        self.peak_mib = high_water_kib("self") / 1024

    @property
    def growth_mib(self) -> float:
        return self.peak_mib - self.baseline_mib
