"""A fix for docker-py's ssh:// shell-out transport, applied once on import.

docker-py 7.1's `SSHSocket.close()` (docker/transport/sshconn.py) terminates the `ssh`
child but never waits for it or closes its pipes, so each connection leaves a zombie
and two open files behind (ResourceWarning: "subprocess … is still running"). This
replaces it with a close that ends the child and releases everything it held.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
from typing import Any

from docker.transport import sshconn

CHILD_EXIT_S = 5.0


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
    """Use the fixed close (idempotent)."""
    sshconn.SSHSocket.close = _close
