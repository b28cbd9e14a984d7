"""The planner on the real reference headers: largest context, and advice that is true."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from app.fit.llamacpp_estimate import estimate_llamacpp
from app.fit.plan import FitPlan, HostMemory
from app.fit.planner import fit_verdict, max_context, plan_fit
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
    if m := re.search(r"-ngl (\d+)", change):
        return replace(plan, gpu_layers=int(m.group(1)))
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


def _fits(header: GgufHeader, plan: FitPlan, capacity: float, host: HostMemory | None) -> bool:
    return fit_verdict(estimate_llamacpp(header, plan), [capacity], MARGIN, host).fits


def test_a_host_without_the_ram_makes_the_plan_not_fit_and_names_the_host() -> None:
    header = _header("moe30")
    # every expert in RAM: the GPU holds little, the host the experts (about 6 GB)
    plan = FitPlan(ctx=32768, n_cpu_moe=4, gpus=(0,), gpu_memory_mib=(24576,))
    est = estimate_llamacpp(header, plan)
    need_mib = est.host.total_mib
    host = HostMemory(total_mib=4096.0, available_mib=3000.0)
    res = plan_fit(header, plan, [24576.0], MARGIN, host=host)
    assert not res.fits
    assert res.verdict is not None
    assert res.verdict.gpus_fit
    assert not res.verdict.host_fits
    assert res.verdict.headline(MARGIN) == (
        f"Does not fit: the host needs {need_mib:,.0f} MiB of 4,096 MiB RAM, "
        "3,000 MiB available now"
    )
    need = res.verdict.host
    assert need is not None
    assert need.total_mib == pytest.approx(need_mib)
    assert need.mapped_mib == pytest.approx(est.host.buffers["model:CPU_Mapped"])
    disk = need.mapped_mib - (3000.0 - (need_mib - need.mapped_mib))
    assert need.from_disk_mib == pytest.approx(disk)
    assert f"{disk:,.0f} MiB of the mapped weights do not fit in RAM: they will be read from " \
           "disk at every token" in need.lines()
    # the same plan on a host with the room fits, and says what the host holds
    roomy = plan_fit(header, plan, [24576.0], MARGIN, host=HostMemory(65536.0, 60000.0))
    assert roomy.fits
    assert roomy.verdict is not None
    assert roomy.verdict.host is not None
    assert roomy.verdict.host.from_disk_mib == 0


def test_the_advice_solves_a_host_over_budget_with_fewer_experts_in_ram() -> None:
    header = _header("moe30")
    plan = FitPlan(ctx=32768, n_cpu_moe=4, gpus=(0,), gpu_memory_mib=(24576,))
    host = HostMemory(4096.0, 3000.0)
    res = plan_fit(header, plan, [24576.0], MARGIN, host=host)
    moe = [a for a in res.advice if "--n-cpu-moe" in a.change]
    assert len(moe) == 1
    advice = moe[0]
    assert advice.fits
    assert advice.then_fits
    changed = _apply(advice.change, plan)
    assert _fits(header, changed, 24576.0, host)
    assert advice.text().endswith(" — then fits")
    before, after = estimate_llamacpp(header, plan), estimate_llamacpp(header, changed)
    assert dict(advice.effects) == pytest.approx({
        "GPU 0 (CUDA0)": after.devices[0].total_mib - before.devices[0].total_mib,
        "host": after.host.total_mib - before.host.total_mib,
    })


def test_the_smallest_n_cpu_moe_that_fits_is_advised() -> None:
    header = _header("moe30")
    plan = FitPlan(ctx=32768, gpus=(0,))
    all_in_ram = _peak(header, replace(plan, n_cpu_moe=4))
    capacity = all_in_ram + MARGIN + 1  # room only with experts in RAM
    res = plan_fit(header, plan, [capacity], MARGIN)
    assert not res.fits
    moe = [a for a in res.advice if "--n-cpu-moe" in a.change]
    assert len(moe) == 1
    assert moe[0].fits
    assert moe[0].then_fits
    n = _apply(moe[0].change, plan).n_cpu_moe
    assert _fits(header, replace(plan, n_cpu_moe=n), capacity, None)
    assert not _fits(header, replace(plan, n_cpu_moe=n - 1), capacity, None)


def test_the_most_gpu_layers_that_fit_are_advised_for_a_dense_model() -> None:
    header = _header("dense8")
    plan = FitPlan(ctx=4096, gpus=(0,), gpu_memory_mib=(3072,))
    res = plan_fit(header, plan, [3072.0], MARGIN)
    assert not res.fits
    ngl = [a for a in res.advice if "-ngl" in a.change]
    assert len(ngl) == 1
    assert ngl[0].then_fits
    k = _apply(ngl[0].change, plan).gpu_layers
    assert k is not None
    assert _fits(header, replace(plan, gpu_layers=k), 3072.0, None)
    assert not _fits(header, replace(plan, gpu_layers=k + 1), 3072.0, None)
    assert ngl[0].effects[-1][0] == "host"
    assert ngl[0].effects[-1][1] > 0


def test_nothing_then_fits_when_the_plan_fits_already() -> None:
    header = _header("moe30")
    plan = FitPlan(ctx=32768, parallel=4, flash_attn=False, gpus=(0,), gpu_memory_mib=(98304,))
    res = plan_fit(header, plan, [98304.0], MARGIN, host=HostMemory(65536.0, 60000.0))
    assert res.fits
    assert res.advice  # what saves memory is still said
    assert not any(a.then_fits or "then fits" in a.text() for a in res.advice)


def test_the_largest_context_is_searched_up_to_what_the_model_can_use() -> None:
    header = _header("moe30")
    for ctx in (4096, 90000, 131072):  # the slider does not move the search limit
        plan = FitPlan(ctx=ctx, gpus=(0,), gpu_memory_mib=(98304,))
        res = plan_fit(header, plan, [98304.0], MARGIN)
        assert res.max_ctx == res.usable_ctx == 4 * 40960
    # a host that binds a CPU plan: the search finds where it stops
    plan = FitPlan(ctx=4096, device="cpu", gpus=())
    at_4k = estimate_llamacpp(header, plan).host.total_mib
    host = HostMemory(at_4k + 300.0)
    res = plan_fit(header, plan, [], MARGIN, host=host)
    assert 4096 < res.max_ctx < 4 * 40960
    assert _fits(header, replace(plan, ctx=res.max_ctx), 0.0, host)
    assert not _fits(header, replace(plan, ctx=res.max_ctx + 256), 0.0, host)
    assert res.verdict is not None
    assert res.verdict.headline(MARGIN).startswith(
        "Fits: the host needs")
    assert "GPU" not in res.verdict.headline(MARGIN)


def test_beyond_the_trained_context_the_planner_gives_the_yarn_flags() -> None:
    header = _header("moe30")
    res = plan_fit(header, FitPlan(ctx=90000, gpus=(0,), gpu_memory_mib=(98304,)), [98304.0])
    assert res.context is not None
    assert " ".join(res.context.flags) == (
        "--rope-scaling yarn --rope-scale 2.2 --yarn-orig-ctx 40960")
