"""A small replay of ggml's scheduler and graph allocator, to size compute buffers.

llama.cpp sizes its compute buffers by building the worst-case graph and running
`ggml_gallocr` over it (ggml/src/ggml-alloc.c): tensors are placed in a best-fit free list,
an op may reuse its parent's memory in place, a tensor is freed after its last consumer,
and the buffer is as large as the highest address ever used. The result depends on the
order of the nodes and on fragmentation, so no closed formula matches it; replaying the
same algorithm over the same graph does. `ggml_backend_sched` (ggml-backend.cpp) first
assigns every node to a backend and inserts copies where a node reads a tensor that lives
on another device; those copies are part of the receiving device's buffer. A GPU runs a
big-batch op on weights kept in host memory itself (op offload) from a copy of the weight,
and the scheduler starts a new split for each such op, so those copies are freed after
their one user and the next op's copy reuses the memory: with experts in RAM the GPU holds
about one expert matrix at a time, not every layer's.

Only what affects sizes is modelled: shapes, types, views, in-place reuse, outputs,
inputs, the backend of each node and cross-device copies.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from app.library.ggml_types import GGML_TYPES, GgmlType

log = logging.getLogger(__name__)

_BY_NAME: dict[str, GgmlType] = {t.name.lower(): t for t in GGML_TYPES.values()}

CPU = -1
"""Backend id of the CPU (host) in `Tensor.backend`; GPUs are 0, 1, …"""

INPLACE_OPS = frozenset(
    {"scale", "add", "mul", "div", "sub", "unary", "rope", "rms_norm", "clamp", "soft_max", "fill"}
)
"""ggml_op_can_inplace (ggml-alloc.c): ops whose result may take over a parent's memory."""

MATRIX_ROW_PADDING = 512
"""ggml-cuda pads the last row of quantised matrices to a multiple of this many values."""


def ggml_type(name: str) -> GgmlType:
    """The ggml type called `name` (case-insensitive), e.g. "f16", "q8_0"."""
    try:
        return _BY_NAME[name.lower()]
    except KeyError:
        raise ValueError(f"unknown ggml type {name!r}") from None


def row_bytes(type_name: str, n: int) -> int:
    """Bytes of `n` consecutive values of a type (ggml_row_size)."""
    t = ggml_type(type_name)
    return n // t.block_size * t.type_size


@dataclass(eq=False)
class Tensor:
    """One ggml tensor: shape (ne, innermost first), type, the op that makes it, its sources."""

    name: str
    ne: tuple[int, int, int, int]
    type: str = "f32"
    op: str = "none"
    src: list[Tensor] = field(default_factory=list)
    view_src: Tensor | None = None
    is_input: bool = False
    is_output: bool = False
    external: bool = False
    """Already in a buffer (weights, KV cache): never allocated by the graph allocator."""
    backend: int | None = None
    weight: bool = False
    contiguous: bool = True

    @property
    def nbytes(self) -> int:
        ne0, ne1, ne2, ne3 = self.ne
        return row_bytes(self.type, ne0) * ne1 * ne2 * ne3

    @property
    def nrows(self) -> int:
        return self.ne[1] * self.ne[2] * self.ne[3]

    @property
    def quantized(self) -> bool:
        return ggml_type(self.type).block_size > 1


def ne4(*dims: int) -> tuple[int, int, int, int]:
    """A 4-dim shape from 1-4 dims, padding with ones like ggml does."""
    full = [*dims, 1, 1, 1, 1][:4]
    return (full[0], full[1], full[2], full[3])


class Graph:
    """Nodes and leafs in the order `ggml_build_forward_expand` would record them."""

    def __init__(self) -> None:
        self.nodes: list[Tensor] = []
        self.leafs: list[Tensor] = []
        self._seen: set[int] = set()

    def expand(self, t: Tensor) -> None:
        """Add `t` and everything it depends on, sources first (ggml_visit_parents)."""
        stack: list[tuple[Tensor, int]] = [(t, 0)]
        while stack:
            cur, i = stack.pop()
            if id(cur) in self._seen:
                continue
            if i < len(cur.src):
                stack.append((cur, i + 1))
                stack.append((cur.src[i], 0))
                continue
            self._seen.add(id(cur))
            if cur.op == "none":
                self.leafs.append(cur)
            else:
                self.nodes.append(cur)


@dataclass
class _Block:
    offset: int
    size: int


class DynAllocator:
    """ggml_dyn_tallocr: best-fit over free blocks, the last block grows the buffer."""

    def __init__(self, alignment: int) -> None:
        self.alignment = alignment
        self.blocks: list[_Block] = [_Block(0, 1 << 62)]
        self.max_size = 0

    def _align(self, size: int) -> int:
        a = self.alignment
        return (size + a - 1) // a * a

    def alloc(self, size: int) -> int:
        size = self._align(size)
        best = -1
        best_size = 1 << 63
        for i, block in enumerate(self.blocks[:-1]):
            if block.size >= size and block.size <= best_size:
                best, best_size = i, block.size
        if best == -1:
            best = len(self.blocks) - 1
        block = self.blocks[best]
        offset = block.offset
        block.offset += size
        block.size -= size
        if block.size == 0:
            del self.blocks[best]
        self.max_size = max(self.max_size, offset + size)
        return offset

    def free(self, offset: int, size: int) -> None:
        size = self._align(size)
        for i, block in enumerate(self.blocks):
            if block.offset + block.size == offset:
                block.size += size
                if i + 1 < len(self.blocks):
                    nxt = self.blocks[i + 1]
                    if block.offset + block.size == nxt.offset:
                        block.size += nxt.size
                        del self.blocks[i + 1]
                return
            if offset + size == block.offset:
                block.offset = offset
                block.size += size
                if i > 0:
                    prev = self.blocks[i - 1]
                    if prev.offset + prev.size == block.offset:
                        prev.size += block.size
                        del self.blocks[i]
                return
        pos = 0
        while pos < len(self.blocks) and self.blocks[pos].offset < offset:
            pos += 1
        self.blocks.insert(pos, _Block(offset, size))


@dataclass
class _State:
    n_children: int = 0
    n_views: int = 0
    allocated: bool = False
    offset: int = 0
    backend: int = CPU


class Sizer:
    """How a backend's buffer type sizes a tensor (ggml_backend_buft_get_alloc_size)."""

    def __init__(self, cuda: bool) -> None:
        self.cuda = cuda

    def alloc_size(self, t: Tensor) -> int:
        size = t.nbytes
        if self.cuda:
            if t.op == "flash_attn_ext":
                size = _cuda_fattn_alloc_size(t)
            if t.quantized and t.ne[0] % MATRIX_ROW_PADDING:
                size += row_bytes(t.type, MATRIX_ROW_PADDING - t.ne[0] % MATRIX_ROW_PADDING)
        return size


def _cuda_fattn_alloc_size(dst: Tensor) -> int:
    """The CUDA FA output also holds f16 copies of a quantised K and V (fattn-common.cuh)."""
    end = dst.nbytes
    k, v = dst.src[1], dst.src[2]
    k_elems = k.ne[0] * k.ne[1] * k.ne[2] * k.ne[3]
    v_elems = v.ne[0] * v.ne[1] * v.ne[2] * v.ne[3]
    if k.type != "f16":
        end = (end + 127) // 128 * 128 + k_elems * 2
    if v.type != "f16":
        end = (end + 127) // 128 * 128 + v_elems * 2
    return end


def _same_layout(a: Tensor, b: Tensor) -> bool:
    return a.type == b.type and a.ne == b.ne and a.contiguous and b.contiguous


class GraphAllocator:
    """ggml_gallocr over a scheduled graph: one dynamic allocator per backend."""

    def __init__(self, alignments: dict[int, int], sizers: dict[int, Sizer]) -> None:
        self.allocs = {b: DynAllocator(a) for b, a in alignments.items()}
        self.sizers = sizers
        self.state: dict[int, _State] = {}

    def _st(self, t: Tensor) -> _State:
        st = self.state.get(id(t))
        if st is None:
            st = self.state[id(t)] = _State()
        return st

    def _is_allocated(self, t: Tensor) -> bool:
        return t.external or (t.view_src is not None and _root(t).external) or self._st(t).allocated

    def allocate(self, t: Tensor, backend: int) -> None:
        st = self._st(t)
        if self._is_allocated(t) or t.view_src is not None:
            return
        st.allocated = True
        if t.op in INPLACE_OPS:
            for parent in t.src:
                p = self._st(parent)
                if not p.allocated and not (
                    parent.view_src is not None and not _root(parent).external
                ):
                    continue
                if parent.is_output or (parent.view_src is not None and parent.view_src.is_output):
                    continue
                if parent.external or not _same_layout(t, parent):
                    continue
                if p.n_children != 1 or p.n_views != 0:
                    continue
                if parent.view_src is not None:
                    vs = parent.view_src
                    vst = self._st(vs)
                    if vst.n_views == 1 and vst.n_children == 0 and vst.allocated:
                        st.backend, st.offset = vst.backend, vst.offset
                        vst.allocated = False
                        p.allocated = False
                        self._free_extra(t, vs, vst)
                        return
                    continue
                if not p.allocated:
                    continue
                st.backend, st.offset = p.backend, p.offset
                p.allocated = False
                self._free_extra(t, parent, p)
                return
        size = self.sizers[backend].alloc_size(t)
        st.backend = backend
        st.offset = self.allocs[backend].alloc(size)

    def _free_extra(self, node: Tensor, parent: Tensor, pst: _State) -> None:
        alloc = self.allocs[pst.backend]
        psize = alloc._align(self.sizers[pst.backend].alloc_size(parent))
        nsize = alloc._align(self.sizers[pst.backend].alloc_size(node))
        if psize > nsize:
            alloc.free(pst.offset + nsize, psize - nsize)

    def free(self, t: Tensor) -> None:
        if t.is_output:
            return
        st = self._st(t)
        self.allocs[st.backend].free(st.offset, self.sizers[st.backend].alloc_size(t))
        st.allocated = False

    def run(self, nodes: list[Tensor], leafs: list[Tensor]) -> dict[int, int]:  # noqa: PLR0912 (mirrors ggml-alloc.c)
        """Allocate the whole graph; returns the buffer size per backend in bytes."""
        for leaf in leafs:
            self.allocate(leaf, _backend(leaf))
        for node in nodes:
            if node.view_src is not None and node.op != "none":
                self._st(node.view_src).n_views += 1
            if node.is_input:
                self.allocate(node, _backend(node))
            for s in node.src:
                self._st(s).n_children += 1
                if s.is_input:
                    self.allocate(s, _backend(node))
        for node in nodes:
            b = _backend(node)
            for parent in node.src:
                self.allocate(parent, b)
            self.allocate(node, b)
            for parent in node.src:
                p = self._st(parent)
                p.n_children -= 1
                if p.n_children == 0 and p.n_views == 0:
                    if parent.view_src is not None:
                        vs = parent.view_src
                        vst = self._st(vs)
                        vst.n_views -= 1
                        if vst.n_views == 0 and vst.n_children == 0 and vst.allocated:
                            self.free(vs)
                    elif p.allocated:
                        self.free(parent)
        return {b: a.max_size for b, a in self.allocs.items()}


def _root(t: Tensor) -> Tensor:
    while t.view_src is not None:
        t = t.view_src
    return t


def _backend(t: Tensor) -> int:
    return CPU if t.backend is None else t.backend


# --------------------------------------------------------------------------- scheduler

OFFLOAD_MIN_BATCH = 32
"""ggml-cuda offloads an op on host weights to the GPU from this batch size on."""


VIEW_OPS = frozenset({"view", "reshape", "permute", "transpose"})
"""ggml_is_view_op: nodes the scheduler skips when it expands backends and splits the graph."""


def _src_backend(s: Tensor) -> int:
    """Where a source lives: a view of a pre-allocated tensor lives in that tensor's buffer."""
    return _backend(_root(s)) if (s.view_src is not None and _root(s).external) else _backend(s)


def _op_batch(t: Tensor) -> int:
    if t.op == "get_rows":
        return 0
    if t.op == "mul_mat":
        return t.ne[1]
    if t.op in ("mul_mat_id", "rope"):
        return t.ne[2]
    return t.nrows


def schedule(  # noqa: PLR0912, PLR0915 (mirrors ggml-backend.cpp)
    graph: Graph, n_gpus: int, offload_gpu: int | None
) -> tuple[list[Tensor], list[Tensor]]:
    """Assign backends like ggml_backend_sched_split_graph and insert cross-device copies.

    `offload_gpu` is the GPU that takes ops on host weights at large batch (op offload),
    None when there is no GPU. Returns the nodes and leafs the allocator sees.
    """
    nodes, leafs = graph.nodes, graph.leafs
    # pass 1: weights, pre-allocated tensors, inputs
    for t in [*leafs, *nodes]:
        if t.backend is not None:
            continue
        if t.view_src is not None and _root(t).external:
            t.backend = _root(t).backend
            continue
        if t.is_input:
            t.backend = CPU
            continue
        if t.op in ("rope", "flash_attn_ext"):
            continue
        for s in t.src:
            if s.weight:
                b = _backend(s)
                if b == CPU and offload_gpu is not None and _op_batch(t) >= OFFLOAD_MIN_BATCH:
                    b = offload_gpu
                t.backend = b
                break
    ops = [t for t in nodes if t.op not in VIEW_OPS]  # views follow their source (pass 4)
    if n_gpus:
        for order in (ops, ops[::-1]):  # pass 2a/2b: expand GPU backends
            cur: int | None = None
            for t in order:
                if t.backend is not None:
                    cur = None if t.backend == CPU else t.backend
                elif cur is not None:
                    t.backend = cur
    for order in (ops, ops[::-1]):  # pass 2c/2d: expand the rest
        cur = None
        for t in order:
            if t.backend is not None:
                cur = t.backend
            elif cur is not None:
                t.backend = cur
    first_backend = 0 if n_gpus else CPU
    for t in nodes:  # pass 4: views follow their source, unassigned sources their user
        if t.backend is None and t.view_src is not None:
            t.backend = t.view_src.backend
        if t.backend is None:
            t.backend = first_backend
        for s in t.src:
            if s.backend is None:
                s.backend = _backend(s.view_src) if s.view_src is not None else t.backend
    # pass 5: splits and copies of inputs that live on another device. A split also ends
    # before a node that reads a weight from a buffer its backend cannot use, once the split
    # already has inputs (need_new_split): each offloaded op then gets its own split, its
    # weight copy is allocated at that split's start and freed after its one user, so the
    # copies of consecutive ops share memory instead of all living at once. One copy per
    # input (n_copies 1): llama.cpp turns pipeline parallelism (n_copies 4) off whenever
    # weights stay on the host (tensor overrides, or fewer -ngl than layers + 1).
    out: list[Tensor] = []
    copies: dict[tuple[int, int], Tensor] = {}
    split_start = 0
    split_inputs = 0
    cur_backend: int | None = None
    for t in nodes:
        if t.op in VIEW_OPS:
            out.append(t)
            continue
        b = _backend(t)
        need_new_split = split_inputs > 0 and any(s.weight and _backend(s) != b for s in t.src)
        if b != cur_backend or need_new_split:
            split_start = len(out)
            split_inputs = 0
            cur_backend = b
        new_src: list[Tensor] = []
        for s in t.src:
            sb = _src_backend(s)
            if sb != b:
                key = (id(s), b)
                cpy = copies.get(key)
                if cpy is None:
                    cpy = Tensor(f"{s.name}#{b}", s.ne, s.type, op="copy", backend=b)
                    dep = Tensor(f"{s.name}#dep", s.ne, s.type, op="none", src=[s], backend=sb)
                    dep.view_src = s
                    copies[key] = cpy
                    out.insert(split_start, cpy)
                    out.insert(split_start, dep)
                    split_inputs += 1
                new_src.append(cpy)
            else:
                new_src.append(s)
        t.src = new_src
        out.append(t)
    return out, leafs
