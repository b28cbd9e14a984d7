"""LaunchSpec: what an engine recipe hands to a runtime (container or local process).

The runtime adds nothing to the engine's arguments except where they run: it never
parses them. That keeps each engine's flags in one module (its recipe).

A container is shut in by default: every capability dropped, no new privileges, a
non-root user, a read-only root filesystem with a tmpfs for scratch files, a process
limit; the recipe loosens only what its engine needs (vLLM: shared memory, IPC).
"""

from __future__ import annotations

from dataclasses import dataclass, field

NOBODY = "65534:65534"
TMPFS_OPTIONS = "rw,nosuid,nodev,size=512m,mode=1777"


@dataclass(frozen=True)
class Mount:
    """A host folder seen at `target` inside the container (read-only unless said)."""

    source: str
    target: str
    read_only: bool = True


@dataclass(frozen=True)
class LaunchSpec:
    """The exact command line, environment and mounts of one backend.

    `args` are the arguments after the image's entrypoint (or after the executable for
    a local process). `api_key_env` names the variable the engine reads its API key
    from: the key goes in the environment, never in `args`, so it is not in the
    process's command line (`ps`, /proc/PID/cmdline) or in a log of the command.
    """

    engine: str
    image: str
    args: tuple[str, ...]
    port: int
    bind: str
    env: dict[str, str] = field(default_factory=dict)
    mounts: tuple[Mount, ...] = ()
    api_key_env: str = ""
    gpus: tuple[str, ...] = ()
    ipc_host: bool = False
    shm_size: str | None = None
    health_path: str = "/health"
    served_model: str = ""
    user: str = NOBODY
    """Who the engine runs as in its container: the owner of the model files on this
    machine (they are mounted one by one, so nothing else of the host is reachable), never
    root; nobody when root owns them or they are on a remote host."""
    read_only_root: bool = True
    """The engine writes nothing but its log (stdout) and scratch files (the tmpfs)."""
    tmpfs: tuple[str, ...] = ("/tmp",)
    pids_limit: int = 4096
    """Threads count too: llama.cpp runs one per core and slot; a fork bomb stops here."""
    tool: str = ""
    """A one-shot tool of the engine to run instead of its server (`llama-perplexity`):
    found beside the server, in the image's entrypoint folder or next to the local
    llama-server; empty for a backend."""
