"""The `rigdeck` command line: version, help, and errors without tracebacks."""

import subprocess
import sys
from pathlib import Path

import pytest

from app import __version__
from app.cli.main import main
from app.paths import AppPaths


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"rigdeck {__version__}"


def test_version_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert f"rigdeck {__version__}" in capsys.readouterr().out


def test_unknown_command_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_python_dash_m_app_runs_the_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "app", "--version"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert done.stdout.strip() == f"rigdeck {__version__}"


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    listed = capsys.readouterr().out
    for name in ("chat", "down", "fit", "logs", "monitor", "ps", "scan", "show", "up",
                 "version"):
        assert f"    {name} " in listed


def test_one_command_loads_only_its_own_module() -> None:
    """`rigdeck version` (like `rigdeck gui`) must not pay for docker and the rest."""
    probe = ("import sys; from app.cli.main import main; main(['version']); "
             "print(sorted(m for m in sys.modules if m.startswith('app.cli.commands.')"
             " or m == 'docker'))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "['app.cli.commands.version']"


def test_output_into_a_reader_that_stops_says_nothing(app_paths: AppPaths) -> None:
    """`rigdeck chat --export md | true` (a reader gone before the first line, as `head`
    is after its lines): no BrokenPipe traceback, and SIGPIPE's exit code."""
    import os
    from pathlib import Path

    from app.chat.history import HistoryStore

    store = HistoryStore.in_data_folder(app_paths.data)
    chat = store.create_conversation("Long")
    store.add_message(chat.id, "user", "word " * 20_000)
    store.close()
    root = Path(__file__).resolve().parents[4]
    done = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {sys.executable} -m app chat --export md | true"],
        capture_output=True, text=True, timeout=120, cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)})
    assert "Traceback" not in done.stderr
    assert "BrokenPipe" not in done.stderr
    assert done.returncode == 141


def _rigdeck(*args: str) -> subprocess.CompletedProcess[str]:
    from pathlib import Path

    root = Path(__file__).resolve().parents[4]
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True,
                          timeout=120, cwd=root)


def test_up_refuses_a_corrupt_model_with_the_librarys_reason(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-docker.sock'}")
    junk = tmp_path / "broken.gguf"
    junk.write_bytes(b"this is no model at all")
    done = _rigdeck("up", "--model", str(junk), "--host", "processes")
    assert done.returncode == 2
    assert f"{junk} cannot be served: not a GGUF file" in done.stderr
    assert "Traceback" not in done.stderr
    given_bare = _rigdeck("up", str(junk), "--host", "processes")  # no --model: meant as one
    assert given_bare.returncode == 2
    assert f"{junk} cannot be served: not a GGUF file" in given_bare.stderr


def test_up_with_a_binary_file_as_plan_says_it_is_no_plan(tmp_path: Path) -> None:
    binary = tmp_path / "plan.bin"
    binary.write_bytes(bytes(range(200, 256)) * 4)
    done = _rigdeck("up", str(binary))
    assert done.returncode == 2
    assert f"{binary} is not a plan file (a plan is TOML text)" in done.stderr
    assert "Traceback" not in done.stderr


def test_down_with_the_engine_unreachable_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-docker.sock'}")
    done = _rigdeck("down", "qwen3")
    assert done.returncode == 2
    assert "cannot tell whether 'qwen3' runs: cannot reach the Docker engine at unix://" \
        in done.stderr
    assert "no backend named" not in done.stderr


@pytest.mark.parametrize("command", [["ps"], ["ps", "--json"], ["down", "--all"],
                                     ["logs", "qwen3"]])
def test_an_unreachable_engine_is_not_taken_for_an_empty_one(
        command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'bogus.sock'}")
    done = _rigdeck(*command)
    assert done.returncode == 2
    assert "cannot reach the Docker engine at unix://" in done.stderr
    assert "no backends to stop" not in done.stdout
    assert "no backend named" not in done.stderr
    assert "Traceback" not in done.stderr
