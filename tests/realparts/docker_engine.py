"""Finds a Docker engine for the integration tests, or starts a private `dockerd`.

Order: DOCKER_HOST when set and answering; the default socket when it answers; the
private engine at `ENGINE_SOCKET` when an earlier run (e.g. `python -m
tests.realparts.prepare`) left it running; else, as root, start `dockerd` ourselves (with
vfs storage, no iptables, no bridge, so it runs inside a container too), installing
Debian's `docker.io` first when `dockerd` is missing. Its data root lies in the cache
folder, so imported images survive between runs.

Several pytest sessions may share the private engine (engineers share this machine): each
holds a shared lock on `engine.users` while it uses it, and the session that started it
stops it only when it can take that lock exclusively, i.e. when nobody else uses it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import docker
import docker.errors
import requests.exceptions

from tests.realparts import PartMissing
from tests.realparts.cache import cache_dir

log = logging.getLogger(__name__)

ENGINE_SOCKET = Path("/run/rigdeck-test-docker.sock")
ENGINE_EXEC_ROOT = Path("/run/rigdeck-test-docker")
ENGINE_PIDFILE = Path("/run/rigdeck-test-docker.pid")
DEFAULT_SOCKET = Path("/var/run/docker.sock")
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0


@dataclass
class DockerEngine:
    """A Docker engine the tests may use; `stop()` ends it only if this process started it."""

    client: docker.DockerClient
    base_url: str
    started_here: bool
    pid: int | None = None
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _users_lock: IO[str] | None = field(default=None, repr=False)

    def __str__(self) -> str:
        return f"engine at {self.base_url}" + (f" (dockerd pid {self.pid})" if self.pid else "")

    def stop(self) -> None:
        """Close the client; stop dockerd when we started it and no other session uses it."""
        self.client.close()
        lock = self._users_lock
        self._users_lock = None
        if lock is None:
            return
        try:
            if not self.started_here:
                return
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("another session uses the test engine; leaving dockerd running")
                return
            _stop_dockerd(self._process, self.pid)
        finally:
            lock.close()


def _ping(base_url: str) -> docker.DockerClient | None:
    """A client for base_url if an engine answers there, else None (the client is closed)."""
    try:
        client = docker.DockerClient(base_url=base_url, timeout=30)
    except docker.errors.DockerException:
        return None
    try:
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError):
        client.close()
        return None
    return client


def _socket_url(path: Path) -> str:
    return f"unix://{path}"


def _hold_users_lock() -> IO[str]:
    """Take a shared lock saying 'this session uses the private engine'."""
    handle = (cache_dir() / "engine.users").open("a")
    fcntl.flock(handle, fcntl.LOCK_SH)
    return handle


def _is_debian() -> bool:
    return Path("/etc/debian_version").exists()


def _install_docker_io() -> None:
    """Install Debian's docker.io (CI machines start without it).

    Raises:
        PartMissing: apt-get failed; the tail of its output says why.
    """
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"],
                ["apt-get", "install", "-y", "--no-install-recommends", "docker.io"]):
        log.info("running %s", " ".join(cmd))
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = (done.stdout + done.stderr)[-3000:]
            raise PartMissing(f"{' '.join(cmd)} failed ({done.returncode}):\n{tail}")


def _dockerd() -> str:
    """The dockerd executable, installed first when missing and we may install it.

    Raises:
        PartMissing: dockerd is missing and cannot be installed here.
    """
    found = shutil.which("dockerd")
    if found:
        return found
    if os.geteuid() != 0 or not _is_debian():
        raise PartMissing(
            "no Docker engine answers (DOCKER_HOST, /var/run/docker.sock) and dockerd is "
            "not installed; install docker.io or start an engine"
        )
    _install_docker_io()
    found = shutil.which("dockerd")
    if not found:
        raise PartMissing("docker.io was installed but dockerd is still not on PATH")
    return found


def _log_tail(path: Path, size: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return "(no log)"


def _start_dockerd() -> tuple[subprocess.Popen[bytes], docker.DockerClient]:
    """Start a private dockerd and wait until it answers.

    Raises:
        PartMissing: dockerd exited or did not answer within START_TIMEOUT_S.
    """
    binary = _dockerd()
    root = cache_dir() / "docker"
    data_root = root / "data-root"
    data_root.mkdir(parents=True, exist_ok=True)
    log_path = root / "dockerd.log"
    ENGINE_SOCKET.unlink(missing_ok=True)
    cmd = [binary, "--storage-driver=vfs", "--iptables=false", "--ip6tables=false",
           "--bridge=none", f"--data-root={data_root}", f"--exec-root={ENGINE_EXEC_ROOT}",
           f"--pidfile={ENGINE_PIDFILE}", f"--host={_socket_url(ENGINE_SOCKET)}"]
    log.info("starting %s", " ".join(cmd))
    with log_path.open("ab") as out:
        # A new session: Ctrl-C in the test terminal must not kill the engine mid-teardown.
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise PartMissing(f"dockerd exited with {process.returncode}; its log "
                              f"({log_path}) ends:\n{_log_tail(log_path)}")
        if ENGINE_SOCKET.exists():
            client = _ping(_socket_url(ENGINE_SOCKET))
            if client is not None:
                return process, client
        time.sleep(0.25)
    _stop_dockerd(process, process.pid)
    raise PartMissing(f"dockerd did not answer within {START_TIMEOUT_S:.0f} s; its log "
                      f"({log_path}) ends:\n{_log_tail(log_path)}")


def _stop_dockerd(process: subprocess.Popen[bytes] | None, pid: int | None) -> None:
    """SIGTERM dockerd (which stops its containerd), then SIGKILL after STOP_TIMEOUT_S."""
    if process is not None:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT_S)
        return
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.2)
        os.kill(pid, signal.SIGKILL)


def _pid_from_file() -> int | None:
    try:
        return int(ENGINE_PIDFILE.read_text().strip())
    except (OSError, ValueError):
        return None


def find_or_start_engine() -> DockerEngine:
    """A Docker engine that answers, starting a private dockerd only when none does.

    Raises:
        PartMissing: no engine answers and none can be started here (not root, not
            Debian, dockerd failed); the message says which.
    """
    docker_host = os.environ.get("DOCKER_HOST")
    if docker_host:
        client = _ping(docker_host)
        if client is not None:
            return DockerEngine(client, docker_host, started_here=False)
        log.info("DOCKER_HOST=%s does not answer; looking further", docker_host)
    default_url = _socket_url(DEFAULT_SOCKET)
    if DEFAULT_SOCKET.exists():
        client = _ping(default_url)
        if client is not None:
            return DockerEngine(client, default_url, started_here=False)
    own_url = _socket_url(ENGINE_SOCKET)
    users = _hold_users_lock()
    try:
        with (cache_dir() / "engine.start.lock").open("a") as start_lock:
            # One session starts the engine; the others wait here and then find it.
            fcntl.flock(start_lock, fcntl.LOCK_EX)
            client = _ping(own_url) if ENGINE_SOCKET.exists() else None
            if client is not None:
                return DockerEngine(client, own_url, started_here=False,
                                    pid=_pid_from_file(), _users_lock=users)
            if os.geteuid() != 0:
                raise PartMissing(
                    "no Docker engine answers (DOCKER_HOST, /var/run/docker.sock) and only "
                    "root may start one here; start dockerd or set DOCKER_HOST"
                )
            process, client = _start_dockerd()
    except BaseException:
        users.close()
        raise
    return DockerEngine(client, own_url, started_here=True, pid=process.pid,
                        _process=process, _users_lock=users)


def stop_private_engine() -> bool:
    """Stop a private engine left running by `prepare` (for manual clean-up); True if one ran."""
    pid = _pid_from_file()
    if pid is None or not ENGINE_SOCKET.exists():
        return False
    _stop_dockerd(None, pid)
    return True
