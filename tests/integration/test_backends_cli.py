"""`rigdeck up/ps/logs/down` as separate processes against the real engine and server:
two backends, a Rigdeck killed mid-start and started again, one stopped, none left."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import docker
import pytest

from app.runtime.backend import BackendState
from app.runtime.hosts import Host
from tests.integration.backends_support import (
    REPO,
    chat,
    cli_env,
    label_args,
    make_service,
    rigdeck,
    write_home,
)
from tests.realparts.docker_engine import DockerEngine
from tests.realparts.fixtures import TinyGgufFactory
from tests.realparts.leak_guard import NODE_LABEL, LeakGuard

STARTED_WAIT_S = 120.0


def _ps(env: dict[str, str]) -> dict[str, dict[str, object]]:
    done = rigdeck(env, "ps", "--json")
    assert done.returncode == 0, done.stderr
    return {b["name"]: b for b in json.loads(done.stdout)["backends"]}


@pytest.fixture
def env(tmp_path: Path, docker_engine: DockerEngine, llama_server_image: str) -> dict[str, str]:
    """The environment of a `rigdeck` process using the test engine and image."""
    home = tmp_path / "home"
    write_home(home, llama_server_image)
    return cli_env(home, docker_engine.base_url)


def _chat_each(base_url: str, image: str, run_dir: Path, names: tuple[str, ...]) -> None:
    """Each backend answers a chat with the key a fresh Rigdeck reads back; none without."""
    service = make_service([Host("local", base_url, host_network=True)], image, run_dir)
    try:
        backends = {b.name: b for b in service.refresh()}
        for name in names:
            backend = backends[name]
            assert backend.state is BackendState.READY
            assert chat(backend.base_url, None).status_code == 401
            answer = chat(backend.base_url, backend.api_key)
            assert answer.status_code == 200
            assert answer.json()["choices"][0]["message"]["content"]
    finally:
        service.close()


@pytest.mark.integration
def test_two_backends_reattach_after_a_killed_rigdeck_and_stop_one(
        env: dict[str, str], docker_engine: DockerEngine, docker_client: docker.DockerClient,
        tiny_gguf: TinyGgufFactory, leak_guard: LeakGuard) -> None:
    model = tiny_gguf()
    image = tomllib.loads(Path(env["RIGDECK_HOME"], "config", "settings.toml").read_text())[
        "llamacpp_image"]
    ports = {"alpha": leak_guard.free_port(), "beta": leak_guard.free_port(),
             "gamma": leak_guard.free_port()}
    common = ["--model", str(model), "--ctx", "512", "--threads", "1",
              *label_args(leak_guard.labels)]
    try:
        for name in ("alpha", "beta"):
            done = rigdeck(env, "up", *common, "--name", name, "--port", str(ports[name]))
            assert done.returncode == 0, done.stderr
            assert f"ready: {name} at http://127.0.0.1:{ports[name]}" in done.stdout
        listed = _ps(env)
        assert {n: (b["state"], b["port"]) for n, b in listed.items()} == {
            "alpha": ("ready", ports["alpha"]), "beta": ("ready", ports["beta"])}

        _chat_each(docker_engine.base_url, image, model.parent.parent / "run", ("alpha", "beta"))

        # Rigdeck killed while it waits for gamma: the next `up` re-attaches, no copy.
        upping = subprocess.Popen(
            [sys.executable, "-m", "app", "up", *common, "--name", "gamma", "--port",
             str(ports["gamma"])], env=env, cwd=REPO, stdout=subprocess.PIPE, text=True)
        assert upping.stdout is not None
        first = upping.stdout.readline()
        assert first.startswith("started gamma"), first
        upping.send_signal(signal.SIGKILL)
        upping.wait(STARTED_WAIT_S)
        upping.stdout.close()
        again = rigdeck(env, "up", *common, "--name", "gamma", "--port", str(ports["gamma"]))
        assert again.returncode == 0, again.stderr
        assert "gamma is already running" in again.stdout
        mine = docker_client.containers.list(
            all=True, filters={"label": [f"{NODE_LABEL}={leak_guard.node}",
                                         "rigdeck.name=gamma"]})
        assert len(mine) == 1

        logs = rigdeck(env, "logs", "alpha", "--tail", "50")
        assert logs.returncode == 0
        assert "listening on http://127.0.0.1" in logs.stdout

        # Stop one: the others are untouched and still answer.
        assert rigdeck(env, "down", "alpha").returncode == 0
        deadline = time.monotonic() + STARTED_WAIT_S
        while _ps(env).get("gamma", {}).get("state") != "ready" and time.monotonic() < deadline:
            time.sleep(0.5)
        left = _ps(env)
        assert set(left) == {"beta", "gamma"}
        assert left["beta"]["state"] == "ready"
        assert left["gamma"]["state"] == "ready"
        gone = rigdeck(env, "logs", "alpha")
        assert gone.returncode == 2
        assert "no backend named 'alpha'" in gone.stderr
    finally:
        for name in ("alpha", "beta", "gamma"):
            rigdeck(env, "down", name)
    assert _ps(env) == {}
    assert docker_client.containers.list(
        all=True, filters={"label": f"{NODE_LABEL}={leak_guard.node}"}) == []


@pytest.mark.integration
def test_cli_refuses_a_bad_plan_before_anything_starts(tmp_path: Path, env: dict[str, str],
                                                       tiny_gguf: TinyGgufFactory) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(f'model = "{tiny_gguf()}"\ncontext = 512\nwarp_drive = true\n')
    done = rigdeck(env, "up", str(plan))
    assert done.returncode == 2
    assert "unknown plan setting(s): warp_drive" in done.stderr
    done = rigdeck(env, "up", "--model", str(tiny_gguf()), "--gpus", "0", "--engine", "vllm",
                   "--n-cpu-moe", "2")
    assert done.returncode == 2
    assert "vLLM has no equivalent of n_cpu_moe" in done.stderr
    assert _ps(env) == {}
