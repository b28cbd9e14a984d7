"""Fit plans become LaunchPlans that the recipes accept and that start what Fit estimated."""

from __future__ import annotations

from pathlib import Path

from app.engines.recipes import launch_spec
from app.fit.launch import launch_plan
from app.fit.plan import FitPlan
from app.fit.vllm_estimate import VllmPlan


def test_a_llamacpp_fit_plan_keeps_what_differs_from_the_defaults() -> None:
    plan = launch_plan(Path("/m/qwen3-30b.gguf"), FitPlan(
        ctx=32768, parallel=None, kv_unified=True, cache_type_k="q8_0", cache_type_v="q8_0",
        ubatch=1024, gpus=(0, 1), gpu_layers=40, tensor_split=(1.0, 1.0), cpu_moe_all=True))
    args = launch_spec(plan, port=8080).args
    assert plan.batch is None  # 2048 is llama-server's own default
    for flag, value in (("-c", "32768"), ("-ctk", "q8_0"), ("-ub", "1024"), ("-ngl", "40"),
                        ("--tensor-split", "1,1"), ("--n-cpu-moe", "999")):
        assert args[args.index(flag) + 1] == value
    assert "-kvu" in args
    assert "-np" not in args  # auto slots stay auto


def test_a_cpu_fit_plan_asks_for_no_gpu() -> None:
    plan = launch_plan(Path("/m/tiny.gguf"), FitPlan(device="cpu", gpus=(0,), n_cpu_moe=4,
                                                     gpu_layers=10))
    assert (plan.gpus, plan.gpu_layers, plan.n_cpu_moe) == ((), None, None)
    args = launch_spec(plan, port=8080).args
    assert args[args.index("-ngl") + 1] == "0"


def test_a_vllm_fit_plan_uses_tensor_parallel_gpus_and_its_memory_budget() -> None:
    plan = launch_plan(Path("/m/Qwen3-32B"), VllmPlan(
        tensor_parallel=2, gpu_memory_utilization=0.85, max_model_len=16384, max_num_seqs=8,
        kv_cache_dtype="fp8"))
    assert plan.engine == "vllm"
    assert plan.gpus == ("0", "1")
    args = launch_spec(plan, port=8000).args
    for flag, value in (("--max-model-len", "16384"), ("--max-num-seqs", "8"),
                        ("--kv-cache-dtype", "fp8"), ("--tensor-parallel-size", "2"),
                        ("--gpu-memory-utilization", "0.85")):
        assert args[args.index(flag) + 1] == value


def test_a_vllm_fit_plan_starts_with_the_batch_dtype_and_quantisation_it_planned() -> None:
    plan = launch_plan(Path("/m/Qwen2.5-72B-GPTQ"), VllmPlan(
        max_model_len=8192, max_num_batched_tokens=4096, dtype="float16",
        quantization="gptq_marlin"))
    args = launch_spec(plan, port=8000).args
    for flag, value in (("--max-num-batched-tokens", "4096"), ("--dtype", "float16"),
                        ("--quantization", "gptq_marlin")):
        assert args[args.index(flag) + 1] == value
    defaults = launch_spec(launch_plan(Path("/m/q"), VllmPlan()), port=8000).args
    assert "--max-num-batched-tokens" not in defaults  # vLLM's own default, as planned
    assert "--dtype" not in defaults
    assert "--quantization" not in defaults
