"""How plan choices move the estimate, checked against the model's own shapes."""

from __future__ import annotations

from dataclasses import replace

from app.fit.explainer import explain
from app.fit.llamacpp_estimate import estimate_llamacpp
from app.fit.model_info import model_info
from app.fit.plan import FitPlan
from app.library.gguf import read_gguf_header
from tests.unit.app.fit.reference import need, shared_data


def _header(name: str):  # type: ignore[no-untyped-def]
    return read_gguf_header(need(shared_data() / "gguf-headers" / f"{name}.header.gguf"))


def test_experts_per_token_changes_only_compute() -> None:
    h = _header("moe30")
    a = estimate_llamacpp(h, FitPlan(ctx=8192, experts=8)).devices[0]
    b = estimate_llamacpp(h, FitPlan(ctx=8192, experts=2)).devices[0]
    assert (a.weights_mib, a.kv_mib) == (b.weights_mib, b.kv_mib)
    assert a.compute_mib != b.compute_mib


def test_n_cpu_moe_moves_expert_weights_to_the_host() -> None:
    h = _header("moe30")
    m = model_info(h)
    base = estimate_llamacpp(h, FitPlan(ctx=4096))
    moved = estimate_llamacpp(h, FitPlan(ctx=4096, n_cpu_moe=m.n_layer))
    exps = sum(t.nbytes for t in h.tensors if "_exps" in t.name) / 2**20
    assert base.devices[0].weights_mib - moved.devices[0].weights_mib == exps
    assert moved.host.weights_mib > base.host.weights_mib


def test_two_gpus_split_the_layers() -> None:
    h = _header("dense8")
    one = estimate_llamacpp(h, FitPlan(ctx=4096, gpus=(0,)))
    two = estimate_llamacpp(h, FitPlan(ctx=4096, gpus=(0, 1)))
    assert len(two.devices) == 2
    assert sum(d.weights_mib for d in two.devices) == one.devices[0].weights_mib
    assert sum(d.kv_mib for d in two.devices) == one.devices[0].kv_mib


def test_kv_cache_scales_with_slots_per_stream() -> None:
    h = _header("dense8")
    a = estimate_llamacpp(h, FitPlan(ctx=8192, parallel=1)).devices[0].kv_mib
    b = estimate_llamacpp(h, replace(FitPlan(ctx=8192, parallel=4))).devices[0].kv_mib
    assert a == b  # the same cells, split over 4 streams


def test_explainer_separates_runtime_from_fixed() -> None:
    settings = {s.name: s for s in explain(model_info(_header("moe30")))}
    assert settings["experts per token"].runtime
    assert not settings["KV heads"].runtime
    assert not settings["vocabulary"].runtime


def _largest_mib(h, pattern: str) -> float:  # type: ignore[no-untyped-def]
    return float(max(t.nbytes for t in h.tensors if pattern in t.name)) / 2**20


def test_experts_in_ram_cost_the_gpu_one_expert_matrix_at_a_time() -> None:
    """At prompt batch the GPU runs the experts kept in RAM on a copy of their weights,
    one matrix per split, so the copies share memory however many layers stay in RAM."""
    h = _header("moe30")
    base = estimate_llamacpp(h, FitPlan(ctx=32768)).devices[0].compute_mib
    one = estimate_llamacpp(h, FitPlan(ctx=32768, n_cpu_moe=1)).devices[0].compute_mib
    every = estimate_llamacpp(h, FitPlan(ctx=32768, cpu_moe_all=True)).devices[0].compute_mib
    assert one == every
    assert base < every <= base + _largest_mib(h, "_exps")


def test_below_the_offload_batch_experts_in_ram_run_on_the_cpu() -> None:
    h = _header("moe30")
    small = FitPlan(ctx=32768, batch=16, ubatch=16)
    base = estimate_llamacpp(h, small)
    moved = estimate_llamacpp(h, replace(small, cpu_moe_all=True))
    assert moved.devices[0].compute_mib < base.devices[0].compute_mib
    assert moved.host.compute_mib > base.host.compute_mib


def test_layers_left_on_the_host_are_computed_on_the_gpu_from_copies() -> None:
    h = _header("dense8")
    base = estimate_llamacpp(h, FitPlan(ctx=4096)).devices[0].compute_mib
    none = estimate_llamacpp(h, FitPlan(ctx=4096, gpu_layers=0)).devices[0]
    assert none.weights_mib == 0
    assert base < none.compute_mib <= base + _largest_mib(h, "blk.0.")
