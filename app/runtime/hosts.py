"""Hosts: where backends run. A Docker engine (local socket, ssh://, tcp:// with TLS) or
"local processes" on this machine for a PC without Docker.

The local engine is always there (DOCKER_HOST, else Docker's default socket); remote
ones are added by URL and kept in `hosts.toml` in the config folder (names, URLs and
options only: no secrets, ssh keys stay with ssh).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import tomli_w

from app.errors import UserError
from app.settings import setting_place
from app.user_files import (
    UserFileError,
    folder_lock,
    read_toml,
    saving_failed,
    write_atomically,
)

log = logging.getLogger(__name__)

LOCAL = "local"
PROCESSES = "processes"
DEFAULT_SOCKET = "unix:///var/run/docker.sock"
PLAIN_TCP_PORT = 2375
"""Docker's port without TLS."""
NAME_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
NO_BRIDGE = ("the engine has no bridge network (dockerd --bridge=none), so a backend's port "
             "cannot be published")


def host_network_fix(name: str) -> str:
    """What to do on an engine without a bridge: the control that turns host networking on."""
    cli = ("rigdeck settings set local_host_network true" if name == LOCAL
           else f"rigdeck hosts add {name} URL --host-network")
    return (f"turn on host networking for {name} ({setting_place('local_host_network')}, "
            f"with {name} selected; or `{cli}`)")


@dataclass(frozen=True)
class Host:
    """One place backends run.

    `host_network`: containers share the host's network (needed on engines without a
    bridge); otherwise the port is published on `bind_address` only (127.0.0.1 by default).
    """

    name: str
    url: str
    kind: str = "docker"
    host_network: bool = False
    bind_address: str = "127.0.0.1"
    cert_path: str = ""
    """tcp:// with TLS: the folder with ca.pem, cert.pem and key.pem (empty:
    DOCKER_CERT_PATH, else ~/.docker)."""

    @property
    def is_remote(self) -> bool:
        return self.url.startswith(("ssh://", "tcp://"))

    @property
    def endpoint_host(self) -> str:
        """The address Rigdeck reaches a backend's port at."""
        if self.is_remote:
            # A port published on the remote loopback needs a tunnel; the host name is
            # right for the ssh://127.0.0.1 test host and for an opted-in bind address.
            return urlparse(self.url).hostname or "127.0.0.1"
        return "127.0.0.1" if self.bind_address in ("0.0.0.0", "") else self.bind_address


def check_url(url: str, *, plain_tcp: bool = False) -> str:
    """The URL if Docker can reach an engine through it.

    Every tcp:// engine is spoken to with TLS except on Docker's plain port, 2375, allowed
    only with `plain_tcp` — for DOCKER_HOST, which the user set for every Docker client.

    Raises:
        UserError: an unsupported scheme, or a tcp:// URL without TLS.
    """
    parsed = urlparse(url)
    if parsed.scheme in {"unix", "npipe"}:
        return url
    if parsed.scheme == "ssh":
        if not parsed.hostname:
            raise UserError(f"{url}: an ssh URL needs a host, e.g. ssh://user@server")
        return url
    if parsed.scheme == "tcp":
        try:
            port = parsed.port
        except ValueError:
            raise UserError(f"{url}: the port is not a number") from None
        if not parsed.hostname or port is None:
            raise UserError(f"{url}: a tcp URL needs a host and a port, e.g. tcp://server:2376")
        if port == PLAIN_TCP_PORT and not plain_tcp:
            raise UserError(f"{url}: use TLS (port 2376, with ca.pem, cert.pem and key.pem from "
                            "--cert-path or DOCKER_CERT_PATH); "
                            "an engine on plain tcp lets anyone on the network run as root")
        return url
    raise UserError(f"{url}: a host URL starts with ssh://, tcp:// (TLS) or unix://")


def local_host(host_network: bool = False) -> Host:
    """The engine of this machine: DOCKER_HOST when set, else Docker's default socket."""
    return Host(LOCAL, os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET, "docker",
                host_network=host_network)


def processes_host(bind_address: str = "127.0.0.1") -> Host:
    return Host(PROCESSES, "process://", "process", host_network=True,
                bind_address=bind_address)


class HostsStore:
    """The remote hosts the user added, in `hosts.toml`.

    `problems` says what of the file could not be read (refreshed by every `load()`). An
    entry that is not a host is kept in the file as it is when others are saved; while
    the whole file cannot be read, changing it is refused rather than overwriting it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems: list[str] = []

    def load(self) -> list[Host]:
        return self._read()[0]

    def _read(self) -> tuple[list[Host], list[Any]]:
        """The hosts, and the entries that are not hosts (kept as they are)."""
        self.problems = []
        try:
            raw = read_toml(self.path)
        except UserFileError as exc:
            self._problem(f"hosts file {exc}")
            return [], []
        entries = (raw or {}).get("host", [])
        if not isinstance(entries, list):
            self._problem(f"hosts file {self.path}: host must be a list of tables ([[host]])")
            return [], []
        hosts: list[Host] = []
        kept: list[Any] = []
        for number, entry in enumerate(entries, 1):
            why = _entry_problem(entry)
            if why:
                self._problem(f"hosts file {self.path}: entry {number}: {why}; left in the "
                              "file as it is")
                kept.append(entry)
            else:
                hosts.append(Host(**entry))
        return hosts, kept

    def _problem(self, text: str) -> None:
        self.problems.append(text)
        log.info("%s", text)  # said by the caller: the window at start, `rigdeck problems`

    def add(self, host: Host) -> None:
        """Add or replace a host by name.

        Raises:
            UserError: a reserved name, a bad URL, or a hosts file that cannot be read or
                written (it is then unchanged).
        """
        if host.name in (LOCAL, PROCESSES):
            raise UserError(f"the host name {host.name!r} is reserved")
        if not NAME_RULE.fullmatch(host.name):
            raise UserError(f"{host.name!r} is not a host name: use letters, digits, '.', "
                            "'_' and '-' (up to 63)")
        check_url(host.url)
        with folder_lock(self.path.parent):
            hosts, kept = self._readable()
            self._save([h for h in hosts if h.name != host.name] + [host], kept)

    def remove(self, name: str) -> None:
        """Raises UserError: the hosts file cannot be read or written (it is unchanged)."""
        with folder_lock(self.path.parent):
            hosts, kept = self._readable()
            self._save([h for h in hosts if h.name != name], kept)

    def _readable(self) -> tuple[list[Host], list[Any]]:
        hosts, kept = self._read()
        if self.problems and not kept:
            raise UserError(f"{self.problems[0]}; fix or remove the file, then try again "
                            "(it was left as it is)")
        return hosts, kept

    def _save(self, hosts: list[Host], kept: list[Any]) -> None:
        data = {"host": [*(asdict(h) for h in hosts), *kept]}
        try:
            write_atomically(self.path, tomli_w.dumps(data).encode("utf-8"))
        except OSError as exc:
            raise saving_failed("the hosts", self.path, exc) from exc


def _entry_problem(entry: Any) -> str:
    """What keeps a [[host]] table from being a Host ("" when nothing does)."""
    if not isinstance(entry, dict):
        return "not a table"
    known = {f.name: f.type for f in fields(Host)}
    unknown = sorted(set(entry) - set(known))
    if unknown:
        return f"unknown key(s) {', '.join(unknown)}"
    missing = [key for key in ("name", "url") if key not in entry]
    if missing:
        return f"no {' or '.join(missing)}"
    for key, value in entry.items():
        expected = bool if known[key] in (bool, "bool") else str
        if not isinstance(value, expected):
            return f"{key} must be {'true or false' if expected is bool else 'text'}"
    return ""
