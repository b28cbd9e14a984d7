"""A refresh that runs while a start does, with the real engine and server: the window
refreshes every two seconds on its own worker, and a start over ssh:// takes seconds, so
the refresh often finds the new container before the start has returned. Both must hand
out the same Backend: the card the window shows is built from what the refresh returned,
and a second object for the same container, the one the service kept updating, left that
card at "starting" while the server was ready (the Settings journey on an ssh host)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from app.engines.plan import LaunchPlan
from app.runtime.backend import Backend, BackendState
from app.runtime.backends_service import BackendsService
from app.runtime.hosts import Host
from tests.integration.backends_support import READY_TIMEOUT_S, make_service
from tests.realparts.docker_engine import DockerEngine
from tests.realparts.fixtures import TinyGgufFactory
from tests.realparts.leak_guard import LeakGuard


@pytest.fixture
def service(docker_engine: DockerEngine, llama_server_image: str, tmp_path: Path,
            leak_guard: LeakGuard) -> Iterator[BackendsService]:
    """A service on the test engine; stops what the test left (before the guard looks)."""
    made = make_service([Host("local", docker_engine.base_url, host_network=True)],
                        llama_server_image, tmp_path / "run")
    try:
        yield made
    finally:
        for backend in list(made.backends.values()):
            made.stop(backend, timeout_s=2)
        made.close()


@pytest.mark.integration
def test_a_refresh_that_finds_a_starting_container_first_shares_its_backend_with_the_start(
        service: BackendsService, docker_client: docker.DockerClient,
        tiny_gguf: TinyGgufFactory, leak_guard: LeakGuard,
        monkeypatch: pytest.MonkeyPatch) -> None:
    del docker_client  # requested so that the leak guard watches the engine's containers
    runtime = service.runtime("local")
    real_start = runtime.start
    shown: list[Backend] = []

    def start_then_refresh(*args: Any, **kwargs: Any) -> str:
        ref = real_start(*args, **kwargs)
        # the window's refresh, landing before start returns (another session's backends
        # on a shared engine are in the list too)
        shown.extend(b for b in service.refresh() if b.name == "raced")
        return str(ref)

    monkeypatch.setattr(runtime, "start", start_then_refresh)
    plan = LaunchPlan.from_dict({"model": str(tiny_gguf()), "name": "raced", "context": 512,
                                 "threads": 1, "labels": leak_guard.labels})
    started = service.start(plan, "local", wait=True, timeout_s=READY_TIMEOUT_S).backend
    assert len(shown) == 1
    assert shown[0] is started  # the card's backend is the one that turns ready
    assert started.state is BackendState.READY
    service.refresh()
    assert service.get("local", "raced") is started
    assert started.api_key is not None
    assert service.api_key(started) == started.api_key


@pytest.mark.integration
def test_a_backend_started_while_a_refresh_lists_the_engine_is_not_declared_gone(
        service: BackendsService, docker_client: docker.DockerClient,
        tiny_gguf: TinyGgufFactory, leak_guard: LeakGuard,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The refresh's list predates the container: that is no sign it was removed."""
    del docker_client  # requested so that the leak guard watches the engine's containers
    runtime = service.runtime("local")
    real_observe = runtime.observe
    started: list[Backend] = []
    plan = LaunchPlan.from_dict({"model": str(tiny_gguf()), "name": "early", "context": 512,
                                 "threads": 1, "labels": leak_guard.labels})

    def observe_then_start() -> Any:
        listed = real_observe()
        monkeypatch.setattr(runtime, "observe", real_observe)  # the start's own refresh
        started.append(service.start(plan, "local").backend)
        return listed

    monkeypatch.setattr(runtime, "observe", observe_then_start)
    service.refresh()
    assert service.get("local", "early") is started[0]
    assert started[0].state is not BackendState.STOPPED, started[0].reason
    assert service.wait_ready(started[0], READY_TIMEOUT_S) is started[0]
    service.refresh()
    assert service.get("local", "early") is started[0]
