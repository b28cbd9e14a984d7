"""`rigdeck hosts` against real engines: a second engine over ssh:// added, tested, used
and removed from the command line; bad input refused before hosts.toml is written; an
engine without a bridge refused at once when host networking is off."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.engines.plan import LaunchPlan
from app.errors import UserError
from app.runtime.hosts import NO_BRIDGE, Host
from tests.integration.backends_support import (
    cli_env,
    label_args,
    make_service,
    rigdeck,
    write_home,
)
from tests.realparts.docker_engine import DockerEngine
from tests.realparts.fixtures import TinyGgufFactory
from tests.realparts.leak_guard import LeakGuard
from tests.realparts.remote_host import RemoteHost
from tests.realparts.tls_engine import tls_engine


@pytest.fixture
def env(tmp_path: Path, docker_engine: DockerEngine, llama_server_image: str) -> dict[str, str]:
    home = tmp_path / "home"
    write_home(home, llama_server_image)
    return cli_env(home, docker_engine.base_url)


def _hosts_file(env: dict[str, str]) -> Path:
    return Path(env["RIGDECK_HOME"]) / "config" / "hosts.toml"


@pytest.mark.integration
def test_a_second_host_over_ssh_is_added_tested_used_and_removed(
        env: dict[str, str], remote_host: RemoteHost, tiny_gguf: TinyGgufFactory,
        leak_guard: LeakGuard) -> None:
    added = rigdeck(env, "hosts", "add", "gpu-box", remote_host.url, "--host-network")
    assert "added gpu-box" in added.stdout, added.stderr
    assert "[ok  ] Docker engine: Docker" in added.stdout  # the doctor ran over ssh
    assert "GPUs: none" in added.stdout
    assert "Traceback" not in added.stderr
    listed = rigdeck(env, "hosts", "list")
    assert listed.returncode == 0
    assert any(line.split()[:3] == ["gpu-box", remote_host.url, "host"]
               for line in listed.stdout.splitlines()), listed.stdout

    model = tiny_gguf()
    up = rigdeck(env, "up", "--model", str(model), "--name", "far", "--host", "gpu-box",
                 "--ctx", "512", "--threads", "1", "--port", str(leak_guard.free_port()),
                 *label_args(leak_guard.labels))
    assert up.returncode == 0, up.stderr
    assert [c.name for c in remote_host.client.containers.list()] == ["rigdeck-far"]
    refused = rigdeck(env, "hosts", "remove", "gpu-box")
    assert refused.returncode == 2
    assert "backends run on gpu-box (far): stop them first" in refused.stderr
    assert "gpu-box" in _hosts_file(env).read_text(encoding="utf-8")

    assert rigdeck(env, "down", "far", "--host", "gpu-box").returncode == 0
    removed = rigdeck(env, "hosts", "remove", "gpu-box")
    assert removed.returncode == 0, removed.stderr
    assert "gpu-box" not in rigdeck(env, "hosts", "list").stdout
    assert remote_host.client.containers.list(all=True) == []


@pytest.mark.integration
@pytest.mark.parametrize(("args", "said"), [
    (["web", "http://server:2375"], "a host URL starts with ssh://, tcp:// (TLS) or unix://"),
    (["plain", "tcp://server:2375"], "use TLS (port 2376"),
    (["nohost", "ssh://"], "an ssh URL needs a host"),
    (["bad name", "ssh://me@server"], "'bad name' is not a host name"),
    (["local", "ssh://me@server"], "the host name 'local' is reserved"),
])
def test_a_bad_host_is_refused_and_hosts_toml_stays_as_it_was(
        env: dict[str, str], remote_host: RemoteHost, args: list[str], said: str) -> None:
    assert rigdeck(env, "hosts", "add", "kept", remote_host.url, "--no-test").returncode == 0
    before = _hosts_file(env).read_bytes()
    done = rigdeck(env, "hosts", "add", *args)
    assert done.returncode == 2
    assert said in done.stderr
    assert "Traceback" not in done.stderr
    assert _hosts_file(env).read_bytes() == before


@pytest.mark.integration
def test_an_unreachable_ssh_host_says_why_in_one_line(env: dict[str, str]) -> None:
    done = rigdeck(env, "hosts", "add", "gone", "ssh://nobody@127.0.0.1:1")
    assert done.returncode == 1  # added, but the doctor fails
    line = next(x for x in done.stdout.splitlines() if "Docker engine" in x)
    assert "cannot reach the Docker engine at ssh://nobody@127.0.0.1:1 (host gone): " \
           "ssh: connect to host 127.0.0.1 port 1: Connection refused" in line
    assert "I/O operation on closed file" not in done.stdout + done.stderr


@pytest.mark.integration
def test_an_engine_without_a_bridge_is_refused_at_once_without_host_networking(
        docker_engine: DockerEngine, llama_server_image: str, tiny_gguf: TinyGgufFactory,
        tmp_path: Path, leak_guard: LeakGuard) -> None:
    docker_client = docker_engine.client
    if docker_client.networks.list(names=["bridge"]):
        pytest.fail("the test engine has a bridge network; this test needs one without")
    service = make_service([Host("local", docker_engine.base_url, host_network=False)],
                           llama_server_image, tmp_path / "run")
    plan = LaunchPlan.from_dict({"model": str(tiny_gguf()), "name": "nobridge",
                                 "labels": leak_guard.labels})
    try:
        for _attempt in range(2):  # a retry meets the same reason, not "already running"
            with pytest.raises(UserError) as refused:  # before any container exists
                service.start(plan, "local", wait=True, timeout_s=600)
            assert NO_BRIDGE in str(refused.value)
            assert "rigdeck settings set local_host_network true" in str(refused.value)
            assert service.known() == []
        assert docker_client.containers.list(all=True, filters={"name": "rigdeck-nobridge"}) \
            == []
    finally:
        service.close()


@pytest.mark.integration
def test_a_host_over_tcp_with_tls_is_added_tested_and_refused_without_its_certificates(
        env: dict[str, str], docker_engine: DockerEngine, tmp_path: Path) -> None:
    with tls_engine(docker_engine.base_url, tmp_path / "tls") as engine:
        added = rigdeck(env, "hosts", "add", "tls-box", engine.url, "--host-network",
                        "--cert-path", str(engine.client_certs))
        assert "[ok  ] Docker engine: Docker" in added.stdout, added.stdout + added.stderr
        assert "GPUs: none" in added.stdout

        strange = rigdeck(env, "hosts", "add", "tls-stranger", engine.url,
                          "--cert-path", str(engine.stranger_certs))
        line = next(x for x in strange.stdout.splitlines() if "Docker engine" in x)
        assert f"cannot reach the Docker engine at {engine.url} (host tls-stranger)" in line
        assert "HTTPSConnectionPool" not in strange.stdout

        bare = rigdeck(env, "hosts", "add", "tls-bare", engine.url,
                       "--cert-path", str(tmp_path / "empty"))
        assert "TLS needs ca.pem, cert.pem and key.pem in" in bare.stdout
    assert rigdeck(env, "hosts", "remove", "tls-box").returncode == 0
