"""The planner on the real reference headers: largest context, and advice that is true."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from app.fit.llamacpp_estimate import estimate_llamacpp
from app.fit.plan import FitPlan
from app.fit.planner import max_context, plan_fit
from app.library.gguf import GgufHeader, read_gguf_header
from tests.unit.app.fit.reference import need, shared_data

MARGIN = 512.0


def _header(name: str) -> GgufHeader:
    return read_gguf_header(need(shared_data() / "gguf-headers" / f"{name}.header.gguf"))


def _peak(header: GgufHeader, plan: FitPlan) -> float:
    return max(d.total_mib for d in estimate_llamacpp(header, plan).devices)


def _apply(change: str, plan: FitPlan) -> FitPlan:
    """The plan with an advised change made, read from the flags the advice names."""
    if m := re.search(r"--n-cpu-moe (\d+)", change):
        return replace(plan, n_cpu_moe=int(m.group(1)))
    if m := re.search(r"-np (\d+)", change):
        return replace(plan, parallel=int(m.group(1)))
    if m := re.search(r"-ub (\d+)", change):
        return replace(plan, ubatch=int(m.group(1)), batch=min(plan.batch, 2048))
    if m := re.search(r"-ctk (\S+) -ctv (\S+?),? ", change):
        return replace(plan, flash_attn=True, cache_type_k=m.group(1), cache_type_v=m.group(2))
    if "-fa on" in change:
        return replace(plan, flash_attn=True)
    raise AssertionError(f"advice names no flag this test knows: {change!r}")


@pytest.mark.parametrize("model", ["moe30", "dense8"])
def test_the_largest_context_grows_with_capacity(model: str) -> None:
    header = _header(model)
    plan = FitPlan(ctx=4096, gpus=(0,))
    found = [
        max_context(header, plan, [cap], MARGIN, 1 << 20)
        for cap in (4096.0, 8192.0, 12288.0, 16384.0, 24576.0, 49152.0)
    ]
    assert found == sorted(found)
    assert found[-1] > found[1] > 0


def test_the_largest_context_fits_and_one_step_more_does_not() -> None:
    header = _header("moe30")
    # 4096 tokens take about 6,040 MiB: a 7,000 MiB card leaves room for some more
    plan = FitPlan(ctx=4096, gpus=(0,), gpu_memory_mib=(7000,))
    res = plan_fit(header, plan, [7000.0], MARGIN)
    assert res.fits
    assert 4096 < res.max_ctx < 4 * 40960  # below the search limit: the card decided it
    assert res.max_ctx % 256 == 0
    assert _peak(header, replace(plan, ctx=res.max_ctx)) <= 7000.0 - MARGIN
    assert _peak(header, replace(plan, ctx=res.max_ctx + 256)) > 7000.0 - MARGIN


def test_every_advice_saves_what_it_says_when_the_change_is_made() -> None:
    header = _header("moe30")
    # a plan with room for every kind of advice: no flash attention, f16 cache, 4 slots
    # (about 6,730 MiB, over a 6,656 MiB card less the margin)
    plan = FitPlan(ctx=32768, parallel=4, flash_attn=False, gpus=(0,), gpu_memory_mib=(6656,))
    capacity = 6656.0
    res = plan_fit(header, plan, [capacity], MARGIN)
    assert not res.fits
    assert len(res.advice) >= 4
    base = _peak(header, plan)
    for advice in res.advice:
        changed = _peak(header, _apply(advice.change, plan))
        assert advice.saves_mib > 0, advice
        assert base - changed == pytest.approx(advice.saves_mib), advice
        assert advice.fits == (changed <= capacity - MARGIN), advice
    assert any(a.fits for a in res.advice)
    # what fits first, then the biggest saving
    assert [a.fits for a in res.advice] == sorted((a.fits for a in res.advice), reverse=True)


def test_a_cpu_plan_fits_with_no_gpu_advice() -> None:
    header = _header("dense8")
    res = plan_fit(header, FitPlan(ctx=4096, device="cpu", gpus=()), [], MARGIN)
    assert res.fits
    assert res.max_ctx == 0
    assert res.advice == []
    assert res.estimate.devices == []
    assert res.estimate.host.weights_mib > 0


def test_smaller_quantisations_are_advised_by_file_name(tmp_path: Path) -> None:
    moe = need(shared_data() / "gguf-headers" / "moe30.header.gguf")
    dense = need(shared_data() / "gguf-headers" / "dense8.header.gguf")
    # the planner compares whole files: the smaller "quantisation" here is the 8B-shaped one
    header = read_gguf_header(moe)
    plan = FitPlan(ctx=4096, gpus=(0,))
    res = plan_fit(header, plan, [81559.0], MARGIN, smaller_quants=[dense, tmp_path / "gone.gguf"])
    named = [a for a in res.advice if a.change == f"a smaller quantisation: {dense.name}"]
    assert len(named) == 1
    smaller = _peak(read_gguf_header(dense), plan)
    assert named[0].saves_mib == pytest.approx(_peak(header, plan) - smaller)
    assert not any("gone.gguf" in a.change for a in res.advice)  # unreadable: no advice
