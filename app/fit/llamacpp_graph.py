"""The worst-case graph llama.cpp reserves its compute buffers with, rebuilt op by op.

Mirrors llm_graph_context (src/llama-graph.cpp) and the per-architecture builders in
src/models/ (qwen3, qwen3moe, llama, gemma3 …) for the shapes that matter: the reserve
graph has `n_ubatch` tokens, one output per sequence (llama-server sets n_outputs_max to
its slot count), and attends over the whole cache (n_kv = cells per stream).
Architectures without a builder here use the llama-style decoder, the common case.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from app.fit.ggml_sim import Graph, Tensor, ne4
from app.fit.model_info import ModelInfo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GraphParams:
    """The reserve-time shapes and settings (llama_context::sched_reserve / graph_reserve)."""

    n_tokens: int
    n_seqs: int
    n_outputs: int
    n_stream: int
    n_kv: int
    n_kv_swa: int
    flash_attn: bool
    type_k: str
    type_v: str
    attn_rot_k: bool
    attn_rot_v: bool
    n_expert_used: int


WeightFn = Callable[[str], Tensor | None]
KvFn = Callable[[int, str], Tensor]


def _new(  # noqa: PLR0917 (a ggml op: name, shape, op, sources, type, view)
    name: str,
    ne: tuple[int, int, int, int],
    op: str,
    src: list[Tensor],
    type_: str = "f32",
    view_of: Tensor | None = None,
    contiguous: bool = True,
) -> Tensor:
    t = Tensor(name, ne, type_, op=op, src=src, contiguous=contiguous)
    t.view_src = view_of
    return t


def _view(
    a: Tensor, ne: tuple[int, int, int, int], contiguous: bool = True, op: str = "view"
) -> Tensor:
    root = a.view_src if a.view_src is not None else a
    return _new(f"{a.name}(view)", ne, op, [a], a.type, view_of=root, contiguous=contiguous)


def _permute(a: Tensor, order: tuple[int, int, int, int]) -> Tensor:
    ne = [0, 0, 0, 0]
    for i, axis in enumerate(order):
        ne[axis] = a.ne[i]
    return _view(a, (ne[0], ne[1], ne[2], ne[3]), contiguous=order == (0, 1, 2, 3), op="permute")


def _mul_mat(w: Tensor, x: Tensor) -> Tensor:
    return _new("mul_mat", (w.ne[1], x.ne[1], x.ne[2], x.ne[3]), "mul_mat", [w, x])


def _unary(op: str, a: Tensor, *rest: Tensor) -> Tensor:
    return _new(op, a.ne, op, [a, *rest])


class _Builder:
    def __init__(self, m: ModelInfo, p: GraphParams, weight: WeightFn, kv: KvFn) -> None:
        self.m, self.p, self.w, self.kv = m, p, weight, kv
        self.g = Graph()

    # ------------------------------------------------------------------ inputs
    def inputs(self) -> None:
        p, m = self.p, self.m
        self.tokens = Tensor("inp_tokens", ne4(p.n_tokens), "i32", is_input=True)
        self.embd_in = Tensor("inp_embd", ne4(m.n_embd, p.n_tokens), "f32", is_input=True)
        self.pos = Tensor("inp_pos", ne4(p.n_tokens), "i32", is_input=True)
        mask_type = "f16" if p.flash_attn else "f32"
        per = p.n_tokens // p.n_stream
        self.k_idxs = Tensor("k_idxs", ne4(p.n_tokens), "i64", is_input=True)
        v_idx_n = (
            p.n_tokens
            if p.flash_attn
            else p.n_tokens * max(m.n_embd_v_gqa(il) for il in range(m.n_layer))
        )
        self.v_idxs = Tensor("v_idxs", ne4(v_idx_n), "i64", is_input=True)
        self.mask = Tensor("kq_mask", ne4(p.n_kv, per, 1, p.n_stream), mask_type, is_input=True)
        self.mask_swa: Tensor | None = None
        if any(m.swa_layers):
            self.k_idxs_swa = Tensor("k_idxs_swa", ne4(p.n_tokens), "i64", is_input=True)
            self.v_idxs_swa = Tensor("v_idxs_swa", self.v_idxs.ne, "i64", is_input=True)
            self.mask_swa = Tensor(
                "kq_mask_swa", ne4(p.n_kv_swa, per, 1, p.n_stream), mask_type, is_input=True
            )
        self.rot_k = self.rot_v = None
        if p.attn_rot_k:
            n = _rot_size(m.head_k)
            self.rot_k = Tensor("k_rot", ne4(n, n), "f32", is_input=True)
        if p.attn_rot_v:
            self.rot_v = Tensor("v_rot", ne4(64, 64), "f32", is_input=True)  # always the smallest
        self.out_ids = Tensor("out_ids", ne4(p.n_outputs), "i32", is_input=True)

    def embed(self) -> Tensor:
        tok = self.w("token_embd.weight")
        assert tok is not None
        rows = _new("get_rows", ne4(tok.ne[0], self.p.n_tokens), "get_rows", [tok, self.tokens])
        self.g.expand(rows)
        self.g.expand(self.embd_in)
        return rows

    # ------------------------------------------------------------------ blocks
    def norm(self, x: Tensor, weight_name: str) -> Tensor:
        cur = _unary("rms_norm", x)
        w = self.w(weight_name)
        if w is not None:
            cur = _new("mul", cur.ne, "mul", [cur, w])
        return cur

    def _hadamard(self, x: Tensor, rot: Tensor | None) -> Tensor:
        if rot is None:
            return x
        n = rot.ne[0]
        total = x.ne[0] * x.ne[1] * x.ne[2] * x.ne[3]
        r = _view(x, ne4(n, total // n))
        out = _mul_mat(rot, r)
        return _view(out, x.ne)

    def attention(self, il: int, cur: Tensor, scale_q: bool = False) -> Tensor:  # noqa: PLR0915
        m, p = self.m, self.p
        n_tok = p.n_tokens
        hk, hv = m.head_k_at(il), m.head_v_at(il)
        nh, nkv = m.n_head[il], m.n_head_kv[il]
        pre = f"blk.{il}."
        q = _view(_mul_mat(self._req(pre + "attn_q.weight"), cur), ne4(hk, nh, n_tok))
        k = _view(_mul_mat(self._req(pre + "attn_k.weight"), cur), ne4(hk, nkv, n_tok))
        v = _view(_mul_mat(self._req(pre + "attn_v.weight"), cur), ne4(hv, nkv, n_tok))
        if self.w(pre + "attn_q_norm.weight") is not None:
            q = self.norm(q, pre + "attn_q_norm.weight")
        if m.arch not in _NO_ROPE:
            q = _unary("rope", q, self.pos)
        if self.w(pre + "attn_k_norm.weight") is not None:
            k = self.norm(k, pre + "attn_k_norm.weight")
        if m.arch not in _NO_ROPE:
            k = _unary("rope", k, self.pos)
        if scale_q:
            q = _unary("scale", q)
        q = self._hadamard(q, self.rot_k)
        k = self._hadamard(k, self.rot_k)
        v = self._hadamard(v, self.rot_v)
        self.g.expand(q)
        self.g.expand(v)
        self.g.expand(k)
        swa = m.swa_layers[il]
        k_idxs = self.k_idxs_swa if swa else self.k_idxs
        v_idxs = self.v_idxs_swa if swa else self.v_idxs
        mask = self.mask_swa if swa and self.mask_swa is not None else self.mask
        kc, vc = self.kv(il, "k"), self.kv(il, "v")
        self.g.expand(
            _new(
                "set_rows",
                kc.ne,
                "set_rows",
                [kc, _view(k, ne4(hk * nkv, n_tok)), k_idxs],
                kc.type,
                view_of=kc,
            )
        )
        self.g.expand(
            _new(
                "set_rows",
                vc.ne,
                "set_rows",
                [vc, _view(v, ne4(hv * nkv, n_tok)), v_idxs],
                vc.type,
                view_of=vc,
            )
        )
        ns = p.n_stream
        n_kv = mask.ne[0]
        per = n_tok // ns
        qv = _permute(_view(q, ne4(hk, nh, per, ns)), (0, 2, 1, 3))
        kview = _view(kc, ne4(hk, nkv, n_kv, ns), contiguous=False)
        kp = _permute(kview, (0, 2, 1, 3))
        if p.flash_attn:
            vview = _view(vc, ne4(hv, nkv, n_kv, ns), contiguous=False)
            vp = _permute(vview, (0, 2, 1, 3))
            fa = _new("flash_attn_ext", ne4(hv, nh, per, ns), "flash_attn_ext", [qv, kp, vp, mask])
            out = _view(fa, ne4(hv * nh, n_tok))
        else:
            vview = _view(vc, ne4(n_kv, nkv, hv, ns), contiguous=False)
            vp = _permute(vview, (0, 2, 1, 3))
            kq = _mul_mat(kp, qv)
            kq = _new("soft_max", kq.ne, "soft_max", [kq, mask])
            kqv = _mul_mat(vp, kq)
            perm = _permute(kqv, (0, 2, 1, 3))
            out = _new("cont", ne4(hv * nh, n_tok), "cont", [perm])
        self.g.expand(out)
        out = self._hadamard(out, self.rot_v)
        return _mul_mat(self._req(pre + "attn_output.weight"), out)

    def ffn(self, il: int, cur: Tensor, act: str = "swiglu") -> Tensor:
        pre = f"blk.{il}."
        up = _mul_mat(self._req(pre + "ffn_up.weight"), cur)
        gate_w = self.w(pre + "ffn_gate.weight")
        if gate_w is not None:
            gate = _mul_mat(gate_w, cur)
            h = _new(act, gate.ne, "glu", [gate, up])
        else:
            h = _unary("unary", up)
        return _mul_mat(self._req(pre + "ffn_down.weight"), h)

    def moe(self, il: int, cur: Tensor) -> Tensor:
        m, p = self.m, self.p
        pre = f"blk.{il}."
        n_tok = cur.ne[1]
        n_used = p.n_expert_used
        logits = _mul_mat(self._req(pre + "ffn_gate_inp.weight"), cur)
        probs = _unary("soft_max", logits)
        sort = _new("argsort", probs.ne, "argsort", [probs], "i32")
        selected = _view(sort, ne4(n_used, n_tok), contiguous=False)
        probs3 = _view(probs, ne4(1, m.n_expert, n_tok))
        weights = _new("get_rows", ne4(1, n_used, n_tok), "get_rows", [probs3, selected])
        w2 = _view(weights, ne4(n_used, n_tok))
        wsum = _new("sum_rows", ne4(1, n_tok), "sum_rows", [w2])
        wsum = _unary("clamp", wsum)
        w2 = _new("div", w2.ne, "div", [w2, wsum])
        weights = _view(w2, ne4(1, n_used, n_tok))
        self.g.expand(weights)
        x = _view(cur, ne4(cur.ne[0], 1, n_tok))

        def mm_id(wname: str, inp: Tensor) -> Tensor:
            w = self._req(wname)
            return _new("mul_mat_id", ne4(w.ne[1], n_used, n_tok), "mul_mat_id", [w, inp, selected])

        up = mm_id(pre + "ffn_up_exps.weight", x)
        gate = mm_id(pre + "ffn_gate_exps.weight", x)
        h = _new("swiglu", gate.ne, "glu", [gate, up])
        experts = mm_id(pre + "ffn_down_exps.weight", h)
        experts = _new("mul", experts.ne, "mul", [experts, weights])
        self.g.expand(experts)
        views = [_view(experts, ne4(m.n_embd, n_tok), contiguous=False) for _ in range(n_used)]
        for vw in views:
            self.g.expand(vw)
        out = views[0]
        for vw in views[1:]:
            out = _new("add", out.ne, "add", [out, vw], contiguous=True)
            self.g.expand(out)
        if n_used == 1:
            out = _new("cont", out.ne, "cont", [out])
        return out

    def _req(self, name: str) -> Tensor:
        t = self.w(name)
        if t is None:
            raise KeyError(name)
        return t

    def head(self, x: Tensor) -> None:
        cur = self.norm(x, "output_norm.weight")
        cur.is_output = True
        out_w = self.w("output.weight") or self._req("token_embd.weight")
        logits = _mul_mat(out_w, cur)
        if self.m.arch in _SOFTCAP_FINAL:
            logits = _unary("scale", _unary("unary", _unary("scale", logits)))
        logits.is_output = True
        self.g.expand(logits)

    def select_outputs(self, a: Tensor) -> Tensor:
        return _new("get_rows", ne4(a.ne[0], self.p.n_outputs), "get_rows", [a, self.out_ids])


_NO_ROPE: frozenset[str] = frozenset()
_SOFTCAP_FINAL = frozenset({"gemma2"})
_GEMMA = frozenset({"gemma2", "gemma3"})


def _rot_size(head: int) -> int:
    """The Hadamard size llama_kv_cache::build_input_k_rot picks for a head size."""
    n = 64
    while head % (n * 2) == 0:
        n *= 2
    return n


def build_graph(m: ModelInfo, p: GraphParams, weight: WeightFn, kv: KvFn) -> Graph:
    """The reserve graph of a decoder model, in llama.cpp's node order."""
    b = _Builder(m, p, weight, kv)
    b.inputs()
    inp = b.embed()
    gemma = m.arch in _GEMMA
    if gemma:
        inp = _unary("scale", inp)
    b.g.expand(b.pos)
    for il in range(m.n_layer):
        pre = f"blk.{il}."
        cur = b.norm(inp, pre + "attn_norm.weight")
        cur = b.attention(il, cur, scale_q=gemma)
        res_in = inp
        if il == m.n_layer - 1:
            cur = b.select_outputs(cur)
            res_in = b.select_outputs(inp)
        if gemma:
            cur = b.norm(cur, pre + "post_attention_norm.weight")
        ffn_inp = _new("add", cur.ne, "add", [cur, res_in])
        cur = b.norm(ffn_inp, pre + "ffn_norm.weight")
        if m.is_moe and weight(pre + "ffn_gate_inp.weight") is not None:
            cur = b.moe(il, cur)
            if weight(pre + "ffn_up_shexp.weight") is not None:
                shared = _mul_mat(
                    b._req(pre + "ffn_down_shexp.weight"),
                    _new(
                        "swiglu",
                        ne4(b._req(pre + "ffn_up_shexp.weight").ne[1], cur.ne[1]),
                        "glu",
                        [
                            _mul_mat(b._req(pre + "ffn_gate_shexp.weight"), cur),
                            _mul_mat(b._req(pre + "ffn_up_shexp.weight"), cur),
                        ],
                    ),
                )
                cur = _new("add", cur.ne, "add", [cur, shared])
        else:
            cur = b.ffn(il, cur, "geglu" if gemma else "swiglu")
        if gemma:
            cur = b.norm(cur, pre + "post_ffw_norm.weight")
        inp = _new("add", cur.ne, "add", [cur, ffn_inp])
    b.head(inp)
    return b.g
