"""Fixes for docker-py's ssh:// shell-out transport, applied once by `install()`.

docker-py 7.1's `SSHSocket.close()` (docker/transport/sshconn.py) terminates the `ssh`
child but never waits for it or closes its pipes, so each connection leaves a zombie
and two open files behind (ResourceWarning: "subprocess … is still running"). This
replaces it with a close that ends the child and releases everything it held.

Its `connect()` lets `ssh` ask for a password on a terminal the GUI does not have and
write its errors to Rigdeck's stderr, while the SDK reports only "I/O operation on closed
file". The replacement runs ssh in batch mode (a key or an agent, never a prompt) and
keeps its stderr, so `ssh_error(url)` can say why a host could not be reached.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import subprocess
import tempfile
import threading
from typing import IO, Any
from urllib.parse import urlparse

from docker.transport import sshconn

CHILD_EXIT_S = 5.0
CONNECT_TIMEOUT_S = 10
"""ssh's own ConnectTimeout: an address that does not answer fails in seconds."""

_stderr: dict[str, IO[bytes]] = {}
"""The stderr of the latest ssh child per `user@host:port`, for `ssh_error`."""
_stderr_lock = threading.Lock()


def _connect(self: Any, **_kwargs: Any) -> None:
    args = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}"]
    if self.user:
        args += ["-l", self.user]
    if self.port:
        args += ["-p", self.port]
    args += ["--", self.host, "docker system dial-stdio"]
    env = {k: v for k, v in os.environ.items()
           if k not in ("LD_LIBRARY_PATH", "SSL_CERT_FILE")}
    errors = tempfile.TemporaryFile()  # noqa: SIM115 - kept for ssh_error, closed on reuse
    user = f"{self.user}@" if self.user else ""
    key = f"{user}{self.host}{':' + self.port if self.port else ''}"
    with _stderr_lock:
        old = _stderr.pop(key, None)
        _stderr[key] = errors
    if old is not None:
        old.close()
    # its own session: Ctrl+C in a terminal goes to Rigdeck, not to ssh
    self.proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stdin=subprocess.PIPE,
                                 stderr=errors, start_new_session=True)


@atexit.register
def _close_stderr_files() -> None:
    """The files of ssh children still connected when Rigdeck ends."""
    with _stderr_lock:
        for errors in _stderr.values():
            errors.close()
        _stderr.clear()


def ssh_error(url: str) -> str:
    """The last line the latest ssh child for `url` wrote on stderr ("" when none)."""
    key = urlparse(url).netloc
    with _stderr_lock:
        errors = _stderr.get(key)
        if errors is None:
            return ""
        errors.seek(0)
        text = errors.read().decode(errors="replace")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""



def _close(self: Any) -> None:
    proc: subprocess.Popen[bytes] | None = self.proc
    if proc is not None:
        with contextlib.suppress(OSError, ValueError):
            if proc.stdin is not None and not proc.stdin.closed:
                proc.stdin.write(b"\n\n")
                proc.stdin.flush()
        with contextlib.suppress(OSError):
            proc.terminate()
        try:
            proc.wait(CHILD_EXIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(CHILD_EXIT_S)
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError, ValueError):
                    pipe.close()
    socket.socket.close(self)


def install() -> None:
    """Use the fixed connect and close (idempotent)."""
    sshconn.SSHSocket.connect = _connect
    sshconn.SSHSocket.close = _close
