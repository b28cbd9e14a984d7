"""The README's command examples, run as written: each `rigdeck …` line of its shell
blocks that talks to backends, in order, as separate processes. Only the placeholders a
reader replaces are replaced: the model path (by a tiny MoE model of that name) and the
port (by a free one)."""

from __future__ import annotations

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


def readme_commands() -> list[str]:
    """The `rigdeck` commands of the README's bash blocks that start with `rigdeck up`."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    runnable = [b for b in blocks if "rigdeck up " in b]
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
