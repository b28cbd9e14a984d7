"""Runs a real llama-server as a child process for chat tests, the benchmark and recordings.

The Backends service will own launching for the app; the chat only needs a URL, so the
tests start the server themselves: bound to 127.0.0.1 on a free port, waited on until
/health says ok, and always stopped (terminate, then kill) so nothing is left running.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import httpx

log = logging.getLogger(__name__)

THINK_GRAMMAR = 'root ::= "<think>\\n" [a-z ]{8,24} "\\n</think>\\n\\n" [a-z ]{8,24}'
"""Makes the random tiny model 'think': llama.cpp parses the output like a real model's."""

LONE_CLOSE_GRAMMAR = 'root ::= [a-z ]{8,24} "\\n</think>\\n\\n" [a-z ]{8,24}'
"""Output as from a template that opened the think block itself."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LlamaServerError(RuntimeError):
    """The server did not come up; the message carries the tail of its log."""


@contextlib.contextmanager
def llama_server(binary: Path, model: Path, *, context: int = 4096,
                 extra: Sequence[str] = (), log_path: Path | None = None,
                 startup_s: float = 60.0, env: Mapping[str, str] | None = None
                 ) -> Iterator[str]:
    """Start llama-server on a free loopback port and yield its base URL; stop it after.

    `env` adds environment variables (e.g. LLAMA_SERVER_SLOTS_DEBUG=1, which makes /slots
    show each slot's last prompt).
    """
    port = free_port()
    command = [str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(port),
               "--jinja", "-c", str(context), "-np", "1", "-t", "1", "--no-warmup", *extra]
    log_file = log_path or model.with_suffix(f".{port}.log")
    with log_file.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                   env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(process, url, log_file, startup_s)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_healthy(process: subprocess.Popen[bytes], url: str, log_file: Path,
                  startup_s: float) -> None:
    deadline = time.monotonic() + startup_s
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise LlamaServerError(f"llama-server exited ({process.returncode}):\n"
                                       + log_file.read_text(errors="replace")[-3000:])
            with contextlib.suppress(httpx.HTTPError):
                if client.get(f"{url}/health").status_code == 200:
                    return
            time.sleep(0.1)  # polling a child process that has no readiness signal
    raise LlamaServerError(f"llama-server did not become healthy in {startup_s:g} s:\n"
                           + log_file.read_text(errors="replace")[-3000:])
