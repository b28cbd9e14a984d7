"""Finds what a test left behind: containers it created, child processes, listening ports.

A snapshot is taken before the test and compared after it. Other engineers' sessions may
share the Docker engine and the machine, so the guard counts only what is this session's:
containers without a foreign `rigdeck.test.session` label, processes in this process's
tree (the private dockerd's subtree excepted), and listening ports owned by that tree or
handed out by `free_port()` (a container on the host network listens from outside our
tree). Whatever leaked is cleaned up after it is reported, so one failure does not
poison the tests after it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from dataclasses import dataclass, field

import docker
import docker.errors
import psutil

SESSION_LABEL = "rigdeck.test.session"
NODE_LABEL = "rigdeck.test.node"
SESSION_TOKEN = uuid.uuid4().hex
"""Tells this pytest session's containers from those of sessions sharing the engine."""
SETTLE_S = 5.0
"""How long leftovers get to disappear by themselves (a process exiting, a socket closing)."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def _tree(root: psutil.Process, exclude: set[int]) -> dict[int, psutil.Process]:
    """root's live descendants, without the subtrees rooted at the excluded pids."""
    found: dict[int, psutil.Process] = {}
    skipped: set[int] = set()
    for child in root.children(recursive=True):
        try:
            if child.pid in exclude or child.ppid() in skipped:
                skipped.add(child.pid)
                continue
            if child.status() != psutil.STATUS_ZOMBIE:
                found[child.pid] = child
        except psutil.NoSuchProcess:
            continue
    return found


def _listening() -> dict[tuple[str, int], int | None]:
    """(address, port) -> owning pid for every listening TCP socket on this machine."""
    found: dict[tuple[str, int], int | None] = {}
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr:
            ip, port = conn.laddr[0], conn.laddr[1]
            found[(str(ip), int(port))] = conn.pid
    return found


@dataclass
class LeakGuard:
    """One test's snapshot; `labels` marks the containers the test creates as its own."""

    node: str
    client: docker.DockerClient | None = None
    exclude_pids: set[int] = field(default_factory=set)
    ports: set[int] = field(default_factory=set)
    settle_s: float = SETTLE_S
    _containers: set[str] = field(default_factory=set)
    _processes: set[tuple[int, float]] = field(default_factory=set)
    _listening: set[tuple[str, int]] = field(default_factory=set)

    @property
    def labels(self) -> dict[str, str]:
        return {SESSION_LABEL: SESSION_TOKEN, NODE_LABEL: self.node}

    def free_port(self) -> int:
        """A free port the test will listen on (directly or in a container); checked after."""
        port = free_port()
        self.ports.add(port)
        return port

    def snapshot(self) -> None:
        if self.client is not None:
            self._containers = {c.id for c in self.client.containers.list(all=True)}
        me = psutil.Process()
        self._processes = {(p.pid, p.create_time())
                           for p in _tree(me, self.exclude_pids).values()}
        self._listening = set(_listening())

    def _leaked_containers(self) -> list[str]:
        if self.client is None:
            return []
        leaked = []
        for container in self.client.containers.list(all=True):
            owner = (container.labels or {}).get(SESSION_LABEL)
            if container.id not in self._containers and owner in (None, SESSION_TOKEN):
                leaked.append(f"container {container.name} ({container.status})")
                with contextlib.suppress(docker.errors.APIError):
                    container.remove(force=True)
        return leaked

    def _leaked_processes(self) -> list[psutil.Process]:
        me = psutil.Process()
        fresh = []
        for proc in _tree(me, self.exclude_pids).values():
            with contextlib.suppress(psutil.NoSuchProcess):
                if (proc.pid, proc.create_time()) not in self._processes:
                    fresh.append(proc)
        return fresh

    def _leaked_ports(self) -> list[str]:
        tree = {os.getpid()} | {p.pid for p in _tree(psutil.Process(), self.exclude_pids)
                                .values()}
        leaked = []
        for (ip, port), pid in _listening().items():
            ours = port in self.ports or (pid in tree and (ip, port) not in self._listening)
            if ours:
                leaked.append(f"port {ip}:{port} (pid {pid})")
        return leaked

    def leaks(self) -> list[str]:
        """What the test left behind, after settle_s for things on their way out."""
        deadline = time.monotonic() + self.settle_s
        while True:
            processes = self._leaked_processes()
            ports = self._leaked_ports()
            if not (processes or ports) or time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        found = self._leaked_containers() + ports
        for proc in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                found.append(f"process {proc.pid}: {' '.join(proc.cmdline())}")
                proc.kill()
        return found
