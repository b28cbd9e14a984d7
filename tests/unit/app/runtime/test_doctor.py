"""`rigdeck doctor` where no Docker engine answers and for local processes: each check says
what is missing and how to fix it; a failed check is a non-zero exit with the reason on
stderr. (Checks against a real engine: tests/integration/test_backends_doctor.py.)"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from app.cli.main import main
from app.paths import AppPaths
from app.runtime.docker_runtime import DockerRuntime
from app.runtime.doctor import CheckStatus, diagnose_host
from app.runtime.host_gpus import parse_nvidia_smi
from app.runtime.hosts import Host, processes_host
from app.runtime.process_runtime import ProcessRuntime


def _settings(paths: AppPaths, text: str) -> None:
    paths.config.mkdir(parents=True, exist_ok=True)
    paths.settings_file.write_text(text, encoding="utf-8")


@pytest.fixture
def no_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """DOCKER_HOST pointing at a socket nobody serves."""
    url = f"unix://{tmp_path / 'no-docker.sock'}"
    monkeypatch.setenv("DOCKER_HOST", url)
    return url


def test_an_engine_that_does_not_answer_fails_and_the_rest_is_not_checked(no_engine: str) -> None:
    host = Host("local", no_engine)
    report = diagnose_host(host, DockerRuntime(host), {"llamacpp": "some/image"}, [])
    engine, *rest = report.checks
    assert engine.status is CheckStatus.FAIL
    assert "cannot reach the Docker engine at" in engine.detail
    assert "is Docker running there" in engine.detail
    assert engine.fix
    assert {c.status for c in rest} == {CheckStatus.SKIP}
    assert report.failed == (engine,)


def test_cli_exits_non_zero_with_the_failure_on_stderr(
        no_engine: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor"]) == 1
    captured = capsys.readouterr()
    assert "[FAIL] Docker engine" in captured.out
    assert "local: Docker engine failed" in captured.err
    assert "fix: start Docker" in captured.err


def test_cli_json_says_which_host_is_not_ok(
        no_engine: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--json"]) == 1
    hosts = {h["host"]: h for h in json.loads(capsys.readouterr().out)["hosts"]}
    assert hosts["local"]["ok"] is False
    assert hosts["local"]["checks"][0] == {
        "name": "Docker engine", "status": "fail",
        "detail": hosts["local"]["checks"][0]["detail"],
        "fix": "start Docker here (sudo systemctl start docker), or point DOCKER_HOST at "
               "a running engine before starting Rigdeck"}
    assert hosts["processes"]["ok"] is True  # a missing llama-server is only a warning


def test_cli_refuses_an_unknown_host(no_engine: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--host", "gpu-server"]) == 2
    assert "unknown host 'gpu-server'" in capsys.readouterr().err


def test_local_processes_without_llama_server_warn_with_the_fix(
        tmp_path: Path, app_paths: AppPaths, no_engine: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    _settings(app_paths, f'llama_server_path = "{tmp_path / "missing" / "llama-server"}"\n')
    assert main(["doctor", "--host", "processes"]) == 0
    out = capsys.readouterr().out
    assert "[WARN] llama-server: no llama-server found" in out
    assert "fix: install llama.cpp and put llama-server on PATH" in out


def test_local_processes_with_llama_server_are_ok(tmp_path: Path) -> None:
    binary = sys.executable  # any existing executable stands for the configured server
    runtime = ProcessRuntime(processes_host(), tmp_path / "run", binary)
    report = diagnose_host(processes_host(), runtime, {}, [])
    assert [(c.name, c.status) for c in report.checks] == [
        ("llama-server", CheckStatus.OK), ("Ports", CheckStatus.OK)]
    assert binary in report.checks[0].detail
    assert "127.0.0.1" in report.checks[1].detail


def test_nvidia_smi_probe_output_lists_gpus_with_free_memory() -> None:
    output = ("0, GPU-5c0b2f3e-8a1d-4c6e-9f7a-1b2c3d4e5f60, NVIDIA H100 80GB HBM3, 81559, 80910\n"
              "1, GPU-00000000-0000-0000-0000-000000000001, NVIDIA RTX A6000, 49140, [N/A]\n"
              "WARNING: infoROM is corrupted at gpu 0000:41:00.0\n")
    gpus = parse_nvidia_smi(output)
    assert [(g.index, g.name, g.total_mib, g.free_mib) for g in gpus] == [
        ("0", "NVIDIA H100 80GB HBM3", 81559.0, 80910.0),
        ("1", "NVIDIA RTX A6000", 49140.0, None)]
    assert gpus[0].uuid == "GPU-5c0b2f3e-8a1d-4c6e-9f7a-1b2c3d4e5f60"
