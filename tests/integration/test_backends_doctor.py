"""The host doctor against the real Docker engine: version, images, the GPU probe
container (this engine has no NVIDIA runtime, so GPU requests really fail), disk, ports
with and without host networking, and `rigdeck doctor` as a separate process."""

from __future__ import annotations

import json
from pathlib import Path

import docker
import pytest

from app.runtime.docker_runtime import DockerRuntime
from app.runtime.doctor import Check, CheckStatus, HostReport, diagnose_host
from app.runtime.hosts import Host
from tests.integration.backends_support import cli_env, rigdeck, write_home
from tests.realparts.docker_engine import DockerEngine
from tests.realparts.leak_guard import LeakGuard
from tests.realparts.remote_host import RemoteHost

pytestmark = pytest.mark.integration

MISSING_IMAGE = "rigdeck-test/not-pulled:1"


def _report(docker_engine: DockerEngine, image: str, tmp_path: Path, *,
            host_network: bool) -> HostReport:
    host = Host("local", docker_engine.base_url, host_network=host_network)
    runtime = DockerRuntime(host)
    try:
        return diagnose_host(host, runtime, {"llamacpp": image, "vllm": MISSING_IMAGE},
                             [str(tmp_path)])
    finally:
        runtime.close()


def _checks(report: HostReport) -> dict[str, Check]:
    return {c.name: c for c in report.checks}


def test_doctor_reports_what_the_real_engine_has_and_lacks(
        docker_engine: DockerEngine, docker_client: docker.DockerClient,
        llama_server_image: str, tmp_path: Path, leak_guard: LeakGuard) -> None:
    report = _report(docker_engine, llama_server_image, tmp_path, host_network=True)
    checks = _checks(report)
    version = docker_client.version()["Version"]
    assert checks["Docker engine"].status is CheckStatus.OK
    assert f"Docker {version}" in checks["Docker engine"].detail
    images = checks["Engine images"]
    assert images.status is CheckStatus.WARN
    assert f"present: {llama_server_image}" in images.detail
    assert images.fix == f"docker pull {MISSING_IMAGE}"
    gpus = checks["NVIDIA GPUs"]  # no NVIDIA runtime on the test engine: the probe fails
    if gpus.status is CheckStatus.WARN:  # and no driver here either: CPU only, not broken
        assert "the engine cannot hand GPUs to containers: backends run on CPU only" in gpus.detail
    else:
        assert gpus.status is CheckStatus.FAIL
        assert "lacks the NVIDIA container runtime" in gpus.detail
    assert "nvidia-container-toolkit" in gpus.fix
    assert checks["Free disk for images"].status in (CheckStatus.OK, CheckStatus.WARN)
    assert "GiB free for images" in checks["Free disk for images"].detail
    assert f"free for models at {tmp_path}" in checks["Free disk for models"].detail
    assert checks["Ports"].status is CheckStatus.OK
    assert "host networking" in checks["Ports"].detail
    assert not docker_client.containers.list(all=True, filters={"label": "rigdeck.probe"})


def test_doctor_says_a_bridgeless_engine_needs_host_networking(
        docker_engine: DockerEngine, docker_client: docker.DockerClient,
        llama_server_image: str, tmp_path: Path, leak_guard: LeakGuard) -> None:
    ports = _checks(_report(docker_engine, llama_server_image, tmp_path,
                            host_network=False))["Ports"]
    if docker_client.networks.list(names=["bridge"]):
        assert ports.status is CheckStatus.OK
        assert "127.0.0.1" in ports.detail
    else:
        assert ports.status is CheckStatus.FAIL
        assert "no bridge network" in ports.detail
        assert "host networking" in ports.fix


def test_rigdeck_doctor_exits_non_zero_only_for_a_failed_check(
        docker_engine: DockerEngine, docker_client: docker.DockerClient,
        llama_server_image: str, tmp_path: Path, leak_guard: LeakGuard) -> None:
    home = tmp_path / "home"
    write_home(home, llama_server_image)
    done = rigdeck(cli_env(home, docker_engine.base_url), "doctor", "--host", "local", "--json")
    report = json.loads(done.stdout)["hosts"][0]
    failed = [c for c in report["checks"] if c["status"] == "fail"]
    assert report["host"] == "local"
    assert report["ok"] is not failed
    assert done.returncode == (1 if failed else 0)
    for check in failed:
        assert f"local: {check['name']} failed" in done.stderr
    checks = {c["name"]: c["status"] for c in report["checks"]}
    assert checks["Docker engine"] == "ok"
    assert checks["Ports"] == "ok"  # the settings turn host networking on


def test_doctor_probes_a_remote_engine_over_ssh(
        remote_host: RemoteHost, tmp_path: Path, leak_guard: LeakGuard) -> None:
    host = Host("remote", remote_host.url, host_network=True)
    runtime = DockerRuntime(host)
    try:
        report = diagnose_host(host, runtime, {"llamacpp": remote_host.image}, [str(tmp_path)])
    finally:
        runtime.close()
    checks = _checks(report)
    assert checks["Docker engine"].status is CheckStatus.OK
    assert checks["Engine images"].detail == f"present: {remote_host.image}"
    assert checks["Free disk"].status is CheckStatus.SKIP
    assert checks["Ports"].status is CheckStatus.OK
    gpus = checks["NVIDIA GPUs"]  # a remote host is there for its GPUs: failing them fails
    assert "remote: the host lacks the NVIDIA container runtime" in gpus.detail
    assert report.failed == (gpus,)
    assert report.gpus == ()
    assert not remote_host.client.containers.list(all=True, filters={"label": "rigdeck.probe"})
