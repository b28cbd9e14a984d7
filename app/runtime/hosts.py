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
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlparse

import tomli_w

from app.errors import UserError
from app.settings import setting_place, write_atomically

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
    """The remote hosts the user added, in `hosts.toml`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> list[Host]:
        if not self.path.exists():
            return []
        try:
            raw = tomllib.loads(self.path.read_text(encoding="utf-8"))
            return [Host(**entry) for entry in raw.get("host", [])]
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, TypeError, OSError) as exc:
            log.warning("hosts file %s unreadable: %s", self.path, exc)
            return []

    def add(self, host: Host) -> None:
        """Add or replace a host by name.

        Raises:
            UserError: a reserved name or a bad URL.
        """
        if host.name in (LOCAL, PROCESSES):
            raise UserError(f"the host name {host.name!r} is reserved")
        if not NAME_RULE.fullmatch(host.name):
            raise UserError(f"{host.name!r} is not a host name: use letters, digits, '.', "
                            "'_' and '-' (up to 63)")
        check_url(host.url)
        hosts = [h for h in self.load() if h.name != host.name] + [host]
        self._save(hosts)

    def remove(self, name: str) -> None:
        self._save([h for h in self.load() if h.name != name])

    def _save(self, hosts: list[Host]) -> None:
        data = {"host": [asdict(h) for h in hosts]}
        write_atomically(self.path, tomli_w.dumps(data).encode("utf-8"))
