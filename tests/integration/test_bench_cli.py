"""`rigdeck bench` as a user types it, against the real llama-server as local processes
(llama-perplexity beside it): the table, the JSON, the export, the kept run; and a matrix
that cannot be read is a clear message and exit 2, before anything starts."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.integration.backends_support import rigdeck
from tests.realparts.fixtures import TinyGgufFactory
from tests.realparts.leak_guard import LeakGuard

pytestmark = pytest.mark.integration


def _env(home: Path, binary: Path) -> dict[str, str]:
    import os

    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "settings.toml").write_text(f'llama_server_path = "{binary}"\n',
                                                   encoding="utf-8")
    return {**os.environ, "RIGDECK_HOME": str(home), "PYTHONPATH": str(Path.cwd())}


def test_rigdeck_bench_prints_the_table_keeps_the_run_and_exports_it(
        llama_server_binary: Path, tiny_gguf: TinyGgufFactory, tmp_path: Path,
        leak_guard: LeakGuard) -> None:
    model = tiny_gguf(arch="qwen3moe", layers=2, experts=8, experts_used=2)
    env = _env(tmp_path / "home", llama_server_binary)
    quick = ["--host", "processes", "--reps", "2", "--prompt-tokens", "48",
             "--answer-tokens", "8", "--chunks", "2", "--threads", "2", "--ctx", "1024"]

    done = rigdeck(env, "bench", str(model), "--vary", "experts=2,8", *quick,
                   "--export", str(tmp_path / "run.csv"))

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("bench run #1: ")
    assert "(done)" in lines[0]
    assert lines[1].split()[:3] == ["variant", "prompt", "tok/s"]
    assert [line.split()[0] for line in lines[2:4]] == ["experts=2", "experts=8"]
    assert "[variant 2] perplexity" in done.stderr  # progress goes to stderr
    text = (tmp_path / "run.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    assert [r["variant"] for r in rows] == ["experts=2", "experts=8"]
    assert all(float(r["decode_tps"]) > 0 for r in rows)
    assert all(float(r["perplexity"]) > 50 for r in rows), [r["error"] for r in rows]

    shown = rigdeck(env, "bench", "--show", "1", "--json")
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    assert [v["label"] for v in document["variants"]] == ["experts=2", "experts=8"]
    assert document["host"] == "processes"
    assert document["machine"]["cores"] >= 1
    listed = rigdeck(env, "bench", "--list")
    assert listed.stdout.startswith("#1  done")


@pytest.mark.parametrize(("args", "said"), [
    (["--vary", "speed=1,2"], "unknown key"),
    (["--vary", "experts=two"], "not a whole number"),
    (["--text", "/no/such.txt"], "--text /no/such.txt: no such file"),
])
def test_a_bench_that_cannot_run_is_a_clear_message_and_exit_2(
        llama_server_binary: Path, tiny_gguf: TinyGgufFactory, tmp_path: Path,
        args: list[str], said: str) -> None:
    env = _env(tmp_path / "home", llama_server_binary)
    done = rigdeck(env, "bench", str(tiny_gguf()), "--host", "processes", *args)

    assert done.returncode == 2
    assert said in done.stderr
    assert "Traceback" not in done.stderr
