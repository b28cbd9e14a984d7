"""A Fit plan as a LaunchPlan, so "Start with this plan" starts what Fit estimated.

Only values that differ from the engine's defaults are carried over, so the Start dialog
and the backend's labels stay short; the recipes (app.engines) then make the flags.
"""

from __future__ import annotations

from pathlib import Path

from app.engines.llamacpp import ALL_LAYERS
from app.engines.plan import LaunchPlan
from app.fit.plan import FitPlan
from app.fit.vllm_estimate import VllmPlan

LLAMA_DEFAULT_BATCH = 2048
LLAMA_DEFAULT_UBATCH = 512


def _from_llamacpp(model: Path, plan: FitPlan) -> LaunchPlan:
    on_gpu = plan.on_gpu
    n_cpu_moe = ALL_LAYERS if plan.cpu_moe_all else plan.n_cpu_moe
    extra: tuple[str, ...] = ()
    if plan.kv_unified is not None:
        extra = ("-kvu",) if plan.kv_unified else ("-no-kvu",)
    return LaunchPlan(
        model=str(model), engine="llamacpp", context=plan.ctx, parallel=plan.parallel,
        batch=None if plan.batch == LLAMA_DEFAULT_BATCH else plan.batch,
        ubatch=None if plan.ubatch == LLAMA_DEFAULT_UBATCH else plan.ubatch,
        cache_type_k=None if plan.cache_type_k == "f16" else plan.cache_type_k,
        cache_type_v=None if plan.cache_type_v == "f16" else plan.cache_type_v,
        flash_attn=plan.flash_attn, experts=plan.experts,
        gpus=tuple(str(g) for g in plan.gpus) if on_gpu else (),
        gpu_layers=plan.gpu_layers if on_gpu else None,
        tensor_split=plan.tensor_split if on_gpu else (),
        n_cpu_moe=n_cpu_moe if on_gpu and n_cpu_moe else None, extra_args=extra)


def _from_vllm(model: Path, plan: VllmPlan) -> LaunchPlan:
    kv = "q8_0" if plan.kv_cache_dtype.startswith("fp8") else None
    extra = ["--gpu-memory-utilization", f"{plan.gpu_memory_utilization:g}"]
    if plan.max_num_batched_tokens is not None:  # the activation profile Fit planned for
        extra += ["--max-num-batched-tokens", str(plan.max_num_batched_tokens)]
    if plan.dtype != "auto":
        extra += ["--dtype", plan.dtype]
    if plan.quantization:
        extra += ["--quantization", plan.quantization]
    return LaunchPlan(
        model=str(model), engine="vllm", context=plan.max_model_len,
        parallel=plan.max_num_seqs, cache_type_k=kv, cache_type_v=kv,
        gpus=tuple(str(i) for i in range(plan.tensor_parallel)), extra_args=tuple(extra))


def launch_plan(model: Path, plan: FitPlan | VllmPlan) -> LaunchPlan:
    """The LaunchPlan that starts `model` the way the Fit plan describes."""
    if isinstance(plan, VllmPlan):
        return _from_vllm(model, plan)
    return _from_llamacpp(model, plan)


def fit_plan_of(plan: LaunchPlan, adapter_bytes: int = 0) -> FitPlan:
    """The Fit plan a llama.cpp LaunchPlan runs (the inverse of `launch_plan`), for
    estimating a backend that is about to start or already runs."""
    return FitPlan(
        ctx=plan.context or 4096, parallel=plan.parallel,
        batch=plan.batch or LLAMA_DEFAULT_BATCH, ubatch=plan.ubatch or LLAMA_DEFAULT_UBATCH,
        flash_attn=plan.flash_attn is not False,
        cache_type_k=plan.cache_type_k or "f16", cache_type_v=plan.cache_type_v or "f16",
        experts=plan.experts, gpus=tuple(range(len(plan.gpus))),
        gpu_layers=plan.gpu_layers, n_cpu_moe=min(plan.n_cpu_moe or 0, ALL_LAYERS - 1),
        cpu_moe_all=(plan.n_cpu_moe or 0) >= ALL_LAYERS,
        tensor_split=plan.tensor_split, adapter_bytes=adapter_bytes)
