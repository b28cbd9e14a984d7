"""vLLM's memory split from a Hugging Face folder this test writes (config + safetensors).

Every expected number is worked out here from the config's own values, the way vLLM
sizes things: weights shard by tensor parallelism, the KV cache gets what the budget
leaves, and concurrency is KV tokens over the model length.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from app.errors import UserError
from app.fit.plan import MIB
from app.fit.vllm_estimate import VllmPlan, estimate_vllm, kv_bytes_per_token, weight_bytes

CONFIG = {
    "architectures": ["Qwen3ForCausalLM"],
    "hidden_size": 256,
    "num_hidden_layers": 4,
    "num_attention_heads": 8,
    "num_key_value_heads": 4,
    "head_dim": 32,
    "intermediate_size": 512,
    "vocab_size": 1000,
    "max_position_embeddings": 32768,
    "torch_dtype": "bfloat16",
    "tie_word_embeddings": False,
}


def _write_safetensors(path: Path, tensors: dict[str, tuple[str, tuple[int, ...]]]) -> int:
    """A real safetensors file (8-byte header length, JSON header, zeroed data); its data bytes."""
    sizes = {"BF16": 2, "F32": 4}
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        n = sizes[dtype]
        for dim in shape:
            n *= dim
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(offset))
    return offset


def _model_folder(tmp_path: Path, config: dict[str, object] | None = None) -> tuple[Path, int]:
    """config.json and two safetensors shards holding every weight of CONFIG; total bytes."""
    folder = tmp_path / "hf-model"
    folder.mkdir()
    cfg = config or CONFIG
    (folder / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    h, ff, v = 256, 512, 1000
    q, kv = 8 * 32, 4 * 32
    first: dict[str, tuple[str, tuple[int, ...]]] = {"model.embed_tokens.weight": ("BF16", (v, h))}
    second: dict[str, tuple[str, tuple[int, ...]]] = {"lm_head.weight": ("BF16", (v, h))}
    for il in range(4):
        shard = first if il < 2 else second
        p = f"model.layers.{il}."
        shard[p + "self_attn.q_proj.weight"] = ("BF16", (q, h))
        shard[p + "self_attn.k_proj.weight"] = ("BF16", (kv, h))
        shard[p + "self_attn.v_proj.weight"] = ("BF16", (kv, h))
        shard[p + "self_attn.o_proj.weight"] = ("BF16", (h, q))
        shard[p + "mlp.gate_proj.weight"] = ("BF16", (ff, h))
        shard[p + "mlp.up_proj.weight"] = ("BF16", (ff, h))
        shard[p + "mlp.down_proj.weight"] = ("BF16", (h, ff))
        shard[p + "input_layernorm.weight"] = ("BF16", (h,))
        shard[p + "post_attention_layernorm.weight"] = ("BF16", (h,))
    total = _write_safetensors(folder / "model-00001-of-00002.safetensors", first)
    total += _write_safetensors(folder / "model-00002-of-00002.safetensors", second)
    return folder, total


def test_weights_are_the_safetensors_data_and_split_by_tensor_parallel(tmp_path: Path) -> None:
    folder, data_bytes = _model_folder(tmp_path)
    # per layer: q 256x256 + k,v 128x256 each + o 256x256 + 3 MLP 512x256 + 2 norms of 256
    per_layer = 256 * 256 * 2 + 128 * 256 * 2 + 3 * 512 * 256 + 2 * 256
    # plus the embedding and the untied lm_head, 1000x256 each; bf16 = 2 bytes
    expected = (4 * per_layer + 2 * 1000 * 256) * 2
    assert data_bytes == expected
    assert weight_bytes(folder, CONFIG, "auto") == expected

    one = estimate_vllm(folder, VllmPlan(tensor_parallel=1, gpu_memory_mib=24576))
    two = estimate_vllm(folder, VllmPlan(tensor_parallel=2, gpu_memory_mib=24576))
    assert [d.weights_mib for d in one.estimate.devices] == [expected / MIB]
    assert [d.weights_mib for d in two.estimate.devices] == [expected / 2 / MIB] * 2


def test_weights_without_safetensors_come_from_the_config(tmp_path: Path) -> None:
    folder = tmp_path / "config-only"
    folder.mkdir()
    # the same model counted from its shapes: attention (q,o: 256x256; k,v: 256x128),
    # MLP 3 x 256x512, two norms per layer, embeddings in and out, the final norm
    params = 4 * (256 * 256 * 2 + 256 * 128 * 2 + 3 * 256 * 512 + 2 * 256) + 2 * 1000 * 256 + 256
    assert weight_bytes(folder, CONFIG, "auto") == params * 2  # torch_dtype bfloat16
    assert weight_bytes(folder, CONFIG, "float32") == params * 4


def test_kv_bytes_per_token_from_the_config() -> None:
    # K and V (2) x 4 layers x 4 KV heads x head_dim 32 x 2 bytes (bf16)
    assert kv_bytes_per_token(CONFIG, 1, "auto", "auto") == 2 * 4 * 4 * 32 * 2
    # tensor parallel 2: each GPU keeps 2 of the 4 KV heads
    assert kv_bytes_per_token(CONFIG, 2, "auto", "auto") == 2 * 4 * 2 * 32 * 2
    # an fp8 cache: one byte per value
    assert kv_bytes_per_token(CONFIG, 1, "fp8", "auto") == 2 * 4 * 4 * 32 * 1
    # more GPUs than KV heads: each still holds one head (replicated)
    assert kv_bytes_per_token(CONFIG, 8, "auto", "auto") == 2 * 4 * 1 * 32 * 2


@pytest.mark.parametrize(("utilisation", "gpu_mib", "tp"), [(0.9, 24576, 1), (0.5, 16384, 2)])
def test_kv_tokens_and_concurrency_for_a_budget(
    tmp_path: Path, utilisation: float, gpu_mib: int, tp: int
) -> None:
    folder, data_bytes = _model_folder(tmp_path)
    plan = VllmPlan(
        tensor_parallel=tp,
        gpu_memory_utilization=utilisation,
        gpu_memory_mib=gpu_mib,
        max_model_len=8192,
        max_num_seqs=64,
        max_num_batched_tokens=4096,
    )
    v = estimate_vllm(folder, plan)

    budget = utilisation * gpu_mib * MIB  # vLLM's share of the card
    weights = data_bytes / tp  # this GPU's shard
    # the profiled peak: batched tokens x (hidden states 4h + MLP 3 x ff x experts used / tp)
    # in bf16, plus logits of max_num_seqs rows x vocab in fp32 split over tp
    activation = 4096 * (4 * 256 + 3 * 512 * 1 // tp) * 2 + 64 * 1000 * 4 // tp
    runtime = (580 + 512) * MIB  # CUDA context and the CUDA graphs vLLM keeps room for
    per_token = 2 * 4 * (4 // tp) * 32 * 2
    tokens = int((budget - weights - activation - runtime) // per_token) // 16 * 16  # 16-blocks
    assert v.kv_bytes_per_token == per_token
    assert v.kv_cache_tokens == tokens
    assert v.max_model_len == 8192
    assert v.max_concurrency == pytest.approx(tokens / 8192)
    assert v.estimate.devices[0].kv_mib == pytest.approx(tokens * per_token / MIB)
    assert f"GPU KV cache size: {tokens:,} tokens" in v.estimate.notes
    assert len(v.estimate.devices) == tp


def test_a_budget_smaller_than_the_weights_leaves_no_kv_cache(tmp_path: Path) -> None:
    folder, _ = _model_folder(tmp_path)
    v = estimate_vllm(folder, VllmPlan(gpu_memory_utilization=0.1, gpu_memory_mib=1024))
    assert v.kv_cache_tokens == 0
    assert v.max_concurrency == 0.0


def test_a_folder_without_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"no config\.json"):
        estimate_vllm(tmp_path, VllmPlan())


@pytest.mark.parametrize(("change", "said"), [
    ({"num_attention_heads": 0}, "num_attention_heads must be a whole number above 0, not 0"),
    ({"num_key_value_heads": -2}, "num_key_value_heads must be a whole number above 0"),
    ({"hidden_size": "4096"}, "hidden_size must be a whole number above 0, not '4096'"),
    ({"num_hidden_layers": None}, "num_hidden_layers must be a whole number above 0, not None"),
])
def test_a_config_with_impossible_sizes_is_refused_with_the_key(
        tmp_path: Path, change: dict[str, object], said: str) -> None:
    (tmp_path / "config.json").write_text(json.dumps({**CONFIG, **change}), encoding="utf-8")
    with pytest.raises(UserError, match=said):
        estimate_vllm(tmp_path, VllmPlan())


def test_a_config_that_is_not_json_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_bytes(b"\xff\xfe not json")
    with pytest.raises(UserError, match="cannot be read as JSON"):
        estimate_vllm(tmp_path, VllmPlan())
