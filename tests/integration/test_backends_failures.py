"""What the user is told when a backend cannot start or dies, with the real engine and
server: image missing, model missing, port taken, a bad flag, a server killed mid-run (a
container and a local process: the reason names the signal, `died` is emitted once, not
for a backend the user stopped nor for one found already dead), and GPUs asked of an
engine without the NVIDIA runtime."""

from __future__ import annotations

import json
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from app.engines.plan import LaunchPlan
from app.engines.recipes import launch_spec
from app.errors import UserError
from app.runtime.backend import Backend, BackendState
from app.runtime.backends_service import BackendsService
from app.runtime.docker_runtime import DockerRuntime
from app.runtime.hosts import PROCESSES, Host, processes_host
from app.runtime.keys import KeyKeeper
from app.secrets import SecretStore
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
    deaths: list[Backend] = []
    backend.state_changed.connect(lambda state, reason: seen.append(state))
    service.died.connect(deaths.append)
    docker_client.containers.get(backend.ref).kill()
    assert docker_client.api.inspect_container(backend.ref)["State"]["ExitCode"] == 137
    (after,) = service.refresh()
    assert after is backend
    assert seen == [BackendState.FAILED]
    assert backend.reason == "the server was killed (SIGKILL) while running"
    assert service.refresh() == [backend]  # seen again: still failed, told once
    assert deaths == [backend]


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


@pytest.fixture
def processes(llama_server_binary: Path, tmp_path: Path,
              leak_guard: LeakGuard) -> Iterator[BackendsService]:
    """A service for local llama-server processes; stops what the test left."""
    made = _process_service(llama_server_binary, tmp_path / "run")
    try:
        yield made
    finally:
        for backend in list(made.backends.values()):
            made.stop(backend, timeout_s=2)
        made.close()


def _process_service(binary: Path, run_dir: Path) -> BackendsService:
    return BackendsService([processes_host()], KeyKeeper(SecretStore()), run_dir=run_dir,
                           llama_server_path=str(binary))


def _wait_dead(pid: int) -> None:
    """Until our child `pid` has ended, leaving it for the service to reap (WNOWAIT)."""
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)


@pytest.mark.integration
def test_a_process_killed_from_outside_is_shown_killed_and_reported_once(
        processes: BackendsService, llama_server_binary: Path, tmp_path: Path,
        tiny_gguf: TinyGgufFactory, leak_guard: LeakGuard) -> None:
    deaths: list[Backend] = []
    processes.died.connect(deaths.append)
    backend = processes.start(_plan(tiny_gguf(), leak_guard, name="doomed"), PROCESSES,
                              wait=True, timeout_s=READY_TIMEOUT_S).backend
    stopped = processes.start(_plan(tiny_gguf(), leak_guard, name="stopped"), PROCESSES,
                              wait=True, timeout_s=READY_TIMEOUT_S).backend
    processes.stop(stopped)  # the user's own stop is no death

    os.kill(int(backend.ref), signal.SIGKILL)
    _wait_dead(int(backend.ref))
    assert processes.refresh() == [backend]
    assert backend.state is BackendState.FAILED
    assert backend.reason == "the server was killed (SIGKILL) while running"
    processes.refresh()
    assert deaths == [backend]

    # How it ended is written beside its pid, so a later run (or the CLI) says the same,
    # and a backend found already dead is not a new death.
    record = json.loads((tmp_path / "run" / "doomed.json").read_text(encoding="utf-8"))
    assert record["returncode"] == -signal.SIGKILL
    later = _process_service(llama_server_binary, tmp_path / "run")
    later_deaths: list[Backend] = []
    later.died.connect(later_deaths.append)
    try:
        (found,) = later.refresh()
        assert (found.state, found.reason) == (BackendState.FAILED, backend.reason)
        assert later_deaths == []
    finally:
        later.close()


@pytest.mark.integration
def test_a_process_found_again_that_dies_says_its_exit_status_is_unknown(
        processes: BackendsService, llama_server_binary: Path, tmp_path: Path,
        tiny_gguf: TinyGgufFactory, leak_guard: LeakGuard) -> None:
    """A later run re-attaches through the pid file; the server is not its child, so no
    one can tell it how the server ended (the run that started it did not see it end)."""
    backend = processes.start(_plan(tiny_gguf(), leak_guard, name="orphan"), PROCESSES,
                              wait=True, timeout_s=READY_TIMEOUT_S).backend
    later = _process_service(llama_server_binary, tmp_path / "run")
    deaths: list[Backend] = []
    later.died.connect(deaths.append)
    try:
        (found,) = later.refresh()
        assert found.state is BackendState.READY
        os.kill(int(backend.ref), signal.SIGKILL)
        _wait_dead(int(backend.ref))
        (after,) = later.refresh()
        assert after is found
        assert after.state is BackendState.FAILED
        assert after.reason.startswith("the server ended; its exit status is unknown; ")
        assert "None" not in after.reason
        assert deaths == [found]
    finally:
        later.close()


@pytest.mark.integration
def test_a_backend_stopped_from_another_rigdeck_is_a_stop_not_a_death(
        processes: BackendsService, llama_server_binary: Path, tmp_path: Path,
        tiny_gguf: TinyGgufFactory, leak_guard: LeakGuard) -> None:
    """`rigdeck down NAME` in a terminal while the window watches: no "died" alert."""
    deaths: list[Backend] = []
    processes.died.connect(deaths.append)
    backend = processes.start(_plan(tiny_gguf(), leak_guard, name="downed"), PROCESSES,
                              wait=True, timeout_s=READY_TIMEOUT_S).backend
    terminal = _process_service(llama_server_binary, tmp_path / "run")
    try:
        terminal.refresh()
        terminal.stop(terminal.find("downed"))
    finally:
        terminal.close()
    assert processes.refresh() == []
    assert backend.state is BackendState.STOPPED
    assert "removed outside Rigdeck" in backend.reason
    assert deaths == []
