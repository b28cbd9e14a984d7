"""A started backend's container, as `docker inspect` shows it: shut in (no capability, no
new privileges, not root, a read-only root with a tmpfs, a process limit) and given exactly
its model's files, read-only — also when the model is a symlink or lives in a Hugging Face
cache, whose snapshot files are relative links into its blobs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.engines.plan import LaunchPlan
from app.runtime.backend import BackendState
from app.runtime.backends_service import BackendsService
from app.runtime.hosts import Host
from tests.integration.backends_support import READY_TIMEOUT_S, chat, make_service
from tests.realparts.docker_engine import DockerEngine
from tests.realparts.fixtures import TinyGgufFactory
from tests.realparts.leak_guard import LeakGuard


@pytest.fixture
def service(docker_engine: DockerEngine, llama_server_image: str, tmp_path: Path,
            leak_guard: LeakGuard) -> Iterator[BackendsService]:
    made = make_service([Host("local", docker_engine.base_url, host_network=True)],
                        llama_server_image, tmp_path / "run")
    try:
        yield made
    finally:
        for backend in list(made.backends.values()):
            made.stop(backend, timeout_s=2)
        made.close()


def _start(service: BackendsService, model: Path, guard: LeakGuard, name: str) -> str:
    plan = LaunchPlan.from_dict({"model": str(model), "name": name, "context": 512,
                                 "threads": 1, "labels": guard.labels,
                                 "port": guard.free_port()})
    backend = service.start(plan, "local", wait=True, timeout_s=READY_TIMEOUT_S).backend
    assert backend.state is BackendState.READY
    assert chat(backend.base_url, backend.api_key).status_code == 200  # it reads the model
    return backend.ref


@pytest.mark.integration
def test_a_symlinked_model_starts_in_a_shut_in_container_with_only_its_file(
        service: BackendsService, docker_engine: DockerEngine, tiny_gguf: TinyGgufFactory,
        tmp_path: Path, leak_guard: LeakGuard) -> None:
    real = tiny_gguf(filename="real-name.gguf")
    (tmp_path / "links").mkdir()
    link = tmp_path / "links" / "my-model.gguf"
    link.symlink_to(real)
    ref = _start(service, link, leak_guard, "linked")

    attrs = docker_engine.client.api.inspect_container(ref)
    config, host = attrs["Config"], attrs["HostConfig"]
    assert host["CapDrop"] == ["ALL"]
    assert not host.get("CapAdd")
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert host["ReadonlyRootfs"] is True
    assert list(host["Tmpfs"]) == ["/tmp"]
    assert host["PidsLimit"] == 4096
    assert config["User"] not in ("", "0", "root", "0:0")
    assert not host.get("Privileged")
    mounts = [(m["Source"], m["Destination"], m["RW"]) for m in attrs["Mounts"]]
    assert mounts == [(str(real), "/models/m0/my-model.gguf", False)]  # the file, not a folder


@pytest.mark.integration
def test_a_model_in_a_hugging_face_cache_layout_starts(
        service: BackendsService, docker_engine: DockerEngine, tiny_gguf: TinyGgufFactory,
        tmp_path: Path, leak_guard: LeakGuard) -> None:
    repo = tmp_path / "hub" / "models--org--tiny-GGUF"
    blobs, snapshot = repo / "blobs", repo / "snapshots" / "0123abcd"
    blobs.mkdir(parents=True)
    snapshot.mkdir(parents=True)
    blob = blobs / "9f86d081884c7d659a2feaa0c55ad015"
    tiny_gguf(filename="tiny.gguf").replace(blob)
    (snapshot / "tiny-q8_0.gguf").symlink_to("../../blobs/9f86d081884c7d659a2feaa0c55ad015")
    ref = _start(service, snapshot / "tiny-q8_0.gguf", leak_guard, "hfcache")
    sources = [m["Source"] for m in docker_engine.client.api.inspect_container(ref)["Mounts"]]
    assert sources == [str(blob)]
