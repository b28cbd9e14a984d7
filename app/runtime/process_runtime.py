"""Backends as local processes, for machines without Docker: a llama-server on PATH (or
chosen in the settings) started in its own session, found again through a pid file.

A pid file holds the same labels a container would, plus the pid and its start time
(so a recycled pid is not taken for our server). The API key is in the process's
environment; a later Rigdeck reads it back from there (same user only).

How a server ended (its wait status) is known only to its parent, the Rigdeck run that
started it: that run writes it into the pid file when it reaps the server, so the CLI and
later runs read it there. A server that outlived the run that started it and then died
has no status anyone can read; it is reported as unknown, never guessed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import psutil

from app.engines.spec import LaunchSpec
from app.errors import UserError
from app.runtime.hosts import Host
from app.runtime.observed import Foreign, Observed
from app.settings import setting_place
from app.user_files import write_atomically

log = logging.getLogger(__name__)

FOLLOW_POLL_S = 0.2
VERSION_TIMEOUT_S = 20.0
STOP_POLL_S = 0.05


def llama_server_version(path: str) -> str:
    """What `path --version` says it is ("version: 4589 (…), built with …"): proof that the
    file is a llama-server that runs here, before it is saved as the one to use.

    Raises:
        UserError: it does not start, fails, or is not llama-server; the message says which.
    """
    try:
        done = subprocess.run([path, "--version"], check=False, capture_output=True, text=True,
                              errors="replace", timeout=VERSION_TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise UserError(f"{path} --version did not answer within "
                        f"{VERSION_TIMEOUT_S:.0f} s") from None
    except OSError as exc:
        raise UserError(f"{path} does not run here: {exc.strerror or exc}") from None
    output = (done.stdout + done.stderr).strip()
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    version = next((line for line in lines if line.startswith("version:")), None)
    if done.returncode != 0 or version is None:
        said = lines[-1][:200] if lines else "nothing"
        raise UserError(f"{path} is not llama-server: `--version` exited {done.returncode} "
                        f"and said {said!r}")
    built = next((line for line in lines if line.startswith("built with")), "")
    return ", ".join(part for part in (version, built) if part)


_LEFT_RUNNING: list[subprocess.Popen[bytes]] = []
"""Servers this process started and left running on purpose (a backend outlives the
Rigdeck that started it): held here so that no `Popen` is collected while its server
runs, which Python reports as a leaked subprocess."""


class ProcessRuntime:
    """Local llama-server processes, with pid files and logs under `run_dir`."""

    def __init__(self, host: Host, run_dir: Path, binary: str = "") -> None:
        self.host = host
        self.run_dir = run_dir
        self.binary = binary
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        # One reaper at a time: Popen.poll() answers None, not the status, while another
        # thread polls; and a pid file is rewritten or removed by one thread only.
        self._lock = threading.Lock()

    def executable(self) -> str:
        """The llama-server to run.

        Raises:
            UserError: none chosen in the settings and none on PATH.
        """
        found = self.binary or shutil.which("llama-server") or ""
        if not found or not Path(found).exists():
            raise UserError("no llama-server found: put it on PATH or choose it in "
                            f"{setting_place('llama_server_path')} to run backends "
                            "without Docker")
        return found

    def tool(self, name: str) -> str:
        """The engine's tool `name` (llama-perplexity) beside the llama-server it runs.

        Raises:
            UserError: no llama-server, or no such tool beside it.
        """
        found = Path(self.executable()).with_name(name)
        if not found.exists():
            raise UserError(f"{name} is not beside {self.executable()}: install llama.cpp's "
                            "tools with the server (the same build)")
        return str(found)

    def run_once(self, spec: LaunchSpec, name: str, labels: dict[str, str], *,
                 cancel: threading.Event | None = None,
                 timeout_s: float = 3600.0) -> tuple[int | None, str]:
        """Run the one-shot tool `spec.tool` as a local process to its end: (exit code,
        output); exit code None when `cancel` was set or the time ran out (its process
        group is killed then). `name` and `labels` name it in the log only.

        Raises:
            UserError: no llama-server or no such tool beside it.
        """
        binary = self.tool(spec.tool)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.run_dir / f"{name}.tool.log"
        log.info("running %s as %s (%s)", spec.tool, name, labels.get("rigdeck.bench", ""))
        try:
            with log_path.open("wb") as out:
                child = subprocess.Popen([binary, *spec.args], stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env={**os.environ, **spec.env},
                                         start_new_session=True)
                deadline = time.monotonic() + timeout_s
                code: int | None = None
                while (code := child.poll()) is None:
                    if (cancel is not None and cancel.is_set()) or time.monotonic() > deadline:
                        with contextlib.suppress(ProcessLookupError, PermissionError):
                            os.killpg(child.pid, signal.SIGKILL)
                        child.wait()
                        break
                    if cancel is not None:
                        cancel.wait(0.1)
                    else:
                        time.sleep(0.1)
            return code, log_path.read_text(encoding="utf-8", errors="replace")
        finally:
            log_path.unlink(missing_ok=True)

    def memory_usage(self, ref: str) -> float | None:
        """The server process's resident memory (MiB), None once it is gone."""
        try:
            return psutil.Process(int(ref)).memory_info().rss / (1 << 20)
        except (psutil.Error, ValueError):
            return None

    def close(self) -> None:
        """Reap children that ended (writing how, for later runs); running ones are left
        running (they outlive us)."""
        for path, record in self._records():
            self._exit_code(path, record)
        with self._lock:
            for pid, child in list(self._children.items()):
                if child.poll() is None:
                    _LEFT_RUNNING.append(child)
                self._children.pop(pid)
            # those another runtime stopped since: reaped, not held
            _LEFT_RUNNING[:] = [child for child in _LEFT_RUNNING if child.poll() is None]

    def retire(self) -> None:
        """As `close`: the processes host is never removed, but a runtime may be replaced."""
        self.close()

    def _pidfile(self, name: str) -> Path:
        return self.run_dir / f"{name}.json"

    def log_path(self, name: str) -> Path:
        return self.run_dir / f"{name}.log"

    def start(self, spec: LaunchSpec, name: str, labels: dict[str, str], api_key: str) -> str:
        """Start llama-server; the ref is its pid.

        Raises:
            UserError: no llama-server, or vLLM asked for (containers only).
        """
        if spec.engine != "llamacpp":
            raise UserError("vLLM runs only in a container; choose a Docker host")
        if spec.gpus:
            raise UserError("GPUs for a local process are chosen by CUDA_VISIBLE_DEVICES; "
                            "start on a Docker host to pick GPUs, or start on CPU")
        binary = self.executable()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **spec.env, spec.api_key_env: api_key}
        log_path = self.log_path(name)
        with log_path.open("wb") as out:
            child = subprocess.Popen([binary, *spec.args], stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        self._children[child.pid] = child
        created = psutil.Process(child.pid).create_time()
        record = {"pid": child.pid, "create_time": created, "labels": labels,
                  "key_env": spec.api_key_env}
        self._pidfile(name).write_text(json.dumps(record), encoding="utf-8")
        log.info("started llama-server %s as pid %d", name, child.pid)
        return str(child.pid)

    def _records(self) -> list[tuple[Path, dict[str, object]]]:
        found = []
        for path in sorted(self.run_dir.glob("*.json")):
            with contextlib.suppress(OSError, json.JSONDecodeError):
                found.append((path, json.loads(path.read_text(encoding="utf-8"))))
        return found

    def _process(self, record: dict[str, object]) -> psutil.Process | None:
        try:
            proc = psutil.Process(int(str(record["pid"])))
            if abs(proc.create_time() - float(str(record["create_time"]))) > 1.0:
                return None
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
        except (psutil.Error, KeyError, ValueError):
            return None
        return proc

    def observe(self) -> tuple[list[Observed], list[Foreign]]:
        found = []
        for path, record in self._records():
            labels = {str(k): str(v) for k, v in dict(record.get("labels", {})).items()}  # type: ignore[call-overload]
            pid = int(str(record["pid"]))
            proc = self._process(record)
            key = None
            if proc is not None:
                with contextlib.suppress(psutil.Error):
                    key = proc.environ().get(str(record.get("key_env", "")))
                found.append(Observed(str(pid), labels, "running",
                                      started_at=float(str(record["create_time"])),
                                      api_key=key))
                continue
            found.append(Observed(str(pid), labels, "exited",
                                  exit_code=self._exit_code(path, record)))
        return found, []

    def _exit_code(self, path: Path, record: dict[str, object]) -> int | None:
        """The wait status of an ended server (-N after signal N), or None while it runs
        or when it is unknown: ours from reaping our child, written into its pid file
        for the CLI and later runs; another run's from what that run wrote there."""
        written = record.get("returncode")
        if isinstance(written, int):
            return written
        with self._lock:
            child = self._children.get(int(str(record.get("pid", -1))))
            code = child.poll() if child is not None else None
            if code is not None and path.exists():
                write_atomically(path, json.dumps({**record, "returncode": code}).encode())
        return code

    def inspect(self, ref: str) -> Observed:
        for observed in self.observe()[0]:
            if observed.ref == ref:
                return observed
        return Observed(ref, {}, "gone")

    def _name_of(self, ref: str) -> str | None:
        for path, record in self._records():
            if str(record.get("pid")) == ref:
                return path.stem
        return None

    def log_tail(self, ref: str, lines: int = 200) -> str:
        name = self._name_of(ref)
        if name is None:
            return ""
        try:
            with self.log_path(name).open("rb") as handle:
                return "\n".join(_last_lines(handle, lines))
        except OSError:
            return ""

    def follow_logs(self, ref: str, tail: int = 200) -> Iterator[str]:
        name = self._name_of(ref)
        if name is None:
            return
        yield from self.log_tail(ref, tail).splitlines()
        with self.log_path(name).open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            while self.inspect(ref).status == "running":
                line = handle.readline()
                if line:
                    yield line.decode(errors="replace").rstrip("\n")
                else:
                    time.sleep(FOLLOW_POLL_S)

    def stop(self, ref: str, timeout_s: float, remove: bool) -> None:
        """SIGTERM the process group, SIGKILL after timeout_s; forget it unless kept."""
        name = self._name_of(ref)
        record = next((r for p, r in self._records() if p.stem == name), None)
        proc = self._process(record) if record else None
        if proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
            if not self._ends_within(proc, timeout_s):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                self._ends_within(proc, timeout_s)
        if name is not None and record is not None:
            self._exit_code(self._pidfile(name), record)  # kept: a later run reads how
        with self._lock:
            child = self._children.pop(int(ref), None)
            if child is not None:
                child.wait(timeout_s)
            if remove and name is not None:
                self._pidfile(name).unlink(missing_ok=True)
                self.log_path(name).unlink(missing_ok=True)

    def _ends_within(self, proc: psutil.Process, timeout_s: float) -> bool:
        """Whether `proc` ended within timeout_s. Our child is polled, not waited for by
        psutil: psutil would reap it and its status would be lost to us."""
        with self._lock:
            child = self._children.get(proc.pid)
        if child is None:
            try:
                proc.wait(timeout_s)
            except psutil.TimeoutExpired:
                return False
            except psutil.Error:
                pass
            return True
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                if child.poll() is not None:
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(STOP_POLL_S)


TAIL_CHUNK = 64 * 1024


def _last_lines(handle: BinaryIO, lines: int) -> list[str]:
    """The file's last `lines` lines, read backwards in chunks: a log of a long-running
    server grows by every request, and the page asks for its tail every few seconds."""
    end = handle.seek(0, os.SEEK_END)
    data = b""
    position = end
    while position > 0 and data.count(b"\n") <= lines:
        step = min(TAIL_CHUNK, position)
        position -= step
        handle.seek(position)
        data = handle.read(step) + data
    return data.decode(errors="replace").splitlines()[-lines:]
