"""Exported plans on the real engine: docker compose accepts the compose file (and refuses
it without the API key variable), and the shell launcher's `docker run` starts the real
backend image, which answers /health and only to the key the user supplied. Rigdeck
lists that container read-only: it did not start it."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from app.engines.compose import to_compose
from app.engines.export import exported_backends
from app.engines.plan import LaunchPlan
from app.engines.shell_launcher import to_shell
from app.runtime.hosts import Host
from tests.integration.backends_support import (
    READY_TIMEOUT_S,
    chat,
    cli_env,
    label_args,
    make_service,
    rigdeck,
    write_home,
)
from tests.realparts.docker_engine import DockerEngine
from tests.realparts.fixtures import TinyGgufFactory
from tests.realparts.leak_guard import LeakGuard

pytestmark = pytest.mark.integration

API_KEY = "exported-backend-key"


def _wait_healthy(base_url: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            try:
                if client.get(f"{base_url}/health").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
    pytest.fail(f"{base_url}/health did not answer 200 within {READY_TIMEOUT_S:.0f} s")


def test_docker_compose_accepts_the_exported_file(
        compose_command: list[str], tiny_gguf: TinyGgufFactory, tmp_path: Path) -> None:
    model = tiny_gguf()
    plans = [LaunchPlan(model=str(model), name="chat", gpus=("0", "1"), context=2048),
             LaunchPlan(model=str(model.parent), engine="vllm", name="big", gpus=("2",))]
    compose_file = tmp_path / "docker-compose.yml"
    compose_file.write_text(to_compose(exported_backends(plans, {})), encoding="utf-8")
    base = [*compose_command, "-f", str(compose_file), "config"]
    env = {**os.environ, "CHAT_API_KEY": API_KEY, "BIG_API_KEY": "other"}
    done = subprocess.run(base, env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)["services"]
    assert resolved["chat"]["environment"]["LLAMA_API_KEY"] == API_KEY
    devices = resolved["chat"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "device_ids": ["0", "1"], "capabilities": ["gpu"]}]
    without_key = {k: v for k, v in env.items() if k != "CHAT_API_KEY"}
    refused = subprocess.run(base, env=without_key, capture_output=True, text=True,
                             timeout=120, check=False)
    assert refused.returncode != 0
    assert "set CHAT_API_KEY to the API key of chat" in refused.stdout + refused.stderr


def test_the_launcher_starts_the_real_backend_which_answers_health(
        docker_engine: DockerEngine, llama_server_image: str, tiny_gguf: TinyGgufFactory,
        tmp_path: Path, leak_guard: LeakGuard) -> None:
    port = leak_guard.free_port()
    plan = LaunchPlan(model=str(tiny_gguf()), name="exported", port=port, context=1024,
                      labels=leak_guard.labels)
    launcher = tmp_path / "launch.sh"
    backends = exported_backends([plan], {"llamacpp": llama_server_image}, host_network=True)
    launcher.write_text(to_shell(backends), encoding="utf-8")
    assert API_KEY not in launcher.read_text(encoding="utf-8")
    env = {**os.environ, "DOCKER_HOST": docker_engine.base_url, "EXPORTED_API_KEY": API_KEY}
    done = subprocess.run(["sh", str(launcher)], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    container = docker_engine.client.containers.get("exported")
    try:
        assert done.returncode == 0, done.stderr
        base_url = f"http://127.0.0.1:{port}"
        _wait_healthy(base_url)
        assert chat(base_url, None).status_code == 401
        assert chat(base_url, API_KEY).status_code == 200
        assert API_KEY not in " ".join(container.attrs["Args"])
        mounts = container.attrs["Mounts"]
        assert [m["RW"] for m in mounts] == [False]
        service = make_service([Host("local", docker_engine.base_url, host_network=True)],
                               llama_server_image, tmp_path / "run")
        try:
            assert "exported" not in {b.name for b in service.refresh()}
            assert "exported" in {f.name for f in service.foreign}
        finally:
            service.close()
    finally:
        container.remove(force=True)


def test_rigdeck_export_offers_rigdecks_own_backends_by_name_not_other_containers(
        docker_engine: DockerEngine, llama_server_image: str, tiny_gguf: TinyGgufFactory,
        tmp_path: Path, leak_guard: LeakGuard) -> None:
    home = tmp_path / "home"
    write_home(home, llama_server_image)
    env = cli_env(home, docker_engine.base_url)
    model = tiny_gguf()
    port = leak_guard.free_port()
    other = docker_engine.client.containers.create(
        llama_server_image, name="someone-elses-server", labels=leak_guard.labels,
        command=["--help"])
    try:
        up = rigdeck(env, "up", "--model", str(model), "--name", "mine", "--ctx", "512",
                     "--threads", "1", "--port", str(port),
                     *label_args(leak_guard.labels))
        assert up.returncode == 0, up.stderr

        offered = rigdeck(env, "export")
        assert offered.returncode == 0, offered.stderr
        assert f"mine — {model.name} on local" in offered.stdout.splitlines()
        assert "someone-elses-server" not in offered.stdout
        assert "rigdeck export NAME… -o DIR" in offered.stdout

        foreign = rigdeck(env, "export", "someone-elses-server", "-o", str(tmp_path / "no"))
        assert foreign.returncode == 2
        assert "no backend named 'someone-elses-server' (backends: " in foreign.stderr
        # others sharing the engine may run backends too: those are listed beside mine
        assert "local/mine" in foreign.stderr.split("(backends: ", 1)[1].split(")")[0].split(", ")
        assert not (tmp_path / "no").exists()

        for name, folder in (("mine", tmp_path / "by-name"), ("local/mine", tmp_path / "host")):
            done = rigdeck(env, "export", name, "-o", str(folder))
            assert done.returncode == 0, done.stderr
            assert f"mine: port {port}, API key from $MINE_API_KEY" in done.stdout
            services = yaml.safe_load((folder / "docker-compose.yml").read_text())["services"]
            assert list(services) == ["mine"]
            assert services["mine"]["image"] == llama_server_image
    finally:
        rigdeck(env, "down", "mine")
        other.remove(force=True)
