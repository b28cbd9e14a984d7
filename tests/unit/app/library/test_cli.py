"""`rigdeck scan` and `rigdeck show` as a user runs them."""

import json
import subprocess
import sys
from pathlib import Path

import gguf
import pytest

from app.cli.main import main
from app.library.entries import ADAPTER_JSON_KEYS, JSON_KEYS
from app.settings import SettingsStore
from tests.realparts.gguf_factory import TinyModelSpec, write_tiny_model
from tests.unit.app.library.builders import Shape, write_gguf, write_peft


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no real HF cache / Ollama / LM Studio
    for name in ("HF_HOME", "HF_HUB_CACHE", "OLLAMA_MODELS", "LMSTUDIO_MODELS", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "models"
    write_gguf(root / "tiny.gguf")
    write_peft(root / "role")
    (root / "broken.gguf").write_bytes(b"GGUF\x03\x00\x00\x00")
    return root


def test_scan_json_lists_good_and_bad_files(
    models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["scan", str(models), "--json"])

    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [(e["path"], e["kind"], e["format"]) for e in out] == [
        (str(models / "broken.gguf"), "model", "gguf"),
        (str(models / "role"), "adapter", "peft"),
        (str(models / "tiny.gguf"), "model", "gguf"),
    ]
    for entry in out:
        assert set(JSON_KEYS) <= set(entry)
    assert (
        out[0]["error"] == "truncated: tensor count at offset 8 needs 8 bytes, the file ends at 8"
    )
    assert out[2]["error"] is None
    assert (out[2]["architecture"], out[2]["layers"], out[2]["hidden_size"]) == ("qwen3", 2, 64)
    assert out[2]["chat_template"] is True
    assert out[2]["thinking_switch"] is True
    assert set(ADAPTER_JSON_KEYS) <= set(out[1])
    assert out[1]["rank"] == 8


def test_scan_table(models: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["scan", str(models)])

    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert lines[0].split() == [
        "NAME",
        "KIND",
        "FORMAT",
        "SOURCE",
        "ARCH",
        "PARAMS",
        "EXPERTS",
        "QUANT",
        "CONTEXT",
        "SIZE",
        "STATUS",
    ]
    assert any(line.startswith("tiny-qwen3") and line.endswith("ok") for line in lines)
    assert any(line.startswith("broken.gguf") and "error: truncated" in line for line in lines)


def test_scan_without_paths_uses_the_settings(
    models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.paths import AppPaths

    store = SettingsStore(AppPaths.default().settings_file)
    store.set("model_folders", [str(models)])

    code = main(["scan", "--json"])

    assert code == 0
    assert len(json.loads(capsys.readouterr().out)) == 3


def test_scan_of_an_empty_library(
    tmp_path: Path, models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["scan", str(tmp_path / "empty")]) == 0
    assert capsys.readouterr().out.strip() == "No models or adapters found."


def test_scan_reports_folder_problems_on_stderr(
    models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (models / "loop").symlink_to(models)

    assert main(["scan", str(models), "--json"]) == 0

    captured = capsys.readouterr()
    assert len(json.loads(captured.out)) == 3
    assert "rigdeck: warning:" in captured.err
    assert "symlink loop" in captured.err


def test_missing_path_is_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in (["scan"], ["show"]):
        code = main([*command, str(tmp_path / "nope")])
        assert code == 2
        assert (
            capsys.readouterr().err.strip()
            == f"rigdeck: {tmp_path / 'nope'}: no such file or folder"
        )


def test_missing_path_has_no_traceback_in_a_real_process(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app", "scan", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "no such file or folder" in result.stderr


def test_show_model(models: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["show", str(models / "tiny.gguf")])

    out = capsys.readouterr().out
    assert code == 0
    rows = dict(line.split(None, 1) for line in out.splitlines() if not line.startswith(" "))
    assert "Architecture" in out
    assert "qwen3" in out
    assert "Thinking switch  yes" in out
    assert rows["Layers"] == "2"


def test_show_json_and_a_bad_file(models: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", str(models / "tiny.gguf"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["kind"] == "model"
    assert data["vocab_size"] == 256

    assert main(["show", str(models / "broken.gguf"), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["error"].startswith("truncated")


def test_show_compat(models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wide = write_gguf(tmp_path / "wide.gguf", Shape(hidden=128))

    assert (
        main(["show", str(models / "role"), "--compat", str(models / "tiny.gguf"), "--json"]) == 0
    )
    assert json.loads(capsys.readouterr().out)["compat"]["fits"] is True

    assert main(["show", str(models / "role"), "--compat", str(wide)]) == 0
    out = capsys.readouterr().out
    assert f"does not fit {wide}: hidden size 64 ≠ 128" in out


def test_show_compat_needs_an_adapter(models: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["show", str(models / "tiny.gguf"), "--compat", str(models / "tiny.gguf")])

    assert code == 2
    assert "--compat needs an adapter, this is a model" in capsys.readouterr().err


def _expected_params(path: Path) -> tuple[int, int, int]:
    """(total, active, experts) from the file's own tensor shapes, read with the gguf
    package: a token passes through every tensor but only `experts_used` of the experts'
    slices of each `*_exps` tensor (their last dimension is the expert)."""
    reader = gguf.GGUFReader(path)
    total = sum(int(t.n_elements) for t in reader.tensors)
    expert_tensors = [t for t in reader.tensors if "_exps." in t.name]
    experts = {int(t.shape[-1]) for t in expert_tensors}
    if not experts:
        return total, total, 0
    (count,) = experts
    used = int(reader.fields["qwen3moe.expert_used_count"].contents())
    in_experts = sum(int(t.n_elements) for t in expert_tensors)
    return total, total - in_experts + in_experts * used // count, count


def _column(lines: list[str], row_start: str, title: str) -> str:
    """The text under `title` in the table row starting with `row_start`."""
    header = lines[0]
    start = header.index(title)
    rest = header[start + len(title):]
    end = len(header) - len(rest.lstrip()) if rest.strip() else None  # the next title
    row = next(line for line in lines if line.startswith(row_start))
    return row[start:end].strip()


def test_scan_shows_experts_and_active_parameters_of_a_moe_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    moe = write_tiny_model(tmp_path / "models" / "moe.gguf",
                           TinyModelSpec(arch="qwen3moe", experts=8, experts_used=2))
    dense = write_tiny_model(tmp_path / "models" / "dense.gguf", TinyModelSpec(arch="qwen3"))
    total, active, experts = _expected_params(moe)
    dense_total, dense_active, dense_experts = _expected_params(dense)
    assert (experts, dense_experts, dense_active) == (8, 0, dense_total)
    assert active < total

    assert main(["scan", str(tmp_path / "models")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert _column(lines, "tiny-qwen3moe", "EXPERTS") == "8 experts, 2 active"
    assert _column(lines, "tiny-qwen3moe", "PARAMS") == (
        f"{total / 1000:.1f}K total, {active / 1000:.1f}K active")
    assert _column(lines, "tiny-qwen3-", "EXPERTS") == "—"
    assert _column(lines, "tiny-qwen3-", "PARAMS") == f"{dense_total / 1000:.1f}K"

    assert main(["scan", "--json", str(tmp_path / "models")]) == 0
    entries = {Path(e["path"]).name: e for e in json.loads(capsys.readouterr().out)}
    keys = ("experts", "experts_used", "params_total", "params_active")
    assert [entries["moe.gguf"][k] for k in keys] == [8, 2, total, active]
    assert [entries["dense.gguf"][k] for k in keys] == [None, None, dense_total, dense_total]
