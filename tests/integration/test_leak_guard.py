"""The leak guard itself: it must see each kind of leftover, or the chain tests prove nothing."""

from __future__ import annotations

import socket
import subprocess
import sys

import docker
import pytest

from tests.realparts.leak_guard import LeakGuard


def _guard(client: docker.DockerClient | None = None) -> LeakGuard:
    guard = LeakGuard(node="leak-guard-self-test", client=client, settle_s=0.5)
    guard.snapshot()
    return guard


def test_a_clean_test_leaves_nothing() -> None:
    assert _guard().leaks() == []


def test_a_child_process_left_running_is_reported_and_killed() -> None:
    guard = _guard()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        leaks = guard.leaks()
        assert any(f"process {child.pid}" in leak for leak in leaks)
        assert child.wait(10) != 0
    finally:
        child.kill()
        child.wait()


def test_a_listening_port_left_open_is_reported() -> None:
    guard = _guard()
    port = guard.free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", port))
        server.listen()
        assert any(f":{port}" in leak for leak in guard.leaks())
    assert _guard().leaks() == []


@pytest.mark.integration
def test_a_container_left_behind_is_reported_and_removed(
        docker_client: docker.DockerClient, llama_server_image: str) -> None:
    guard = _guard(docker_client)
    container = docker_client.containers.create(llama_server_image, ["--version"],
                                                labels=guard.labels, network_mode="host")
    leaks = guard.leaks()
    assert any(str(container.name) in leak for leak in leaks)
    assert docker_client.containers.list(all=True, filters={"id": container.id}) == []
