"""Pytest fixtures that hand the real parts to tests.

A part that cannot be provided skips the test with the reason, or fails it under CI=true,
where a missing part is a broken environment rather than a lighter machine. Parts are
built or started once per session and cached outside the checkout (see prepare.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import docker
import pytest

from tests.realparts import PartMissing
from tests.realparts.backend_image import ensure_backend_image
from tests.realparts.compose_cli import ensure_compose
from tests.realparts.desktop import virtual_desktop_with_tray
from tests.realparts.docker_engine import DockerEngine, find_or_start_engine
from tests.realparts.gemma import ensure_gemma_gguf
from tests.realparts.gguf_factory import TinyModelSpec, write_lora_adapter, write_tiny_model
from tests.realparts.leak_guard import LeakGuard
from tests.realparts.llama_build import ensure_llama_server
from tests.realparts.packaging_tools import ensure_packaging_tools
from tests.realparts.remote_host import RemoteHost, start_remote_host

T = TypeVar("T")


def part_missing(reason: str) -> NoReturn:
    """Fail under CI=true, else skip, with the reason the part is missing."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"real part missing: {reason}", pytrace=False)
    pytest.skip(f"real part missing: {reason}")


def require_part(make: Callable[[], T]) -> T:
    """make(), turning PartMissing into a skip (or a failure under CI=true)."""
    try:
        return make()
    except PartMissing as exc:
        part_missing(str(exc))


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[DockerEngine]:
    """A Docker engine; one started for this session is stopped at its end."""
    engine = require_part(find_or_start_engine)
    try:
        yield engine
    finally:
        engine.stop()


@pytest.fixture(scope="session")
def docker_client(docker_engine: DockerEngine) -> docker.DockerClient:
    """A client of the session's Docker engine."""
    return docker_engine.client


@pytest.fixture(scope="session")
def llama_server_binary() -> Path:
    """The llama-server built from the pinned llama-cpp-python sdist (built if missing)."""
    return require_part(ensure_llama_server)


@pytest.fixture(scope="session")
def llama_server_image(docker_client: docker.DockerClient, llama_server_binary: Path) -> str:
    """The tag of a local image whose entrypoint is that llama-server (host network only)."""
    return require_part(lambda: ensure_backend_image(docker_client, llama_server_binary))


@pytest.fixture
def tray_display() -> Iterator[str]:
    """The DISPLAY of a virtual X desktop with a system tray (Xvfb + trayer)."""
    try:
        with virtual_desktop_with_tray() as display:
            yield display
    except PartMissing as missing:
        part_missing(str(missing))


@pytest.fixture(scope="session")
def packaging_tools() -> None:
    """PyInstaller, dpkg-deb, makensis and desktop-file-validate (installed if missing)."""
    require_part(ensure_packaging_tools)


@pytest.fixture(scope="session")
def compose_command() -> list[str]:
    """`docker compose` or Debian's `docker-compose` (installed if missing)."""
    return require_part(ensure_compose)


@pytest.fixture(scope="session")
def openai_npm() -> Path:
    """node_modules holding the official `openai` npm package."""
    from tests.realparts.openai_npm import ensure_openai_npm

    return require_part(ensure_openai_npm)


@pytest.fixture(scope="session")
def gemma_gguf() -> Path:
    """The real Gemma 3 270M Q4_K_M GGUF, assembled in the cache folder."""
    return require_part(ensure_gemma_gguf)


class TinyGgufFactory:
    """Writes tiny models and adapters into one folder the test may mount read-only."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __call__(self, spec: TinyModelSpec | None = None, /, *, filename: str | None = None,
                 **changes: Any) -> Path:
        """Write a model of spec (default TinyModelSpec()) with TinyModelSpec fields changed.

        e.g. `tiny_gguf(arch="qwen3moe", layers=4, experts=16, experts_used=4)`.
        """
        final = replace(spec or TinyModelSpec(), **changes)
        name = filename or f"{final.display_name}-{final.weight_type}.gguf"
        return write_tiny_model(self.folder / name, final)

    def lora(self, base: TinyModelSpec | None = None, /, *, filename: str | None = None,
             rank: int = 4, alpha: float = 8.0, targets: tuple[str, ...] = ("attn_q", "attn_v"),
             seed: int = 1) -> Path:
        """Write a LoRA adapter that fits models of spec base."""
        spec = base or TinyModelSpec()
        name = filename or f"{spec.display_name}-lora-r{rank}-s{seed}.gguf"
        return write_lora_adapter(self.folder / name, spec, rank=rank, alpha=alpha,
                                  targets=targets, seed=seed)


@pytest.fixture
def tiny_gguf(tmp_path: Path) -> TinyGgufFactory:
    """A factory for tiny qwen3/qwen3moe GGUFs (and LoRAs) in tmp_path/models."""
    return TinyGgufFactory(tmp_path / "models")


@pytest.fixture(scope="session")
def tiny_qwen3_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One default tiny qwen3 model for the session (read-only use: tests share it)."""
    return TinyGgufFactory(tmp_path_factory.mktemp("tiny-models"))()


@pytest.fixture
def leak_guard(request: pytest.FixtureRequest) -> Iterator[LeakGuard]:
    """Fail the test if it leaves a container, child process or listening port behind.

    Containers are watched when the test also uses `docker_client`; put
    `leak_guard.labels` on containers the test creates, and take ports from
    `leak_guard.free_port()` so a port held by a container is watched too.
    """
    guard = LeakGuard(node=request.node.nodeid)
    if "docker_client" in request.fixturenames:
        engine: DockerEngine = request.getfixturevalue("docker_engine")
        guard.client = engine.client
        if engine.pid is not None:
            guard.exclude_pids.add(engine.pid)
    guard.snapshot()
    yield guard
    leaks = guard.leaks()
    if leaks:
        pytest.fail("the test left behind: " + "; ".join(leaks), pytrace=False)


@pytest.fixture(scope="session")
def remote_host(tmp_path_factory: pytest.TempPathFactory,
                llama_server_binary: Path) -> Iterator[RemoteHost]:
    """A second Docker engine reached over ssh:// (a local sshd), with the backend image."""
    folder = tmp_path_factory.mktemp("remote-host")
    parts = start_remote_host(folder, llama_server_binary)
    yield require_part(lambda: next(parts))
    for _ in parts:  # runs the clean-up after the yield
        pass
