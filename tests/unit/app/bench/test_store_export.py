"""Bench runs kept in SQLite and written as CSV and JSON: what was measured comes back
whole after a restart, a run cut off by a crash reads as cancelled, two runs compare."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from app.bench.export import compare_table, export, format_table, table
from app.bench.results import BenchRun, BenchSettings, VariantResult
from app.bench.store import BenchStore
from app.errors import UserError


def _run(decode: tuple[float, float], ppl: float | None = 8.5) -> BenchRun:
    first = VariantResult(0, "experts=2", {"experts": "2"}, plan_json='{"experts":2}',
                          state="done", prompt_tps=[410.0, 400.0, 420.0],
                          decode_tps=[decode[0], decode[0] + 2, decode[0] - 2],
                          ttft_ms=[120.0, 118.0, 125.0], prompt_tokens=512, answer_tokens=128,
                          speed_source="server",
                          buffers={"model:CUDA0": 17000.0, "kv:CUDA0": 3072.0,
                                   "model:CPU_Mapped": 300.0},
                          estimate_mib=20500.0, measured_mib=20372.0, host_rss_mib=900.0,
                          perplexity=ppl, perplexity_pm=0.3, perplexity_chunks=4,
                          perplexity_context=128)
    second = VariantResult(1, "experts=8", {"experts": "8"}, state="failed",
                           error="out of memory", decode_tps=[decode[1]])
    return BenchRun(id=0, created=1.0, model="/m/qwen.gguf", host="local",
                    base_plan_json='{"model":"/m/qwen.gguf"}', settings=BenchSettings(),
                    variants=[first, second], machine={"host": "rig", "cores": 16})


def test_a_run_comes_back_whole_after_the_store_is_opened_again(tmp_path: Path) -> None:
    path = tmp_path / "bench.sqlite3"
    store = BenchStore(path)
    run = store.create(_run((60.0, 80.0)))
    run.state = "done"
    store.finish(run)
    store.close()

    again = BenchStore(path)
    kept = again.get(run.id)
    assert kept.state == "done"
    assert kept.machine == {"host": "rig", "cores": 16}
    assert kept.variants == run.variants
    assert kept.variants[0].decode is not None
    assert kept.variants[0].decode.median == 60.0
    assert [(r.id, r.variants) for r in again.runs()] == [(run.id, 2)]
    with pytest.raises(UserError, match="no bench run #99"):
        again.get(99)


def test_a_run_cut_off_by_a_crash_reads_as_cancelled(tmp_path: Path) -> None:
    path = tmp_path / "bench.sqlite3"
    BenchStore(path).create(_run((60.0, 80.0)))  # never finished: the process died

    assert BenchStore(path).runs()[0].state == "cancelled"


def test_the_table_shows_medians_spread_and_failures() -> None:
    headers, rows = table(_run((60.0, 80.0)))

    assert headers[:5] == ["variant", "prompt tok/s", "decode tok/s", "TTFT ms", "perplexity"]
    assert rows[0][:5] == ["experts=2", "410.0 ±10.0", "60.0 ±2.0", "120 ±4", "8.50 ±0.30"]
    assert "CUDA0 20,072" in rows[0][5]
    assert rows[1][-1] == "failed: out of memory"
    assert format_table(headers, rows).splitlines()[0].startswith("variant ")


def test_csv_and_json_hold_every_number(tmp_path: Path) -> None:
    run = _run((60.0, 80.0))
    export(run, tmp_path / "run.csv")
    export(run, tmp_path / "run.json")

    rows = list(csv.DictReader(io.StringIO((tmp_path / "run.csv").read_text("utf-8"))))
    assert rows[0]["decode_tps"] == "60.0"
    assert rows[0]["perplexity"] == "8.5"
    assert rows[0]["buffer:kv:CUDA0"] == "3072.0"
    assert rows[1]["buffer:kv:CUDA0"] == ""
    document = json.loads((tmp_path / "run.json").read_text("utf-8"))
    assert document["variants"][0]["decode_tps"] == [60.0, 62.0, 58.0]
    assert document["variants"][0]["devices_mib"]["CUDA0"] == 20072.0
    with pytest.raises(UserError, match="choose csv or json"):
        export(run, tmp_path / "run.xlsx")
    with pytest.raises(UserError, match="cannot save the bench run"):
        export(run, tmp_path / "missing" / "run.csv")


def test_two_runs_side_by_side() -> None:
    a, b = _run((60.0, 80.0)), _run((66.0, 80.0), ppl=None)
    a.id, b.id = 1, 2

    headers, rows = compare_table(a, b)

    assert headers[:4] == ["variant", "decode #1", "decode #2", "Δ decode"]
    assert rows[0][:4] == ["experts=2", "60.0", "66.0", "+10.0%"]
    assert rows[0][6:] == ["8.50", "-"]
