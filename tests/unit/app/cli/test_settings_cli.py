"""`rigdeck settings get|set`: typed, checked values; a refused one leaves the file as it was."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from app.cli.main import main
from app.paths import AppPaths
from app.settings import SettingsStore


def _file() -> Path:
    return AppPaths.default().settings_file


def _saved(name: str) -> object:
    return SettingsStore(_file()).get(name)


def test_set_changes_the_file_and_get_reads_it_back(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["settings", "set", "llamacpp_image", "rigdeck-test/llama-server:1"]) == 0
    assert main(["settings", "set", "alert_vram_pct", "80"]) == 0
    assert main(["settings", "set", "local_host_network", "on"]) == 0
    assert main(["settings", "set", "model_folders", "/models/a", "/models/b"]) == 0
    assert _saved("llamacpp_image") == "rigdeck-test/llama-server:1"
    assert _saved("alert_vram_pct") == 80.0
    assert _saved("local_host_network") is True
    assert _saved("model_folders") == ["/models/a", "/models/b"]
    capsys.readouterr()
    assert main(["settings", "get", "llamacpp_image"]) == 0
    out = capsys.readouterr().out
    assert "rigdeck-test/llama-server:1" in out
    assert "Engines → llama.cpp image" in out  # where the Settings page shows it


@pytest.mark.parametrize(("words", "said"), [
    (["theme", "purple"], "'purple' is not a theme; choose system, light, dark"),
    (["alert_vram_pct", "500"], "alert_vram_pct must be between 10 and 100, not 500"),
    (["alert_vram_pct", "lots"], "alert_vram_pct takes a number, not 'lots'"),
    (["local_host_network", "maybe"], "local_host_network takes true or false, not 'maybe'"),
    (["llamacpp_image", "Not An Image"], "'Not An Image' is not a Docker image name"),
    (["llama_server_path", "relative/llama-server"], "is not an absolute path"),
    (["theme", "light", "dark"], "theme takes one value"),
    (["no_such_setting", "1"], "there is no setting 'no_such_setting'; settings: close_to_tray"),
    (["schema_version", "7"], "schema_version is set by Rigdeck itself"),
])
def test_a_bad_value_is_refused_with_exit_2_and_the_file_untouched(
        words: list[str], said: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["settings", "set", "theme", "dark"]) == 0
    before = _file().read_bytes()
    assert main(["settings", "set", *words]) == 2
    assert said in capsys.readouterr().err
    assert _file().read_bytes() == before


def test_llama_server_path_must_be_a_llama_server_that_runs(
        tmp_path: Path, llama_server_binary: Path, capsys: pytest.CaptureFixture[str]) -> None:
    impostor = tmp_path / "llama-server"
    impostor.write_text("#!/bin/sh\necho 'I am something else'\n", encoding="utf-8")
    impostor.chmod(impostor.stat().st_mode | stat.S_IXUSR)
    assert main(["settings", "set", "llama_server_path", str(impostor)]) == 2
    assert f"{impostor} is not llama-server" in capsys.readouterr().err
    assert not _file().exists()
    not_executable = tmp_path / "plain"
    not_executable.write_text("x", encoding="utf-8")
    assert main(["settings", "set", "llama_server_path", str(not_executable)]) == 2
    assert "is not executable" in capsys.readouterr().err

    assert main(["settings", "set", "llama_server_path", str(llama_server_binary)]) == 0
    out = capsys.readouterr().out
    assert "version:" in out  # what the binary itself said
    assert _saved("llama_server_path") == str(llama_server_binary)
    assert os.access(str(_saved("llama_server_path")), os.X_OK)
