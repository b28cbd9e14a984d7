"""The tiny GGUF writer produces the layout llama.cpp and Rigdeck's library read.

llama-server loading these files is proven in test_backend_chain; these checks pin the
metadata and shapes that memory estimates and adapter matching depend on.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import pytest

from tests.realparts.fixtures import TinyGgufFactory
from tests.realparts.gguf_factory import TinyModelSpec
from tests.realparts.tiny_vocab import MIN_VOCAB_SIZE, build_vocab


def _fields(path: Path) -> tuple[dict[str, object], dict[str, list[int]]]:
    reader = gguf.GGUFReader(path)
    values = {name: field.contents() for name, field in reader.fields.items()}
    shapes = {t.name: [int(n) for n in t.shape] for t in reader.tensors}
    return values, shapes


def test_a_moe_model_has_the_asked_shape(tiny_gguf: TinyGgufFactory) -> None:
    path = tiny_gguf(arch="qwen3moe", layers=3, hidden_size=32, experts=6, experts_used=3,
                     expert_ffn_size=24, vocab_size=400, context_length=8192)
    values, shapes = _fields(path)
    assert values["general.architecture"] == "qwen3moe"
    assert values["qwen3moe.block_count"] == 3
    assert values["qwen3moe.expert_count"] == 6
    assert values["qwen3moe.expert_used_count"] == 3
    assert values["qwen3moe.context_length"] == 8192
    # ggml order: ne {n_embd, n_ff_exp, n_expert}
    assert shapes["blk.2.ffn_gate_exps.weight"] == [32, 24, 6]
    assert shapes["blk.0.ffn_down_exps.weight"] == [24, 32, 6]
    assert shapes["token_embd.weight"] == [32, 400]
    assert len(values["tokenizer.ggml.tokens"]) == 400  # type: ignore[arg-type]
    assert "enable_thinking" in str(values["tokenizer.chat_template"])


def test_a_lora_adapter_matches_its_base(tiny_gguf: TinyGgufFactory) -> None:
    base = TinyModelSpec(heads=8, kv_heads=2, head_dim=8)
    path = tiny_gguf.lora(base, rank=2, alpha=4.0, targets=("attn_q", "attn_k"))
    values, shapes = _fields(path)
    assert values["general.type"] == "adapter"
    assert values["adapter.type"] == "lora"
    assert values["adapter.lora.alpha"] == pytest.approx(4.0)
    assert shapes["blk.1.attn_q.weight.lora_a"] == [64, 2]
    assert shapes["blk.1.attn_q.weight.lora_b"] == [2, 64]
    assert shapes["blk.0.attn_k.weight.lora_b"] == [2, 16]
    assert "blk.0.attn_v.weight.lora_a" not in shapes


@pytest.mark.parametrize("size", [MIN_VOCAB_SIZE, 512, 2000])
def test_every_merge_joins_two_tokens_into_a_third(size: int) -> None:
    vocab = build_vocab(size)
    tokens = set(vocab.tokens)
    assert len(vocab.tokens) == len(tokens) == size
    for merge in vocab.merges:
        left, right = merge.split(" ")
        assert {left, right, left + right} <= tokens


def test_inconsistent_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="kv_heads"):
        TinyModelSpec(heads=6, kv_heads=4)
    with pytest.raises(ValueError, match="vocab_size"):
        build_vocab(100)
