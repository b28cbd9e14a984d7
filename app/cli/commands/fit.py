"""`rigdeck fit`: will this model and plan fit, how much each device holds, what to change."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from app.cli.json_text import json_text
from app.cli.values import number, whole
from app.errors import UserError
from app.fit.capacities import parse_gpu_memory
from app.fit.plan import DeviceMemory, FitPlan

log = logging.getLogger(__name__)

DEFAULT_GPU_MIB = 81559
"""Capacity assumed when --gpu-memory is not given and no GPU can be queried (an 80 GB card)."""
KV_CACHE_DTYPES = ["auto", "fp8", "fp8_e4m3", "fp8_e5m2"]
VLLM_DTYPES = ["auto", "half", "float16", "bfloat16", "float", "float32"]
VLLM_QUANTIZATIONS = ["awq", "awq_marlin", "gptq", "gptq_marlin", "fp8", "compressed-tensors",
                      "bitsandbytes"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "fit", help="estimate the memory a model needs for a launch plan",
        formatter_class=lambda prog: argparse.HelpFormatter(prog, max_help_position=30))
    p.add_argument("model", help="a GGUF file (llamacpp) or a Hugging Face folder (vllm)")
    p.add_argument("--engine", choices=["llamacpp", "vllm"], default="llamacpp",
                   help="the engine to plan for: llamacpp or vllm (default: llamacpp)")
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda", metavar="KIND",
                   help="cuda (GPUs) or cpu (llamacpp only; default: cuda)")
    p.add_argument("--gpus", default="0", metavar="LIST",
                   help="CUDA devices, e.g. 0,1 (default: 0)")
    p.add_argument("--gpu-memory", default="", metavar="SIZE",
                   help="memory per GPU: 96G, 96 GB (GiB) or MiB (98304); one per GPU, 24G,24G")
    p.add_argument("--ctx", metavar="N", type=whole(1), default=4096,
                   help="context in tokens: -c (llamacpp), --max-model-len (vllm)")
    p.add_argument("--parallel", metavar="N", type=whole(1), default=1,
                   help="llama-server slots sharing the context, -np (default: 1)")
    p.add_argument("--flash-attn", choices=["on", "off"], default="on", metavar="ON",
                   help="llama.cpp flash attention, -fa: on or off (default: on)")
    p.add_argument("--cache-type-k", default="f16", metavar="TYPE",
                   help="llama.cpp K cache type: f16, q8_0, q4_0 ... (default: f16)")
    p.add_argument("--cache-type-v", default="f16", metavar="TYPE",
                   help="llama.cpp V cache type: f16, q8_0, q4_0 ... (default: f16)")
    p.add_argument("--batch", metavar="N", type=whole(1), default=2048,
                   help="llama.cpp logical batch, -b (default: 2048)")
    p.add_argument("--ubatch", metavar="N", type=whole(1), default=512,
                   help="llama.cpp physical batch, -ub (default: 512)")
    p.add_argument("--experts", metavar="N", type=whole(1), default=None,
                   help="experts used per token on a MoE model (default: the model's)")
    p.add_argument("--n-cpu-moe", metavar="N", type=whole(0), default=0,
                   help="llama.cpp: keep the experts of the first N layers in host RAM")
    p.add_argument("--gpu-layers", metavar="N", type=whole(0), default=None,
                   help="llama.cpp layers on the GPU, -ngl (default: all)")
    p.add_argument("--gpu-memory-utilization", type=number(0, 1, low_open=True), default=0.9,
                   metavar="F", help="vLLM's share of each GPU, in (0, 1] (default: 0.9)")
    p.add_argument("--tensor-parallel", type=whole(1), default=None, metavar="N",
                   help="vLLM tensor parallel size (default: one per GPU in --gpus)")
    p.add_argument("--kv-cache-dtype", choices=KV_CACHE_DTYPES, default="auto", metavar="DTYPE",
                   help="vLLM KV cache: auto (the model's dtype), fp8, fp8_e4m3, fp8_e5m2 (1 byte)")
    p.add_argument("--max-num-seqs", metavar="N", type=whole(1), default=None,
                   help="vLLM sequences per step (default: vLLM's, 256; 1024 on >=70 GiB GPUs)")
    p.add_argument("--max-num-batched-tokens", type=whole(1), default=None, metavar="N",
                   help="vLLM tokens per step, sizing the activation profile (default: vLLM's)")
    p.add_argument("--dtype", choices=VLLM_DTYPES, default="auto", metavar="DTYPE",
                   help="vLLM model dtype: auto (the config's), half, bfloat16, float32")
    p.add_argument("--quantization", choices=VLLM_QUANTIZATIONS, default=None,
                   metavar="METHOD", help="vLLM quantisation: gptq, awq, fp8, compressed-tensors, "
                   "bitsandbytes (default: the checkpoint's)")
    p.add_argument("--vllm-version", default=None, metavar="X.Y",
                   help="vLLM version whose defaults apply, e.g. 0.6.3 (default: the newest)")
    p.add_argument("--margin", type=number(0), default=None, metavar="MIB",
                   help="MiB to keep free per GPU (default: the planner's margin)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=run)


def _ints(text: str, what: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise UserError(f"{what} must be comma-separated integers, got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    path = Path(args.model)
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    gpus = _ints(args.gpus, "--gpus") if args.device == "cuda" else ()
    mem = parse_gpu_memory(args.gpu_memory, label="--gpu-memory")
    if mem and len(mem) not in (1, len(gpus)):
        raise UserError("--gpu-memory needs one value, or one per GPU in --gpus")
    capacity = [float(x) for x in (mem * len(gpus) if len(mem) == 1 else mem)] or [
        float(DEFAULT_GPU_MIB)
    ] * len(gpus)
    if args.engine == "vllm":
        return _run_vllm(args, path, capacity, gpus)
    if path.is_dir():
        raise UserError(f"{path} is a folder; --engine llamacpp needs a GGUF file")
    if args.parallel < 1 or args.ctx < 0:
        raise UserError("--parallel must be at least 1 and --ctx not negative")
    from app.fit.capacities import host_memory
    from app.fit.loaded_model import read_gguf
    from app.fit.planner import DEFAULT_MARGIN_MIB, plan_fit

    header = read_gguf(path)
    plan = FitPlan(
        ctx=args.ctx,
        parallel=args.parallel,
        flash_attn=args.flash_attn == "on",
        cache_type_k=args.cache_type_k.lower(),
        cache_type_v=args.cache_type_v.lower(),
        batch=args.batch,
        ubatch=args.ubatch,
        experts=args.experts,
        device=args.device,
        gpus=gpus,
        gpu_memory_mib=tuple(int(c) for c in capacity),
        gpu_layers=args.gpu_layers,
        n_cpu_moe=args.n_cpu_moe,
    )
    margin = DEFAULT_MARGIN_MIB if args.margin is None else args.margin
    host = host_memory()
    res = plan_fit(header, plan, capacity, margin, host=host)
    verdict = res.verdict
    out = {
        "engine": "llamacpp",
        "fits": res.fits,
        "verdict": verdict.reason(margin) if verdict is not None else "",
        "host_needs": verdict.host.lines() if verdict is not None and verdict.host else [],
        "context_note": res.context.note if res.context is not None else "",
        "context_flags": list(res.context.flags) if res.context is not None else [],
        "max_ctx": res.max_ctx if plan.on_gpu or host is not None else res.estimate.n_ctx,
        "devices": [d.as_dict() for d in res.estimate.devices],
        "host": res.estimate.host.as_dict(),
        "advice": [a.as_dict() for a in res.advice],
    }
    _print(args, out, res.estimate.devices, res.estimate.host, capacity)
    return 0 if res.fits else 1


def _run_vllm(
    args: argparse.Namespace, path: Path, capacity: list[float], gpus: tuple[int, ...]
) -> int:
    from app.fit.vllm_estimate import VllmPlan, default_max_num_seqs, estimate_vllm

    if not path.is_dir():
        raise UserError(f"{path}: --engine vllm needs a Hugging Face model folder")
    if args.device != "cuda" or not gpus:
        raise UserError("--engine vllm needs --device cuda and at least one GPU")
    if not 0 < args.gpu_memory_utilization <= 1:
        raise UserError("--gpu-memory-utilization must be in (0, 1]")
    tp = args.tensor_parallel or len(capacity)
    if len(capacity) == 1:
        capacity = capacity * tp  # one size given: that many GPUs of it
    if tp > len(capacity):
        raise UserError(f"--tensor-parallel {tp} needs {tp} GPUs; --gpus names {len(capacity)}")
    seqs = args.max_num_seqs or default_max_num_seqs(args.vllm_version, min(capacity))
    plan = VllmPlan.on_gpus(
        capacity[:tp],
        utilization=args.gpu_memory_utilization,
        max_model_len=args.ctx or None,
        max_num_seqs=seqs,
        max_num_batched_tokens=args.max_num_batched_tokens,
        dtype=args.dtype,
        kv_cache_dtype=args.kv_cache_dtype,
        quantization=args.quantization,
        vllm_version=args.vllm_version,
    )
    v = estimate_vllm(path, plan)
    fits = v.fits
    out = {
        "engine": "vllm",
        "fits": fits,
        "max_ctx": v.kv_cache_tokens,
        "devices": [d.as_dict() for d in v.estimate.devices],
        "host": v.estimate.host.as_dict(),
        "advice": [],
        "kv_cache_tokens": v.kv_cache_tokens,
        "max_concurrency": round(v.max_concurrency, 2),
    }
    _print(args, out, v.estimate.devices, v.estimate.host, capacity)
    for note in v.estimate.notes:
        if not args.json:
            print(note)
    return 0 if fits else 1


def _print(
    args: argparse.Namespace,
    out: dict[str, object],
    devices: list[DeviceMemory],
    host: DeviceMemory,
    capacity: list[float],
) -> None:
    if args.json:
        print(json_text(out, indent=None))
        return
    head = (
        f"{'device':24s} {'weights':>9s} {'KV':>9s} {'compute':>9s} {'output':>8s} "
        f"{'runtime':>8s} {'total':>9s} {'of':>8s}"
    )
    print(head)
    for d, cap in [*zip(devices, capacity, strict=False), (host, None)]:
        of = f"{cap:8.0f}" if cap else f"{'':8s}"
        print(
            f"{d.name:24s} {d.weights_mib:9.1f} {d.kv_mib:9.1f} {d.compute_mib:9.1f} "
            f"{d.output_mib:8.1f} {d.overhead_mib:8.1f} {d.total_mib:9.1f} {of}"
        )
    why = f" — {out['verdict']}" if out.get("verdict") else ""
    print(f"fits: {'yes' if out['fits'] else 'no'}{why}")
    host_needs = out.get("host_needs")
    for line in host_needs if isinstance(host_needs, list) else []:
        print(f"  host: {line}")
    print(f"largest context that fits: {out['max_ctx']}")
    if out.get("context_note"):
        print(f"context: {out['context_note']}")
    advice = out.get("advice") or []
    if isinstance(advice, list) and advice:
        print("what would help (the change in MiB on each GPU and the host):")
        for a in advice:
            effects = ", ".join(f"{n} {d:+,.0f} MiB" for n, d in a["effects_mib"].items()
                                if abs(d) >= 0.5) or "no change in memory"
            print(f"  - {a['change']}: {effects}{'  (then fits)' if a['then_fits'] else ''}")
