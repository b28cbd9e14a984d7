"""vLLM's `vllm serve`: the plan → command line mapping (DESIGN.md, Engines).

The official image's entrypoint is `vllm serve`, so `args` start with the model. vLLM
shares tensors between its workers through shared memory: the container gets the host's
IPC namespace (`--ipc=host`), as vLLM's own docs ask. The API key travels in
VLLM_API_KEY, never in `--api-key`.
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath

from app.engines.llamacpp import check_extra_args
from app.engines.mounts import ModelMounts
from app.engines.plan import LaunchPlan, PlanError, check_plan
from app.engines.spec import LaunchSpec

ENGINE = "vllm"
DEFAULT_IMAGE = "vllm/vllm-openai"
VLLM_PIDS = 16384
"""vLLM runs a process per GPU and a few hundred threads each (tokenizers, NCCL)."""
API_KEY_ENV = "VLLM_API_KEY"
KV_DTYPES = {"f16": "auto", "bf16": "auto", "q8_0": "fp8"}
MANAGED_FLAGS = frozenset({
    "--host", "--port", "--api-key", "--max-model-len", "--max-num-seqs", "--kv-cache-dtype",
    "--tensor-parallel-size", "-tp", "--cpu-offload-gb", "--hf-overrides", "--reasoning-parser",
    "--enable-lora", "--lora-modules", "--served-model-name", "--model", "--max-loras",
    "--max-lora-rank",
})


def recipe(plan: LaunchPlan, *, port: int, bind: str = "127.0.0.1", image: str = "",
           in_container: bool = True, arch: str | None = None,
           local: bool = True) -> LaunchSpec:
    """The `vllm serve` launch for `plan` listening on bind:port.

    Raises:
        PlanError: the plan is not a vLLM plan or its values conflict.
    """
    check_plan(plan)
    if plan.engine != ENGINE:
        raise PlanError(f"not a vLLM plan (engine {plan.engine!r})")
    check_extra_args(plan.extra_args, MANAGED_FLAGS, "vLLM")
    paths = ModelMounts(in_container, local=local)
    model = (paths.file(plan.model) if plan.model.endswith(".gguf")
             else paths.folder(plan.model))
    args: list[str] = [model, "--host", bind, "--port", str(port),
                       "--served-model-name", plan.backend_name]
    if plan.context is not None:
        args += ["--max-model-len", str(plan.context)]
    if plan.parallel is not None:
        args += ["--max-num-seqs", str(plan.parallel)]
    if plan.cache_type_k is not None:
        args += ["--kv-cache-dtype", KV_DTYPES[plan.cache_type_k]]
    if len(plan.gpus) > 1:
        args += ["--tensor-parallel-size", str(len(plan.gpus))]
    if plan.cpu_offload_gb is not None:
        args += ["--cpu-offload-gb", f"{plan.cpu_offload_gb:g}"]
    if plan.experts is not None:
        args += ["--hf-overrides", json.dumps({"num_experts_per_tok": plan.experts})]
    if plan.reasoning_format is not None:
        args += ["--reasoning-parser", plan.reasoning_format]
    env: dict[str, str] = {"HOME": "/tmp"} if in_container else {}
    if plan.adapters:
        args += ["--enable-lora", "--max-loras", str(len(plan.adapters))]
        if plan.max_lora_rank is not None:
            args += ["--max-lora-rank", str(plan.max_lora_rank)]
        args.append("--lora-modules")
        for adapter in plan.adapters:
            name = PurePosixPath(adapter.rstrip("/")).name
            args.append(f"{name}={paths.folder(adapter)}")
        env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "True"
    args += list(plan.extra_args)
    return LaunchSpec(
        engine=ENGINE, image=image or plan.image or DEFAULT_IMAGE, args=tuple(args), port=port,
        bind=bind, env=env, mounts=paths.mounts, api_key_env=API_KEY_ENV, gpus=plan.gpus,
        ipc_host=in_container, served_model=plan.backend_name, user=paths.user(),
        # torch.compile, Triton and the HF hub write caches of gigabytes under HOME: a
        # writable root (not a tmpfs in RAM) and a HOME the non-root user may write
        read_only_root=False, tmpfs=(), pids_limit=VLLM_PIDS,
    )
