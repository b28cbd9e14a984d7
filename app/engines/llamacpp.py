"""llama.cpp's `llama-server`: the plan → command line mapping (DESIGN.md, Engines).

Every llama.cpp flag Rigdeck writes is in this module. The API key travels in
LLAMA_API_KEY (the server reads it from there), not in `--api-key`.
"""

from __future__ import annotations

from app.engines.mounts import ModelMounts
from app.engines.plan import LaunchPlan, PlanError, check_plan
from app.engines.spec import LaunchSpec

ENGINE = "llamacpp"
PERPLEXITY_TOOL = "llama-perplexity"
DEFAULT_IMAGE = "ghcr.io/ggml-org/llama.cpp:server-cuda"
API_KEY_ENV = "LLAMA_API_KEY"
ALL_LAYERS = 999
PERPLEXITY_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}
"""llama-perplexity's environment. Its log is written by a worker thread that the tool does
not wait for at exit (common/log.cpp leaks the logger on purpose, llama.cpp issue 22142),
and OpenMP's threads, spinning after the last chunk, keep that worker off the CPU: with
the default policy the final estimate was lost in 13 of 60 runs on 2 busy cores, with
threads that sleep in 1 of 60 (and the runs were 4 times faster)."""
MANAGED_FLAGS = frozenset({
    "-m", "--model", "--host", "--port", "--api-key", "--api-key-file", "-c", "--ctx-size",
    "-np", "--parallel", "-ngl", "--gpu-layers", "--n-gpu-layers", "-ts", "--tensor-split",
    "-ctk", "--cache-type-k", "-ctv", "--cache-type-v", "-fa", "--flash-attn", "--lora",
    "-ncmoe", "--n-cpu-moe", "-b", "--batch-size", "-ub", "--ubatch-size", "-t", "--threads",
    "--reasoning-format",
})
"""Flags the plan sets; giving them again in extra_args would contradict the plan."""


def check_extra_args(extra: tuple[str, ...], managed: frozenset[str], engine: str) -> None:
    """Refuse extra arguments that repeat a flag the plan already sets.

    Raises:
        PlanError: which flag, and which plan setting to use instead.
    """
    for arg in extra:
        flag = arg.split("=", 1)[0]
        if flag in managed:
            raise PlanError(
                f"extra argument {flag} conflicts with a flag Rigdeck sets for {engine} "
                "from the plan; use the plan setting instead"
            )


def _onoff(value: bool | None) -> str | None:
    return None if value is None else ("on" if value else "off")


def _text(value: int | str | None) -> str | None:
    return None if value is None else str(value)


def _simple_flags(plan: LaunchPlan) -> list[tuple[str, str | None]]:
    """Plan values that map one-to-one onto a flag (None: leave the engine's default)."""
    return [
        ("-c", _text(plan.context)), ("-np", _text(plan.parallel)), ("-b", _text(plan.batch)),
        ("-ub", _text(plan.ubatch)), ("-ctk", plan.cache_type_k), ("-ctv", plan.cache_type_v),
        ("-fa", _onoff(plan.flash_attn)), ("--n-cpu-moe", _text(plan.n_cpu_moe)),
        ("--reasoning-format", plan.reasoning_format), ("-t", _text(plan.threads)),
    ]


def recipe(plan: LaunchPlan, *, port: int, bind: str = "127.0.0.1", image: str = "",
           in_container: bool = True, arch: str | None = None,
           local: bool = True) -> LaunchSpec:
    """The llama-server launch for `plan` listening on bind:port.

    `arch` is the model's GGUF architecture, needed only for an expert-count override.

    Raises:
        PlanError: the plan is not a llama.cpp plan or its values conflict.
    """
    check_plan(plan)
    if plan.engine != ENGINE:
        raise PlanError(f"not a llama.cpp plan (engine {plan.engine!r})")
    if plan.max_lora_rank is not None:
        raise PlanError("max_lora_rank is a vLLM setting; llama.cpp serves any rank")
    check_extra_args(plan.extra_args, MANAGED_FLAGS, "llama.cpp")
    paths = ModelMounts(in_container, local=local)
    args: list[str] = ["-m", paths.file(plan.model), "--host", bind, "--port", str(port),
                       "--jinja"]
    for flag, value in _simple_flags(plan):
        if value is not None:
            args += [flag, value]
    if plan.gpus:
        layers = ALL_LAYERS if plan.gpu_layers is None else plan.gpu_layers
        args += ["-ngl", str(layers)]
        if plan.tensor_split:
            args += ["--tensor-split", ",".join(f"{v:g}" for v in plan.tensor_split)]
    else:
        args += ["-ngl", "0"]
    if plan.experts is not None:
        if not arch:
            raise PlanError("the expert count needs the model's architecture (read from the "
                            "GGUF header); the model file could not be read")
        args += ["--override-kv", f"{arch}.expert_used_count=int:{plan.experts}"]
    for adapter in plan.adapters:
        args += ["--lora", paths.file(adapter)]
    if plan.adapters:
        args.append("--lora-init-without-apply")
    # -lv 4: the engine's own account of itself reaches its log — the buffers it
    # allocated, the expert count and overrides it loaded, each request's timings and the
    # memory breakdown at exit (about 40 lines a request; Docker rotates the log).
    args += ["--metrics", "-lv", "4", *plan.extra_args]
    return LaunchSpec(
        engine=ENGINE, image=image or plan.image or DEFAULT_IMAGE, args=tuple(args), port=port,
        bind=bind, mounts=paths.mounts, api_key_env=API_KEY_ENV, gpus=plan.gpus,
        served_model=plan.backend_name, user=paths.user(),
    )


def perplexity_recipe(plan: LaunchPlan, text: str, *, context: int, chunks: int,
                      image: str = "", in_container: bool = True, arch: str | None = None,
                      local: bool = True) -> LaunchSpec:
    """llama.cpp's own `llama-perplexity` on the host file `text`, with the plan's model
    and the settings that change what the model computes (KV types, flash attention,
    experts, layers on the GPUs, MoE layers in RAM, threads), in windows of `context`
    tokens, over at most `chunks` of them. One sequence per batch (`-b` = context), so a
    chunk is scored the same whatever the plan's batch size.

    Raises:
        PlanError: the plan is not a llama.cpp plan or its values conflict.
    """
    check_plan(plan)
    if plan.engine != ENGINE:
        raise PlanError(f"perplexity is measured with llama.cpp, not {plan.engine!r}")
    paths = ModelMounts(in_container, local=local)
    args: list[str] = ["-m", paths.file(plan.model), "-f", paths.file(text),
                       "-c", str(context), "-b", str(context), "--chunks", str(chunks)]
    ubatch = min(plan.ubatch, context) if plan.ubatch is not None else None
    for flag, value in (("-ub", _text(ubatch)), ("-ctk", plan.cache_type_k),
                        ("-ctv", plan.cache_type_v), ("-fa", _onoff(plan.flash_attn)),
                        ("--n-cpu-moe", _text(plan.n_cpu_moe)), ("-t", _text(plan.threads))):
        if value is not None:
            args += [flag, value]
    layers = (ALL_LAYERS if plan.gpu_layers is None else plan.gpu_layers) if plan.gpus else 0
    args += ["-ngl", str(layers)]
    if plan.gpus and plan.tensor_split:
        args += ["--tensor-split", ",".join(f"{v:g}" for v in plan.tensor_split)]
    if plan.experts is not None:
        if not arch:
            raise PlanError("the expert count needs the model's architecture (read from the "
                            "GGUF header); the model file could not be read")
        args += ["--override-kv", f"{arch}.expert_used_count=int:{plan.experts}"]
    return LaunchSpec(
        engine=ENGINE, image=image or plan.image or DEFAULT_IMAGE, args=tuple(args), port=0,
        bind="", mounts=paths.mounts, gpus=plan.gpus, user=paths.user(),
        env=dict(PERPLEXITY_ENV), tool=PERPLEXITY_TOOL)
