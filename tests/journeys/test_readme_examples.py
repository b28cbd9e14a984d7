"""The README's command examples, run as written: each `rigdeck …` line of its Roles
section's shell blocks, in order, as separate processes; and its Gateway section — the
shell blocks as bash scripts, `rigdeck serve` between them, then its Python and JavaScript
examples with the official `openai` clients. Only the placeholders a reader replaces are
replaced: the model path (by a tiny MoE model of that name) and the ports (by free ones)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.backends_support import CLI_TIMEOUT_S, REPO, cli_env, write_home
from tests.realparts.docker_engine import DockerEngine
from tests.realparts.fixtures import TinyGgufFactory
from tests.realparts.gguf_factory import TinyModelSpec
from tests.realparts.leak_guard import LeakGuard

README = REPO / "README.md"
PLACEHOLDER_MODEL = "/models/qwen3-30b-a3b.gguf"
PLACEHOLDER_PORT = "8080"


GATEWAY_PORT = "8765"


def section(title: str) -> str:
    """The README's text under `## title`, up to the next section."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else None]


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def readme_commands() -> list[str]:
    """The `rigdeck` commands of the Roles section's bash blocks with a `rigdeck up`."""
    runnable = [b for b in blocks(section("Roles"), "bash") if "rigdeck up " in b]
    commands = []
    for block in runnable:
        for line in block.splitlines():
            code = line.split("  #", 1)[0].strip()
            commands += [part.strip() for part in code.split(";") if part.strip()]
    return commands


@pytest.mark.journey
def test_the_readme_roles_example_runs_as_written(
        tmp_path: Path, *, docker_engine: DockerEngine, docker_client: object,
        llama_server_image: str, tiny_gguf: TinyGgufFactory, leak_guard: LeakGuard) -> None:
    del docker_client  # requested so that the leak guard watches the engine's containers
    commands = readme_commands()
    assert commands[0].startswith("rigdeck up --model")
    assert commands[-1].startswith("rigdeck down")
    model = tiny_gguf(TinyModelSpec(arch="qwen3moe"), filename=Path(PLACEHOLDER_MODEL).name)
    port = str(leak_guard.free_port())
    home = tmp_path / "home"
    write_home(home, llama_server_image)
    env = cli_env(home, docker_engine.base_url)
    work = tmp_path / "work"
    work.mkdir()
    try:
        for command in commands:
            argv = shlex.split(command.replace(PLACEHOLDER_MODEL, str(model))
                               .replace(f":{PLACEHOLDER_PORT}", f":{port}")
                               .replace(f"--port {PLACEHOLDER_PORT}", f"--port {port}"))
            assert argv[0] == "rigdeck"
            done = subprocess.run([sys.executable, "-m", "app", *argv[1:]], env=env,
                                  cwd=work, capture_output=True, text=True,
                                  timeout=CLI_TIMEOUT_S)
            assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
            if argv[1] == "chat":
                assert done.stdout.strip(), command
    finally:
        subprocess.run([sys.executable, "-m", "app", "down", "--all"], env=env, cwd=work,
                       capture_output=True, timeout=CLI_TIMEOUT_S, check=False)
    assert (work / "coach.toml").is_file()


def rigdeck_on_path(folder: Path) -> Path:
    """A folder with a `rigdeck` command in it, as the package installs one."""
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    (bin_dir / "rigdeck").write_text(f'#!/bin/sh\nexec {sys.executable} -m app "$@"\n')
    (bin_dir / "rigdeck").chmod(0o755)
    return bin_dir


def run_client_examples(folder: Path, env: dict[str, str], python_example: str,
                        js_example: str, openai_npm: Path) -> None:
    """The README's Python and JavaScript examples, with the official `openai` clients."""
    script = folder / "example.py"
    script.write_text(python_example, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                          text=True, timeout=CLI_TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    ids, streamed = done.stdout.splitlines()[:2]
    assert "'sports-coach'" in ids
    assert streamed
    (folder / "node_modules").symlink_to(openai_npm)
    (folder / "example.mjs").write_text(js_example, encoding="utf-8")
    done = subprocess.run(["node", "example.mjs"], env=env, cwd=folder,
                          capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()


@pytest.mark.journey
def test_the_readme_gateway_examples_run_as_written(
        tmp_path: Path, *, docker_engine: DockerEngine, docker_client: object,
        llama_server_image: str, tiny_gguf: TinyGgufFactory, leak_guard: LeakGuard,
        openai_npm: Path) -> None:
    del docker_client  # requested so that the leak guard watches the engine's containers
    text = section("Use Rigdeck from n8n, agents and scripts")
    setup, use = blocks(text, "bash")
    (python_example,) = blocks(text, "python")
    (js_example,) = blocks(text, "javascript")
    model = tiny_gguf(TinyModelSpec(arch="qwen3moe"), filename=Path(PLACEHOLDER_MODEL).name)
    port = str(leak_guard.free_port())
    home = tmp_path / "home"
    write_home(home, llama_server_image)
    env = {**cli_env(home, docker_engine.base_url),
           "PATH": f"{rigdeck_on_path(tmp_path)}:/usr/local/bin:/usr/bin:/bin",
           # the keyring: this machine has no Secret Service; `keys create` stores its key
           # in this stand-in, and the Gateway checks keys by their digest on file
           "PYTHON_KEYRING_BACKEND": "tests.realparts.process_keyring.ProcessKeyring"}

    def placed(code: str) -> str:
        return code.replace(PLACEHOLDER_MODEL, str(model)).replace(GATEWAY_PORT, port)

    def bash(script: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
        assert done.returncode == 0, f"{script}\n{done.stdout}\n{done.stderr}"
        return done

    serve: subprocess.Popen[str] | None = None
    try:
        key = bash(placed(setup) + '\necho "key=$RIGDECK_KEY"').stdout.split("key=")[-1].strip()
        assert key.startswith("rdk-")
        env["RIGDECK_KEY"] = key
        serve = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", port],
                                 env=env, cwd=REPO, stdout=subprocess.PIPE, text=True)
        assert serve.stdout is not None
        assert "Gateway serving at" in serve.stdout.readline()
        said = bash(placed(use)).stdout
        assert "sports-coach" in said  # `serve models`
        assert '{"choices"' in said, said  # curl's answer
        answer, _ = json.JSONDecoder().raw_decode(said[said.index('{"choices"'):])
        assert answer["choices"][0]["message"]["content"]
        assert "stops after 900 s idle" in said
        assert "n8n" in said  # requests and usage name the key
        run_client_examples(tmp_path, env, placed(python_example), placed(js_example),
                            openai_npm)
    finally:
        if serve is not None:
            serve.terminate()
            serve.wait(timeout=30)
            if serve.stdout is not None:
                serve.stdout.close()
        subprocess.run([sys.executable, "-m", "app", "down", "--all"], env=env, cwd=tmp_path,
                       capture_output=True, timeout=CLI_TIMEOUT_S, check=False)
