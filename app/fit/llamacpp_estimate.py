"""Predict what llama-server allocates for a model and a plan, from the GGUF header alone.

Each buffer is sized the way llama.cpp sizes it (commit 0c1e570, llama-cpp-python 0.3.36):
- weights: tensors placed per layer by -ngl / --tensor-split / --n-cpu-moe (llama-model.cpp
  load_tensors); the token embedding stays on the host; host weights are an mmap of the
  file range they span (CPU_Mapped), or a repacked copy (CPU_REPACK) for types the CPU
  backend interleaves; GPU tensors are padded (ggml-cuda MATRIX_ROW_PADDING) and aligned;
- KV cache: cells = context padded to 256 (per stream unless unified), one K and one V
  row per cell and layer in the cache type; sliding-window layers get a window-sized cache
  (llama-kv-cache*.cpp);
- compute: the worst-case graph replayed through ggml's scheduler and allocator
  (see `ggml_sim`);
- output: logits for one token per slot (llama_context::output_reserve).
The CUDA runtime's own memory (context, kernels, cuBLAS, pool) is a per-GPU constant.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass

from app.errors import UserError
from app.fit.ggml_sim import CPU, GraphAllocator, Sizer, Tensor, ggml_type, row_bytes, schedule
from app.fit.llamacpp_graph import GraphParams, build_graph
from app.fit.model_info import HeaderLike, ModelInfo, model_info
from app.fit.plan import MIB, DeviceMemory, Estimate, FitPlan

log = logging.getLogger(__name__)

CUDA_RUNTIME_OVERHEAD_MIB = 580.0
"""GPU memory of the CUDA context, the ggml-cuda kernels, cuBLAS and the memory pool after
warm-up: not a buffer llama.cpp sizes, so not derivable from its sources. The design notes
measured 400-600 MiB; calibration replaces it with the residual seen on the user's GPU."""

CUDA_ALIGN = 128
CPU_ALIGN = 32
KV_PAD = 256
REPACK_TYPES = frozenset({"q4_0", "q4_k", "iq4_nl", "mxfp4"})
"""Types the x86 (AVX2) CPU backend repacks into interleaved blocks (ggml-cpu/repack.cpp)."""

_EXPS = re.compile(r"^blk\.(\d+)\.ffn_(up|down|gate|gate_up)_(ch)?exps")
_LAYER = re.compile(r"^blk\.(\d+)\.")


@dataclass(frozen=True)
class Shape:
    """The derived run shape: context, cells and batch as llama.cpp settles them."""

    n_ctx: int
    n_ctx_seq: int
    n_stream: int
    n_seq: int
    n_batch: int
    n_ubatch: int
    kv_cells: int
    kv_cells_swa: int


def _pad(x: int, n: int) -> int:
    return (x + n - 1) // n * n


def run_shape(m: ModelInfo, plan: FitPlan) -> Shape:
    """llama_context's cparams: n_ctx padded to 256, split per stream unless unified."""
    n_seq = plan.n_slots
    n_ctx = _pad(plan.ctx if plan.ctx > 0 else m.n_ctx_train, KV_PAD)
    if plan.unified:
        n_ctx_seq = n_ctx
        n_stream = 1
    else:
        n_ctx_seq = _pad(n_ctx // n_seq, KV_PAD)
        n_ctx = n_ctx_seq * n_seq
        n_stream = n_seq
    n_batch = min(n_ctx, plan.batch)
    n_ubatch = min(n_batch, plan.ubatch)
    swa = _pad(min(n_ctx_seq, m.n_swa * (n_seq if plan.unified else 1) + n_ubatch), KV_PAD)
    return Shape(n_ctx, n_ctx_seq, n_stream, n_seq, n_batch, n_ubatch, n_ctx_seq, swa)


def _layer_devices(m: ModelInfo, plan: FitPlan) -> list[int]:
    """Device of each layer and, last, of the output layer (get_layer_buft_list)."""
    n_gpu = len(plan.gpus) if plan.on_gpu else 0
    n_all = m.n_layer + 1
    if n_gpu == 0:
        return [CPU] * n_all
    ngl = n_all if plan.gpu_layers is None else plan.gpu_layers
    start = max(n_all - ngl, 0)
    act = min(ngl, n_all)
    weights = list(plan.tensor_split[:n_gpu]) if plan.tensor_split else []
    if not weights or not any(weights):
        weights = (
            [float(x) for x in plan.gpu_memory_mib[:n_gpu]]
            if len(plan.gpu_memory_mib) >= n_gpu
            else []
        )
    if not weights:
        weights = [1.0] * n_gpu
    total = sum(weights)
    splits = []
    acc = 0.0
    for w in weights:
        acc += w
        splits.append(acc / total)
    out = []
    for il in range(n_all):
        if il < start or il - start >= act:
            out.append(CPU)
            continue
        x = (il - start) / act
        out.append(next((i for i, s in enumerate(splits) if s > x), n_gpu - 1))
    return out


def _tensor_device(name: str, devices: list[int], plan: FitPlan) -> int:
    mexp = _EXPS.match(name)
    if mexp and (plan.cpu_moe_all or int(mexp.group(1)) < plan.n_cpu_moe):
        return CPU
    ml = _LAYER.match(name)
    if ml:
        return devices[int(ml.group(1))]
    if (
        name.startswith("token_embd")
        or name.startswith("token_types")
        or name.startswith("position_embd")
    ):
        return CPU
    return devices[-1]


def _cuda_alloc(t: Tensor) -> int:
    return _pad(Sizer(cuda=True).alloc_size(t), CUDA_ALIGN)


@dataclass
class _Weights:
    tensors: dict[str, Tensor]
    gpu_bytes: dict[int, int]
    mapped_bytes: int
    repack_bytes: int


def _place_weights(header: HeaderLike, m: ModelInfo, plan: FitPlan, devices: list[int]) -> _Weights:
    tensors: dict[str, Tensor] = {}
    gpu_bytes: dict[int, int] = {}
    first: int | None = None
    last = 0
    repack = 0
    host_plain = 0
    for gt in header.tensors:
        shape = tuple(int(x) for x in gt.shape)
        ne = (*shape, 1, 1, 1, 1)[:4]
        type_name = str(gt.type_name).lower()
        dev = _tensor_device(gt.name, devices, plan)
        t = Tensor(
            gt.name,
            (ne[0], ne[1], ne[2], ne[3]),
            type_name,
            external=True,
            weight=True,
            backend=dev,
        )
        tensors[gt.name] = t
        if dev != CPU:
            gpu_bytes[dev] = gpu_bytes.get(dev, 0) + _cuda_alloc(t)
            continue
        nbytes = int(gt.nbytes)
        if (
            type_name in REPACK_TYPES
            and ne[1] % 8 == 0
            and not gt.name.startswith("token_embd")
            and len(shape) >= 2
        ):
            repack += _pad(nbytes, CPU_ALIGN)
            continue
        offset = int(gt.offset) + _part_base(header, gt)
        first = offset if first is None else min(first, offset)
        last = max(last, offset + nbytes)
        host_plain += _pad(nbytes, CPU_ALIGN)
    if "output.weight" not in tensors and devices[-1] != CPU and "token_embd.weight" in tensors:
        emb = tensors["token_embd.weight"]
        dup = Tensor(
            "output.weight", emb.ne, emb.type, external=True, weight=True, backend=devices[-1]
        )
        tensors["output.weight"] = dup
        gpu_bytes[devices[-1]] = gpu_bytes.get(devices[-1], 0) + _cuda_alloc(dup)
    mapped = (last - first) if (plan.mmap and first is not None) else host_plain
    return _Weights(tensors, gpu_bytes, mapped, repack)


def _part_base(header: HeaderLike, gt: object) -> int:
    part = getattr(gt, "part", 0) or 0
    return int(part) << 40  # parts never share a mapping range


def _kv(
    m: ModelInfo, plan: FitPlan, shape: Shape, devices: list[int]
) -> tuple[dict[int, int], dict[tuple[int, str], Tensor]]:
    per_dev: dict[int, int] = {}
    tensors: dict[tuple[int, str], Tensor] = {}
    for il in range(m.n_layer):
        cells = shape.kv_cells_swa if m.swa_layers[il] else shape.kv_cells
        dev = devices[il]
        k = Tensor(
            f"cache_k_l{il}",
            (m.n_embd_k_gqa(il), cells, shape.n_stream, 1),
            plan.cache_type_k,
            external=True,
            backend=dev,
        )
        v = Tensor(
            f"cache_v_l{il}",
            (m.n_embd_v_gqa(il), cells, shape.n_stream, 1),
            plan.cache_type_v,
            external=True,
            backend=dev,
        )
        tensors[(il, "k")] = k
        tensors[(il, "v")] = v
        align = CPU_ALIGN if dev == CPU else CUDA_ALIGN
        per_dev[dev] = per_dev.get(dev, 0) + _pad(k.nbytes, align) + _pad(v.nbytes, align)
    return per_dev, tensors


def _compute(  # noqa: PLR0917
    m: ModelInfo,
    plan: FitPlan,
    shape: Shape,
    weights: dict[str, Tensor],
    kv: dict[tuple[int, str], Tensor],
    n_gpus: int,
) -> dict[int, int]:
    n_seqs = shape.n_seq
    n_tokens = min(shape.n_ctx, shape.n_ubatch)
    if n_tokens % n_seqs:
        n_tokens = (n_tokens + n_seqs - 1) // n_seqs * n_seqs
    quant_k = ggml_type(plan.cache_type_k).block_size > 1
    quant_v = ggml_type(plan.cache_type_v).block_size > 1
    params = GraphParams(
        n_tokens=n_tokens,
        n_seqs=n_seqs,
        n_outputs=min(n_tokens, n_seqs),
        n_stream=shape.n_stream,
        n_kv=shape.kv_cells,
        n_kv_swa=shape.kv_cells_swa,
        flash_attn=plan.flash_attn,
        type_k=plan.cache_type_k,
        type_v=plan.cache_type_v,
        attn_rot_k=quant_k and m.head_k % 64 == 0,
        attn_rot_v=quant_v and m.head_v % 64 == 0,
        n_expert_used=plan.experts or m.n_expert_used,
    )
    fresh = {
        k: Tensor(t.name, t.ne, t.type, external=True, weight=True, backend=t.backend)
        for k, t in weights.items()
    }
    graph = build_graph(m, params, fresh.get, lambda il, which: kv[(il, which)])
    nodes, leafs = schedule(graph, n_gpus, 0 if n_gpus else None)
    alignments = {CPU: CPU_ALIGN, **dict.fromkeys(range(n_gpus), CUDA_ALIGN)}
    sizers = {CPU: Sizer(cuda=False), **{g: Sizer(cuda=True) for g in range(n_gpus)}}
    return GraphAllocator(alignments, sizers).run(nodes, leafs)


def estimate_llamacpp(header: HeaderLike, plan: FitPlan) -> Estimate:
    """Per-GPU and host memory for llama-server running `plan` on the model of `header`.

    Cost: one pass over the tensor table and a replay of the reserve graph (a few
    milliseconds per layer); fine for a slider, cache the result per plan.
    """
    m = model_info(header)
    _check_plan(m, plan)
    shape = run_shape(m, plan)
    devices = _layer_devices(m, plan)
    n_gpus = len(plan.gpus) if plan.on_gpu else 0
    w = _place_weights(header, m, plan, devices)
    kv_bytes, kv_tensors = _kv(m, plan, shape, devices)
    compute = _compute(m, plan, shape, w.tensors, kv_tensors, n_gpus)
    output = m.n_vocab * shape.n_seq * 4
    lora = _adapters_per_device(m, plan, devices)

    gpus: list[DeviceMemory] = []
    for g in range(n_gpus):
        name = f"CUDA{g}"
        d = DeviceMemory(name=f"GPU {plan.gpus[g]} ({name})")
        d.weights_mib = (w.gpu_bytes.get(g, 0) + lora.get(g, 0)) / MIB
        d.kv_mib = kv_bytes.get(g, 0) / MIB
        d.compute_mib = compute.get(g, 0) / MIB
        d.overhead_mib = CUDA_RUNTIME_OVERHEAD_MIB
        d.buffers = {
            f"model:{name}": d.weights_mib,
            f"kv:{name}": d.kv_mib,
            f"compute:{name}": d.compute_mib,
        }
        if lora.get(g):
            d.buffers[f"lora:{name}"] = lora[g] / MIB
        gpus.append(d)
    host_name = "CUDA_Host" if n_gpus else "CPU"
    host = DeviceMemory(name="host")
    host.weights_mib = (w.mapped_bytes + w.repack_bytes + lora.get(CPU, 0)) / MIB
    host.kv_mib = kv_bytes.get(CPU, 0) / MIB
    host.compute_mib = compute.get(CPU, 0) / MIB
    host.output_mib = output / MIB
    host.buffers = {
        "model:CPU_Mapped" if plan.mmap else "model:CPU": w.mapped_bytes / MIB,
        f"compute:{host_name}": host.compute_mib,
        f"output:{host_name}": host.output_mib,
    }
    if w.repack_bytes:
        host.buffers["model:CPU_REPACK"] = w.repack_bytes / MIB
    if host.kv_mib:
        host.buffers["kv:CPU"] = host.kv_mib
    if lora.get(CPU):
        host.buffers["lora:CPU"] = lora[CPU] / MIB
    return Estimate(engine="llamacpp", devices=gpus, host=host, n_ctx=shape.n_ctx)


def _adapters_per_device(m: ModelInfo, plan: FitPlan, devices: list[int]) -> dict[int, int]:
    """Preloaded LoRA bytes per device: spread over the layers they adapt, each on its
    layer's device (llama_adapter_lora_init uses the base tensor's buffer type)."""
    out: dict[int, int] = {}
    if plan.adapter_bytes <= 0 or m.n_layer <= 0:
        return out
    per_layer = plan.adapter_bytes // m.n_layer
    for il in range(m.n_layer):
        out[devices[il]] = out.get(devices[il], 0) + per_layer
    return out


def _check_plan(m: ModelInfo, plan: FitPlan) -> None:
    for t in (plan.cache_type_k, plan.cache_type_v):
        try:
            ggml_type(t)
        except ValueError:
            raise UserError(f"unknown KV cache type {t!r} (f16, bf16, q8_0, q4_0, …)") from None
    if not plan.flash_attn and ggml_type(plan.cache_type_v).block_size > 1:
        raise UserError(
            "a quantised V cache needs flash attention: use --flash-attn on or --cache-type-v f16"
        )
    for t, head in ((plan.cache_type_k, m.head_k), (plan.cache_type_v, m.head_v)):
        block = ggml_type(t).block_size
        if head % block:
            raise UserError(
                f"KV cache type {t} stores blocks of {block} values, which do not "
                f"divide this model's head size {head}; use f16 or bf16"
            )
    if plan.ubatch < 1 or plan.batch < 1 or plan.ctx < 0:
        raise UserError("batch, ubatch and context must be positive")
    if plan.experts is not None and m.n_expert and not 1 <= plan.experts <= m.n_expert:
        raise UserError(f"experts per token must be 1..{m.n_expert} for this model")


def kv_bytes_per_cell(m: ModelInfo, type_k: str, type_v: str) -> int:
    """Bytes one context position costs across all full-attention layers."""
    return sum(
        row_bytes(type_k, m.n_embd_k_gqa(il)) + row_bytes(type_v, m.n_embd_v_gqa(il))
        for il in range(m.n_layer)
        if not m.swa_layers[il]
    )


def total_bytes(devs: Iterable[DeviceMemory]) -> float:
    return sum(d.total_mib for d in devs)
