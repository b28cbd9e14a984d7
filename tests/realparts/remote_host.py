"""A second Docker engine reached over a real ssh:// transport: the "remote host" part.

A private dockerd (its own --data-root, --exec-root, --pidfile and socket) stands in for
a server; an sshd from Debian's openssh-server listens on a free loopback port with a
throwaway host key and client key, and sets DOCKER_HOST for its sessions so that the
remote `docker system dial-stdio` (what the docker SDK's ssh transport runs) reaches
that engine. The local `ssh` client is given its config through a wrapper first on PATH
(OpenSSH reads no config path from the environment). Root only: sshd and dockerd.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker

from tests.realparts import PartMissing
from tests.realparts.backend_image import ensure_backend_image
from tests.realparts.cache import cache_dir
from tests.realparts.docker_engine import _dockerd, _install_docker_io, _ping, _stop_dockerd
from tests.realparts.leak_guard import free_port

REMOTE_SOCKET = Path("/run/rigdeck-remote-docker.sock")
REMOTE_EXEC_ROOT = Path("/run/rigdeck-remote-docker")
REMOTE_PIDFILE = Path("/run/rigdeck-remote-docker.pid")
START_TIMEOUT_S = 90.0


@dataclass
class RemoteHost:
    """The second engine: `url` is the ssh:// URL Rigdeck uses, `client` a direct client."""

    url: str
    client: docker.DockerClient
    image: str
    folder: Path
    dockerd: subprocess.Popen[bytes] | None = None

    def stop_engine(self) -> None:
        """Stop the engine (its containers stop with it); the ssh side stays up."""
        self.client.close()
        _stop_dockerd(self.dockerd, None)
        self.dockerd = None

    def start_engine(self) -> None:
        self.dockerd, self.client = _start_engine(self.folder)


def _start_engine(folder: Path) -> tuple[subprocess.Popen[bytes], docker.DockerClient]:
    data_root = cache_dir() / "docker-remote" / "data-root"
    data_root.mkdir(parents=True, exist_ok=True)
    REMOTE_SOCKET.unlink(missing_ok=True)
    cmd = [_dockerd(), "--storage-driver=vfs", "--iptables=false", "--ip6tables=false",
           "--bridge=none", f"--data-root={data_root}", f"--exec-root={REMOTE_EXEC_ROOT}",
           f"--pidfile={REMOTE_PIDFILE}", f"--host=unix://{REMOTE_SOCKET}"]
    log_path = folder / "dockerd.log"
    with log_path.open("ab") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise PartMissing(f"the second dockerd exited ({process.returncode}): "
                              f"{log_path.read_text(errors='replace')[-2000:]}")
        client = _ping(f"unix://{REMOTE_SOCKET}") if REMOTE_SOCKET.exists() else None
        if client is not None:
            return process, client
        time.sleep(0.25)
    _stop_dockerd(process, None)
    raise PartMissing("the second dockerd did not answer in time")


def _sshd() -> str:
    found = shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else "")
    if found:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    done = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends",
                           "openssh-server"], env=env, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0 or not Path("/usr/sbin/sshd").exists():
        raise PartMissing(f"openssh-server could not be installed: {done.stderr[-1500:]}")
    return "/usr/sbin/sshd"


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
                   check=True, capture_output=True)


def _start_sshd(folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    _keygen(folder / "host_key")
    _keygen(folder / "client_key")
    (folder / "authorized_keys").write_text((folder / "client_key.pub").read_text())
    config = folder / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host_key'}\n"
        f"PidFile {folder / 'sshd.pid'}\nAuthorizedKeysFile {folder / 'authorized_keys'}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
        f"SetEnv DOCKER_HOST=unix://{REMOTE_SOCKET}\n")
    Path("/run/sshd").mkdir(exist_ok=True)
    with (folder / "sshd.log").open("ab") as out:
        process = subprocess.Popen([_sshd(), "-D", "-e", "-f", str(config)], stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    client_config = folder / "ssh_config"
    client_config.write_text(
        f"Host 127.0.0.1\n  IdentityFile {folder / 'client_key'}\n  IdentitiesOnly yes\n"
        "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n"
        "  BatchMode yes\n")
    wrapper = folder / "bin" / "ssh"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec /usr/bin/ssh -F {client_config} "$@"\n')
    wrapper.chmod(0o755)
    return process, port


def _wait_ssh(folder: Path, port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    last = ""
    while time.monotonic() < deadline:
        done = subprocess.run([str(folder / "bin" / "ssh"), "-p", str(port), "root@127.0.0.1",
                               "docker version --format '{{.Server.Version}}'"],
                              capture_output=True, text=True, check=False, timeout=60)
        if done.returncode == 0:
            return
        last = done.stderr
        time.sleep(0.5)
    raise PartMissing(f"ssh to the second engine did not work: {last[-1500:]}")


def start_remote_host(folder: Path, binary: Path) -> Iterator[RemoteHost]:
    """Start the second engine and sshd; yield the host; stop both and restore PATH."""
    if os.geteuid() != 0:
        raise PartMissing("the remote-host part starts sshd and dockerd: root only")
    if shutil.which("docker") is None:
        _install_docker_io()
    dockerd, client = _start_engine(folder)
    sshd: subprocess.Popen[bytes] | None = None
    old_path = os.environ.get("PATH", "")
    remote: RemoteHost | None = None
    try:
        image = ensure_backend_image(client, binary)
        sshd, port = _start_sshd(folder)
        os.environ["PATH"] = f"{folder / 'bin'}{os.pathsep}{old_path}"
        _wait_ssh(folder, port)
        remote = RemoteHost(f"ssh://root@127.0.0.1:{port}", client, image, folder, dockerd)
        yield remote
    finally:
        os.environ["PATH"] = old_path
        if sshd is not None:
            sshd.terminate()
            sshd.wait(30)
        if remote is not None:
            remote.stop_engine()
        else:
            client.close()
            _stop_dockerd(dockerd, None)
