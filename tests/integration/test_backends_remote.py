"""Two hosts at once: the session's engine and a second engine over a real ssh:// transport.
The second engine is this module's own, so it may be stopped and started again."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import docker
import pytest

from app.engines.plan import LaunchPlan
from app.runtime.backend import UNKNOWN, BackendState
from app.runtime.backends_service import BackendsService
from app.runtime.docker_runtime import DockerRuntime
from app.runtime.hosts import Host
from tests.integration.backends_support import READY_TIMEOUT_S, chat, make_service
from tests.realparts.docker_engine import DockerEngine
from tests.realparts.fixtures import TinyGgufFactory
from tests.realparts.leak_guard import LeakGuard
from tests.realparts.remote_host import RemoteHost

POLL_S = 0.3


@pytest.fixture
def two_hosts(docker_engine: DockerEngine, remote_host: RemoteHost, llama_server_image: str,
              tmp_path: Path, leak_guard: LeakGuard) -> Iterator[BackendsService]:
    hosts = [Host("local", docker_engine.base_url, host_network=True),
             Host("remote", remote_host.url, host_network=True)]
    service = make_service(hosts, llama_server_image, tmp_path / "run")
    try:
        yield service
    finally:
        service.refresh()
        for backend in list(service.backends.values()):
            service.stop(backend, timeout_s=2)
        service.close()


def _plan(model: Path, guard: LeakGuard, name: str) -> LaunchPlan:
    return LaunchPlan.from_dict({"model": str(model), "name": name, "context": 512,
                                 "threads": 1, "labels": guard.labels,
                                 "port": guard.free_port()})


@pytest.mark.integration
def test_backends_on_two_hosts_at_once_over_ssh(
        two_hosts: BackendsService, remote_host: RemoteHost,
        docker_client: docker.DockerClient, tiny_gguf: TinyGgufFactory,
        leak_guard: LeakGuard) -> None:
    model = tiny_gguf()
    here = two_hosts.start(_plan(model, leak_guard, "here"), "local", wait=True,
                           timeout_s=READY_TIMEOUT_S).backend
    there = two_hosts.start(_plan(model, leak_guard, "there"), "remote", wait=True,
                            timeout_s=READY_TIMEOUT_S).backend
    listed = {(b.host, b.name): b.state for b in two_hosts.refresh()}
    assert listed == {("local", "here"): BackendState.READY,
                      ("remote", "there"): BackendState.READY}
    assert [c.name for c in remote_host.client.containers.list()] == ["rigdeck-there"]
    assert "rigdeck-there" not in [c.name for c in docker_client.containers.list()]
    for backend in (here, there):
        assert chat(backend.base_url, backend.api_key).status_code == 200
    two_hosts.stop(there)
    assert remote_host.client.containers.list(all=True) == []
    assert [(b.host, b.name, b.state) for b in two_hosts.refresh()] == [
        ("local", "here", BackendState.READY)]


@pytest.mark.integration
def test_a_backend_recovers_when_its_engine_restarts(
        two_hosts: BackendsService, remote_host: RemoteHost, tiny_gguf: TinyGgufFactory,
        leak_guard: LeakGuard) -> None:
    backend = two_hosts.start(_plan(tiny_gguf(), leak_guard, "phoenix"), "remote", wait=True,
                              timeout_s=READY_TIMEOUT_S).backend
    remote_host.stop_engine()
    try:
        two_hosts.refresh()
        assert "remote" in two_hosts.host_errors
        assert "cannot reach the Docker engine at" in two_hosts.host_errors["remote"]
        assert backend.state is BackendState.READY  # unknown, not declared dead
    finally:
        remote_host.start_engine()
        assert remote_host.dockerd is not None
        leak_guard.exclude_pids.add(remote_host.dockerd.pid)  # the session's engine, again
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        two_hosts.refresh()
        if backend.state is BackendState.READY and "remote" not in two_hosts.host_errors:
            break
        time.sleep(POLL_S)
    assert two_hosts.find("phoenix", "remote") is backend
    assert backend.state is BackendState.READY
    assert chat(backend.base_url, backend.api_key).status_code == 200


@pytest.mark.integration
def test_a_backend_stopped_by_someone_while_its_host_was_out_of_reach_stays_stopped(
        two_hosts: BackendsService, remote_host: RemoteHost, tiny_gguf: TinyGgufFactory,
        leak_guard: LeakGuard) -> None:
    backend = two_hosts.start(_plan(tiny_gguf(), leak_guard, "stopped-away"), "remote",
                              wait=True, timeout_s=READY_TIMEOUT_S).backend
    runtime = two_hosts.runtimes["remote"]
    assert isinstance(runtime, DockerRuntime)
    reachable = runtime.host
    runtime.host = replace(reachable, url="ssh://nobody@127.0.0.1:1")  # the way there is cut
    runtime.close()
    two_hosts.refresh()
    assert "remote" in two_hosts.host_errors
    assert backend.shown_state == UNKNOWN  # not "ready": nobody can tell
    remote_host.client.api.stop(backend.ref, timeout=10)  # meanwhile, someone stops it there
    runtime.host = reachable  # the way is back
    runtime.close()
    two_hosts.refresh()
    assert backend.state is BackendState.STOPPED
    assert backend.shown_state == "stopped"
    assert remote_host.client.api.inspect_container(backend.ref)["State"]["Running"] is False
