"""The fit estimate against a real CPU llama-server's own buffer lines, plan by plan."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.engines.llamacpp_log import BufferReport
from app.fit.llamacpp_estimate import estimate_llamacpp
from app.fit.measure import measure_llama_server
from app.fit.plan import Estimate, FitPlan
from app.library.gguf import read_gguf_header
from tests.realparts.gguf_factory import TinyModelSpec, write_tiny_model

pytestmark = pytest.mark.integration

MEDIAN_GOAL = 0.03
WORST_GOAL = 0.08


@dataclass(frozen=True)
class Case:
    name: str
    model: str  # "gemma" or a key of MODELS
    plan: FitPlan


MODELS = {
    "qwen3": TinyModelSpec(
        arch="qwen3", layers=2, hidden_size=64, heads=4, kv_heads=2, head_dim=16, ffn_size=128
    ),
    "qwen3-wide": TinyModelSpec(
        arch="qwen3",
        layers=3,
        hidden_size=256,
        heads=8,
        kv_heads=2,
        head_dim=64,
        ffn_size=768,
        weight_type="f16",
    ),
    "qwen3moe": TinyModelSpec(
        arch="qwen3moe",
        layers=2,
        hidden_size=128,
        heads=4,
        kv_heads=2,
        head_dim=32,
        experts=16,
        experts_used=4,
        expert_ffn_size=64,
    ),
}


def _p(**kw: object) -> FitPlan:
    base: dict[str, object] = {"device": "cpu", "gpus": (), "ctx": 1024, "parallel": 1}
    base.update(kw)
    return FitPlan(**base)  # type: ignore[arg-type]


CASES = [
    Case("qwen3-fa-on", "qwen3", _p()),
    Case("qwen3-fa-off", "qwen3", _p(flash_attn=False)),
    Case("wide-q8-ub128", "qwen3-wide", _p(cache_type_k="q8_0", cache_type_v="q8_0", ubatch=128)),
    Case("qwen3-np3", "qwen3", _p(parallel=3, ctx=3000)),
    Case("wide-fa-off-2k", "qwen3-wide", _p(ctx=2048, flash_attn=False)),
    Case("wide-q4-k", "qwen3-wide", _p(ctx=2048, cache_type_k="q4_0", cache_type_v="f16")),
    Case(
        "wide-ub256-np2-unified",
        "qwen3-wide",
        _p(ctx=2048, parallel=2, kv_unified=True, ubatch=256),
    ),
    Case("moe-fa-on", "qwen3moe", _p()),
    Case("moe-fa-off", "qwen3moe", _p(flash_attn=False, ctx=2048)),
    Case("moe-experts-1", "qwen3moe", _p(experts=1)),
    Case("moe-experts-16", "qwen3moe", _p(experts=16, ubatch=256)),
    Case("gemma-fa-off", "gemma", _p(ctx=2048, flash_attn=False)),
    Case(
        "gemma-fa-on-q8-np2",
        "gemma",
        _p(ctx=4096, parallel=2, cache_type_k="q8_0", cache_type_v="q8_0", ubatch=256),
    ),
    Case("gemma-8k", "gemma", _p(ctx=8192)),
]


def compare(est: Estimate, rep: BufferReport) -> dict[str, tuple[float, float]]:
    """(estimated, measured) MiB per component and for the total, from a CPU-only run."""
    h = est.host
    model_est = h.weights_mib
    rows = {
        "model": (model_est, rep.total("model")),
        "kv": (h.kv_mib, rep.total("kv")),
        "compute": (h.compute_mib, rep.total("compute")),
        "output": (h.output_mib, rep.total("output")),
    }
    rows["total"] = (sum(e for e, _ in rows.values()), sum(m for _, m in rows.values()))
    return rows


def rel(e: float, m: float) -> float:
    return abs(e - m) / m if m else abs(e)


def model_path(key: str, folder: Path, gemma: Path | None) -> Path:
    if key == "gemma":
        assert gemma is not None
        return gemma
    path = folder / f"{key}.gguf"
    if not path.exists():
        write_tiny_model(path, MODELS[key])
    return path


def run_case(
    binary: Path, case: Case, folder: Path, gemma: Path | None
) -> dict[str, tuple[float, float]]:
    path = model_path(case.model, folder, gemma)
    est = estimate_llamacpp(read_gguf_header(path), case.plan)
    rep = measure_llama_server(binary, path, case.plan)
    return compare(est, rep)


def test_estimate_matches_llama_server_buffers(
    llama_server_binary: Path, gemma_gguf: Path, tmp_path: Path
) -> None:
    totals: list[float] = []
    failures: list[str] = []
    for case in CASES:
        rows = run_case(llama_server_binary, case, tmp_path, gemma_gguf)
        est, meas = rows["total"]
        totals.append(rel(est, meas))
        for comp in ("model", "kv", "output"):
            e, m = rows[comp]
            if abs(e - m) > 0.02:  # weights, KV and logits are sized exactly
                failures.append(f"{case.name}: {comp} estimated {e:.2f} MiB, server {m:.2f} MiB")
        if rel(est, meas) > WORST_GOAL:
            failures.append(f"{case.name}: total estimated {est:.2f} MiB, server {meas:.2f} MiB")
    assert not failures, "\n".join(failures)
    assert statistics.median(totals) <= MEDIAN_GOAL
