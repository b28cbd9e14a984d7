"""What the user is told when a backend cannot start or dies, with the real engine and
server: image missing, model missing, port taken, a bad flag, a server killed mid-run,
and GPUs asked of an engine without the NVIDIA runtime."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from app.engines.plan import LaunchPlan
from app.engines.recipes import launch_spec
from app.errors import UserError
from app.runtime.backend import BackendState
from app.runtime.backends_service import BackendsService
from app.runtime.docker_runtime import DockerRuntime
from app.runtime.hosts import Host
from tests.integration.backends_support import READY_TIMEOUT_S, make_service
from tests.realparts.docker_engine import DockerEngine
from tests.realparts.fixtures import TinyGgufFactory
from tests.realparts.leak_guard import LeakGuard


@pytest.fixture
def host(docker_engine: DockerEngine) -> Host:
    return Host("local", docker_engine.base_url, host_network=True)


@pytest.fixture
def service(host: Host, llama_server_image: str, tmp_path: Path,
            leak_guard: LeakGuard) -> Iterator[BackendsService]:
    """A service on the test engine; stops what the test left (before the guard looks)."""
    made = make_service([host], llama_server_image, tmp_path / "run")
    try:
        yield made
    finally:
        for backend in list(made.backends.values()):
            made.stop(backend, timeout_s=2)
        made.close()


def _plan(model: Path, guard: LeakGuard, **changes: object) -> LaunchPlan:
    raw: dict[str, object] = {"model": str(model), "context": 512, "threads": 1,
                              "labels": guard.labels, "port": guard.free_port()}
    raw.update(changes)
    return LaunchPlan.from_dict(raw)


@pytest.mark.integration
def test_missing_image_is_named_with_how_to_get_it(
        service: BackendsService, docker_client: docker.DockerClient,
        tiny_gguf: TinyGgufFactory, leak_guard: LeakGuard) -> None:
    plan = _plan(tiny_gguf(), leak_guard, image="rigdeck-test/no-such-image:1")
    with pytest.raises(UserError, match=r"the image rigdeck-test/no-such-image:1 is not there\. "
                                        r"Pull it \(docker pull"):
        service.start(plan, "local")
    assert service.refresh() == []


@pytest.mark.integration
def test_missing_model_is_refused_before_anything_starts(
        service: BackendsService, docker_client: docker.DockerClient, tmp_path: Path,
        leak_guard: LeakGuard) -> None:
    plan = _plan(tmp_path / "gone.gguf", leak_guard)
    with pytest.raises(UserError, match=r"the model path .*gone\.gguf does not exist"):
        service.start(plan, "local")
    assert service.refresh() == []


@pytest.mark.integration
def test_a_taken_port_is_refused(service: BackendsService, docker_client: docker.DockerClient,
                                 tiny_gguf: TinyGgufFactory, leak_guard: LeakGuard) -> None:
    port = leak_guard.free_port()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        with pytest.raises(UserError, match=f"port {port} on 127.0.0.1 is already in use"):
            service.start(_plan(tiny_gguf(), leak_guard, port=port), "local")
    assert service.refresh() == []


@pytest.mark.integration
def test_a_port_taken_under_the_server_is_read_from_its_log(
        service: BackendsService, docker_client: docker.DockerClient,
        tiny_gguf: TinyGgufFactory, leak_guard: LeakGuard) -> None:
    first = service.start(_plan(tiny_gguf(), leak_guard, name="first"), "local",
                          wait=True, timeout_s=READY_TIMEOUT_S).backend
    # Rigdeck refuses a port it knows is taken; a server started on it behind Rigdeck's
    # back (here: through the runtime directly) fails, and the log says why.
    runtime = service.runtime("local")
    assert isinstance(runtime, DockerRuntime)
    spec = launch_spec(_plan(tiny_gguf(), leak_guard, name="third", port=first.port),
                       port=first.port, image=first.image)
    ref = runtime.start(spec, "third", {**leak_guard.labels, "rigdeck.name": "third",
                                        "rigdeck.port": str(first.port)}, "k")
    service.refresh()
    third = service.find("third")
    assert third.ref == ref
    with pytest.raises(UserError, match=f"port {first.port} is already in use on the host"):
        service.wait_ready(third, READY_TIMEOUT_S)
    assert third.state is BackendState.FAILED
    assert first.state is BackendState.READY


@pytest.mark.integration
def test_a_server_that_exits_at_once_names_the_bad_flag(
        service: BackendsService, docker_client: docker.DockerClient,
        tiny_gguf: TinyGgufFactory, leak_guard: LeakGuard) -> None:
    plan = _plan(tiny_gguf(), leak_guard, extra_args=["--no-such-flag"])
    backend = service.start(plan, "local").backend
    with pytest.raises(UserError, match="does not know the flag --no-such-flag"):
        service.wait_ready(backend, READY_TIMEOUT_S)
    assert backend.state is BackendState.FAILED
    # Re-attached by a fresh service, it is still shown as failed, with the reason.
    (again,) = service.refresh()
    assert again.state is BackendState.FAILED
    assert "--no-such-flag" in again.reason


@pytest.mark.integration
def test_a_server_killed_mid_run_is_shown_as_killed(
        service: BackendsService, docker_client: docker.DockerClient,
        tiny_gguf: TinyGgufFactory, leak_guard: LeakGuard) -> None:
    backend = service.start(_plan(tiny_gguf(), leak_guard), "local", wait=True,
                            timeout_s=READY_TIMEOUT_S).backend
    seen: list[BackendState] = []
    backend.state_changed.connect(lambda state, reason: seen.append(state))
    docker_client.containers.get(backend.ref).kill()
    (after,) = service.refresh()
    assert after is backend
    assert seen == [BackendState.FAILED]
    assert backend.reason == "the server was killed (SIGKILL) while running"


@pytest.mark.integration
def test_gpu_request_is_exact_and_a_host_without_nvidia_runtime_is_named(
        service: BackendsService, docker_client: docker.DockerClient,
        tiny_gguf: TinyGgufFactory, leak_guard: LeakGuard) -> None:
    plan = _plan(tiny_gguf(), leak_guard, gpus=["0", "1"])
    llama_server_image = service.images["llamacpp"]
    runtime = DockerRuntime(service.hosts["local"])
    try:
        spec = launch_spec(plan, port=plan.port or 0, image=llama_server_image)
        ref = runtime.create_only(spec, "gpu-check", leak_guard.labels)
        try:
            requests = docker_client.api.inspect_container(ref)["HostConfig"]["DeviceRequests"]
        finally:
            docker_client.api.remove_container(ref, force=True)
    finally:
        runtime.close()
    assert requests == [{"Driver": "nvidia", "Count": 0, "DeviceIDs": ["0", "1"],
                         "Capabilities": [["gpu"]], "Options": {}}]
    assert "-ngl" in spec.args
    with pytest.raises(UserError, match="lacks the NVIDIA container runtime"):
        service.start(plan, "local")
    assert service.refresh() == []
