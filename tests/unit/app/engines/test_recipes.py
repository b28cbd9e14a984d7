"""Recipes: the exact command lines, and plans refused before anything starts."""

from __future__ import annotations

import pytest

from app.engines import llamacpp, vllm
from app.engines.plan import LaunchPlan, PlanError

VLLM_DOCUMENTED_FLAGS = {
    # `vllm serve --help` (vLLM 0.8-0.10), the flags the recipe may write; vllm cannot be
    # installed here, so this table stands in for its argument parser.
    "--host": 1, "--port": 1, "--served-model-name": 1, "--max-model-len": 1,
    "--max-num-seqs": 1, "--kv-cache-dtype": 1, "--tensor-parallel-size": 1,
    "--cpu-offload-gb": 1, "--hf-overrides": 1, "--reasoning-parser": 1, "--enable-lora": 0,
    "--max-loras": 1, "--lora-modules": -1,
}


def _flags_ok(args: tuple[str, ...]) -> None:
    i = 1  # args[0] is the model
    while i < len(args):
        flag = args[i]
        assert flag in VLLM_DOCUMENTED_FLAGS, flag
        n = VLLM_DOCUMENTED_FLAGS[flag]
        i += 1
        if n == -1:
            while i < len(args) and not args[i].startswith("--"):
                i += 1
        else:
            i += n


def test_llamacpp_command_line_is_exact() -> None:
    plan = LaunchPlan.from_dict({"model": "/m/q.gguf", "context": 8192, "parallel": 2,
                                 "cache_type_k": "q8_0", "cache_type_v": "q8_0",
                                 "flash_attn": True, "gpus": ["0", "1"],
                                 "tensor_split": [1, 1], "n_cpu_moe": 4})
    spec = llamacpp.recipe(plan, port=8080, arch="qwen3moe")
    assert spec.args == ("-m", "/models/m0/q.gguf", "--host", "127.0.0.1", "--port", "8080",
                         "--jinja", "-c", "8192", "-np", "2", "-ctk", "q8_0", "-ctv", "q8_0",
                         "-fa", "on", "--n-cpu-moe", "4", "-ngl", "999", "--tensor-split",
                         "1,1", "--metrics", "-lv", "4")
    assert [(m.source, m.target, m.read_only) for m in spec.mounts] == [
        ("/m/q.gguf", "/models/m0/q.gguf", True)]  # the file, not its folder
    assert spec.api_key_env == "LLAMA_API_KEY"
    assert not any("key" in a.lower() for a in spec.args)


def test_vllm_command_line_uses_only_documented_flags() -> None:
    plan = LaunchPlan.from_dict({"model": "/hf/Qwen3-30B-A3B", "engine": "vllm",
                                 "context": 32768, "parallel": 8, "gpus": ["0", "1"],
                                 "experts": 4, "reasoning_format": "qwen3",
                                 "cache_type_k": "q8_0", "cache_type_v": "q8_0",
                                 "adapters": ["/hf/role-a"]})
    spec = vllm.recipe(plan, port=8000)
    _flags_ok(spec.args)
    assert spec.args[0] == "/models/m0"
    assert "--tensor-parallel-size" in spec.args
    assert spec.ipc_host
    assert spec.env == {"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
                        "HOME": "/tmp"}  # a home the non-root user may write its caches in
    assert spec.user == "65534:65534"  # /hf is not on this machine: nobody


@pytest.mark.parametrize("offload", [-1.0, float("nan"), float("inf")])
def test_a_vllm_offload_that_is_no_size_is_refused(offload: float) -> None:
    plan = LaunchPlan(model="/hf/qwen", engine="vllm", gpus=("0",), cpu_offload_gb=offload)
    with pytest.raises(PlanError, match="cpu_offload_gb must be 0 or more"):
        vllm.recipe(plan, port=8000)


@pytest.mark.parametrize(("raw", "reason"), [
    ({"model": "/m.gguf", "turbo": 1}, "unknown plan setting"),
    ({"model": "/m.gguf", "tensor_split": [1, 1], "gpus": ["0"]}, "one part per GPU"),
    ({"model": "/m.gguf", "engine": "vllm", "gpus": ["0"], "n_cpu_moe": 2}, "no equivalent"),
    ({"model": "/m.gguf", "batch": 256, "ubatch": 512}, "cannot exceed batch"),
    ({"model": "/m.gguf", "flash_attn": False, "cache_type_v": "q8_0"}, "needs flash"),
    ({"model": "/m.gguf", "extra_args": ["--port=1"]}, "conflicts with a flag"),
    ({"model": "/m.gguf", "context": -4096}, "context must be at least 1"),
    ({"model": "/m.gguf", "n_cpu_moe": -1}, "n_cpu_moe cannot be negative"),
])
def test_conflicting_plans_are_refused_with_the_reason(raw: dict[str, object],
                                                       reason: str) -> None:
    with pytest.raises(PlanError, match=reason):
        llamacpp.recipe(LaunchPlan.from_dict(raw), port=8080)
