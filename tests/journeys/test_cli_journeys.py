"""The journeys through the CLI alone, each command a separate process as in a user's
shell: `up`, `ps`, `chat --backend`, `chat --url`, `relaunch --experts`, `roles`, `down`.
No key is ever typed: the backend's own is found by name or by its URL."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.integration.backends_support import cli_env, rigdeck, write_home
from tests.realparts.docker_engine import DockerEngine
from tests.realparts.fixtures import TinyGgufFactory
from tests.realparts.gguf_factory import LORA_TARGETS, TinyModelSpec
from tests.realparts.leak_guard import LeakGuard

pytestmark = pytest.mark.journey


@pytest.fixture
def env(tmp_path: Path, docker_engine: DockerEngine, docker_client: object,
        llama_server_image: str, leak_guard: LeakGuard) -> dict[str, str]:
    """A `rigdeck` process's environment: a fresh home on the test engine and image."""
    del docker_client, leak_guard  # requested so that leftover containers fail the test
    home = tmp_path / "home"
    write_home(home, llama_server_image)
    return cli_env(home, docker_engine.base_url)


def ok(env: dict[str, str], *args: str) -> str:
    done = rigdeck(env, *args)
    assert done.returncode == 0, f"rigdeck {' '.join(args)}: {done.stderr}"
    return done.stdout


def ps(env: dict[str, str]) -> dict[str, dict[str, object]]:
    return {b["name"]: b for b in json.loads(ok(env, "ps", "--json"))["backends"]}


def test_up_chat_by_name_and_url_relaunch_with_experts_down(
        env: dict[str, str], tiny_gguf: TinyGgufFactory) -> None:
    model = tiny_gguf(TinyModelSpec(arch="qwen3moe", experts=8, experts_used=2),
                      filename="moe.gguf")
    try:
        out = ok(env, "up", "--model", str(model), "--ctx", "1024", "--threads", "1")
        assert "ready: moe at http://127.0.0.1:" in out
        url = ps(env)["moe"]["url"]
        assert ps(env)["moe"]["state"] == "ready"

        answer = ok(env, "chat", "--backend", "moe", "--no-think", "--max-tokens", "8",
                    "Hello")
        assert answer.strip()
        # the address alone is enough: Rigdeck knows the key of its own backend
        assert ok(env, "chat", "--url", str(url), "--max-tokens", "8", "Hi").strip()
        listed = {line.split(None, 1)[1]: line.split()[0]
                  for line in ok(env, "chat", "--list").splitlines()}
        assert set(listed) == {"Hello  (2 messages, moe)", "Hi  (2 messages, moe)"}
        first_id = listed["Hello  (2 messages, moe)"]

        relaunched = ok(env, "relaunch", "moe", "--experts", "4")
        assert "ready: moe at" in relaunched
        assert "4 experts per token" in relaunched
        assert ps(env)["moe"]["url"] == url  # same port: the conversation goes on
        logs = ok(env, "logs", "moe", "--tail", "400")
        assert re.search(r"n_expert_used +=  *4\b", logs)  # the engine's own word
        assert ok(env, "chat", "--backend", "moe", "--conversation", first_id,
                  "--max-tokens", "8", "Go on").strip()
        assert f"{first_id.rjust(5)}  Hello  (4 messages, moe)" in ok(env, "chat", "--list")

        wrong = rigdeck(env, "relaunch", "moe", "--experts", "9")
        assert wrong.returncode != 0
        assert "1…8" in wrong.stderr
        unknown = rigdeck(env, "chat", "--backend", "nothing", "Hi")
        assert unknown.returncode != 0
        assert "no running backend or saved endpoint named 'nothing'" in unknown.stderr
    finally:
        rigdeck(env, "down", "moe")
    assert ps(env) == {}


def test_up_with_roles_then_swap_roles_per_request_without_a_restart(
        env: dict[str, str], tiny_gguf: TinyGgufFactory, tmp_path: Path) -> None:
    spec = TinyModelSpec()
    model = tiny_gguf(spec, filename="qwen3.gguf")
    roles = {}
    for name, seed in (("Coach", 11), ("Tutor", 22)):
        adapter = tiny_gguf.lora(spec, rank=8, targets=LORA_TARGETS, seed=seed,
                                 filename=f"{name.lower()}.gguf")
        role_file = tmp_path / f"{name}.toml"
        role_file.write_text(
            f'name = "{name}"\nsystem_prompt = "You are the {name.lower()}."\n'
            f'[sampling]\ntemperature = 0.0\ntop_k = 1\n'
            f'[[adapters]]\npath = "{adapter}"\nscale = 16.0\n', encoding="utf-8")
        ok(env, "roles", "--import", str(role_file))
        roles[name] = role_file
    try:
        out = ok(env, "up", "--model", str(model), "--ctx", "1024", "--threads", "1",
                 "--with-roles")
        assert "roles preloaded: Coach, Tutor" in out
        pid = ps(env)["qwen3"]["ref"]
        listing = {line.split()[0]: line for line in ok(env, "roles", "--backend", "qwen3")
                   .splitlines() if line.strip()}
        assert listing["Coach"].endswith("  ok")
        assert listing["Tutor"].endswith("  ok")
        answers = {name: ok(env, "chat", "--backend", "qwen3", "--role", name, "--no-think",
                            "--max-tokens", "12", "Hello there").strip()
                   for name in roles}
        assert answers["Coach"] != answers["Tutor"]  # each role's adapter is applied
        assert ps(env)["qwen3"]["ref"] == pid  # swapped per request: no restart
    finally:
        rigdeck(env, "down", "qwen3")
    assert ps(env) == {}


def test_an_incompatible_adapter_is_left_out_and_the_backend_starts(
        env: dict[str, str], tiny_gguf: TinyGgufFactory, tmp_path: Path) -> None:
    moe = TinyModelSpec(arch="qwen3moe")
    model = tiny_gguf(moe, filename="moe.gguf")
    fitting = tiny_gguf.lora(moe, filename="expert-moe-lora.gguf", seed=7)
    other = tiny_gguf.lora(TinyModelSpec(arch="qwen3"), filename="writer-qwen3-lora.gguf")
    for name, adapter in (("Expert", fitting), ("Writer", other)):
        role_file = tmp_path / f"{name}.toml"
        role_file.write_text(f'name = "{name}"\n[[adapters]]\npath = "{adapter}"\n',
                             encoding="utf-8")
        ok(env, "roles", "--import", str(role_file))
    try:
        out = ok(env, "up", "--model", str(model), "--ctx", "1024", "--threads", "1",
                 "--with-roles")
        assert "roles preloaded: Expert" in out
        assert ("role 'Writer' left out: incompatible base: adapter for qwen3, model is "
                "qwen3moe") in out
        assert ps(env)["moe"]["state"] == "ready"
        listing = {line.split()[0]: line for line in ok(env, "roles", "--backend", "moe")
                   .splitlines() if line.strip()}
        assert listing["Expert"].endswith("  ok")
        assert "unavailable: incompatible base" in listing["Writer"]
    finally:
        rigdeck(env, "down", "moe")


def test_a_backend_killed_from_outside_says_how_it_died(
        env: dict[str, str], tiny_gguf: TinyGgufFactory, docker_engine: DockerEngine) -> None:
    model = tiny_gguf(filename="victim.gguf")
    try:
        ok(env, "up", "--model", str(model), "--ctx", "1024", "--threads", "1")
        docker_engine.client.containers.get(str(ps(env)["victim"]["ref"])).kill()
        listed = ps(env)["victim"]
        assert listed["state"] == "failed"
        assert "killed (SIGKILL)" in str(listed["reason"])
        table = ok(env, "ps")
        assert "victim: the server was killed (SIGKILL)" in table
    finally:
        rigdeck(env, "down", "victim")
    assert ps(env) == {}
