"""Explain a model's settings: what each means and whether a launch can change it."""

from __future__ import annotations

from dataclasses import dataclass

from app.fit.model_info import ModelInfo


@dataclass(frozen=True)
class Setting:
    name: str
    value: str
    meaning: str
    runtime: bool
    why: str


def explain(m: ModelInfo) -> list[Setting]:
    """One line per setting; `runtime` says whether a launch flag may change it, `why` why."""
    fixed = "the weights' shapes are built on it"
    out = [
        Setting("architecture", m.arch, "the layer layout the engine builds", False, fixed),
        Setting(
            "layers",
            str(m.n_layer),
            "transformer blocks; KV cache and weights scale with it",
            False,
            "each layer has its own trained weights",
        ),
        Setting("hidden size", str(m.n_embd), "width of every token's vector", False, fixed),
        Setting("attention heads", str(m.n_head[0]), "query heads per layer", False, fixed),
        Setting(
            "KV heads",
            str(m.n_head_kv[0]),
            "key/value heads per layer (grouped-query attention); KV cache scales with it",
            False,
            "the K and V projection matrices have this many heads",
        ),
        Setting("head size", str(m.head_k), "values per head", False, fixed),
        Setting(
            "vocabulary",
            str(m.n_vocab),
            "tokens the model knows; sizes embeddings and logits",
            False,
            "embedding and output matrices have one row per token",
        ),
        Setting(
            "context (trained)",
            str(m.n_ctx_train),
            "positions seen in training; -c may go beyond it with RoPE/YaRN scaling",
            True,
            "a launch flag (--rope-scaling, --yarn-orig-ctx) sets the scaling",
        ),
        Setting(
            "KV cache type",
            "f16 by default",
            "precision of cached keys/values (-ctk/-ctv)",
            True,
            "the cache is allocated at launch",
        ),
        Setting(
            "batch / micro-batch",
            "2048 / 512 by default",
            "tokens per prompt step; the compute buffer grows with the micro-batch",
            True,
            "buffers are sized at launch",
        ),
    ]
    if m.n_ff[0]:
        out.append(
            Setting(
                "FFN width", str(m.n_ff[0]), "hidden width of the feed-forward block", False, fixed
            )
        )
    if m.is_moe:
        out.append(
            Setting(
                "experts",
                str(m.n_expert),
                "expert FFNs per layer",
                False,
                "each expert is its own weights",
            )
        )
        out.append(
            Setting("expert width", str(m.n_ff_exp), "hidden width of one expert", False, fixed)
        )
        out.append(
            Setting(
                "experts per token",
                str(m.n_expert_used),
                "experts each token is routed to; changes quality and speed, barely memory",
                True,
                "a routing choice at run time (--override-kv …expert_used_count)",
            )
        )
    if m.n_swa:
        out.append(
            Setting(
                "sliding window",
                str(m.n_swa),
                "local layers attend to this many recent tokens; their KV cache is that size",
                False,
                "the model was trained with this window",
            )
        )
    return out
