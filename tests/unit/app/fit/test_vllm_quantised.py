"""vLLM's weights from config.json alone for quantised checkpoints, checked against the
safetensors headers of checkpoints written here in each format's own layout.

Each checkpoint is a real safetensors file (written by the `safetensors` package) with the
tensor names and dtypes the format stores: GPTQ `qweight`/`qzeros` int32, `scales` fp16,
`g_idx` int32; AWQ `qweight`/`qzeros`/`scales`; FP8 `weight` float8_e4m3fn beside
`weight_scale` (per tensor) or `weight_scale_inv` (per 128x128 block); compressed-tensors
`weight_packed`/`weight_scale`/`weight_shape`; bitsandbytes packed 4-bit with `absmax` and
`quant_map`, or int8 with `SCB`. The config-only count must agree with the header sum
within 1 %.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import safetensors

from app.cli.main import main
from app.errors import UserError
from app.fit.hf_weights import count_weights
from app.fit.plan import MIB
from app.fit.vllm_estimate import (
    VllmPlan,
    default_max_num_batched_tokens,
    default_max_num_seqs,
    estimate_vllm,
    kv_bytes_per_token,
    safetensors_weights,
)

GIB = 1024**3
Tensors = dict[str, tuple[str, tuple[int, ...]]]
ITEM = {"F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "I32": 4, "I64": 8, "I8": 1, "U8": 1}
NAMES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F8_E4M3": "float8_e4m3fn",
         "I32": "int32", "I64": "int64", "I8": "int8", "U8": "uint8"}

DENSE: dict[str, Any] = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 256,
    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "head_dim": 64, "intermediate_size": 512, "vocab_size": 1000,
    "max_position_embeddings": 4096, "torch_dtype": "float16", "tie_word_embeddings": False,
}
MOE: dict[str, Any] = {
    **DENSE, "architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe",
    "num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 256,
    "decoder_sparse_step": 1, "mlp_only_layers": [], "torch_dtype": "bfloat16",
}


def write_checkpoint(folder: Path, config: dict[str, Any], tensors: Tensors) -> None:
    """config.json and model.safetensors holding zeroed `tensors` (dtype code, shape)."""
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    buffers = []
    specs = {}
    for name, (dtype, shape) in tensors.items():
        buf = np.zeros(math.prod(shape) * ITEM[dtype], dtype=np.uint8)
        buffers.append(buf)  # the pointer below must stay alive while the file is written
        specs[name] = safetensors.TensorSpec(
            dtype=NAMES[dtype], shape=list(shape), data_ptr=buf.ctypes.data,
            data_len=buf.nbytes)
    safetensors.serialize_file(specs, folder / "model.safetensors")


def modules(config: dict[str, Any]) -> list[tuple[str, int, int, bool]]:
    """(name, N, K, quantisable) of every linear module, as the Hugging Face checkpoints of
    Llama and Qwen3-MoE name them (written out here, not taken from the code under test)."""
    h, hd = config["hidden_size"], config["head_dim"]
    q, kv = config["num_attention_heads"] * hd, config["num_key_value_heads"] * hd
    out = []
    for il in range(config["num_hidden_layers"]):
        a, m = f"model.layers.{il}.self_attn.", f"model.layers.{il}.mlp."
        out += [(a + "q_proj", q, h, True), (a + "k_proj", kv, h, True),
                (a + "v_proj", kv, h, True), (a + "o_proj", h, q, True)]
        experts = config.get("num_experts", 0)
        if experts:
            ff = config["moe_intermediate_size"]
            out.append((m + "gate", experts, h, False))  # the router stays in bf16
            prefixes = [f"{m}experts.{e}." for e in range(experts)]
        else:
            ff = config["intermediate_size"]
            prefixes = [m]
        for p in prefixes:
            out += [(p + "gate_proj", ff, h, True), (p + "up_proj", ff, h, True),
                    (p + "down_proj", h, ff, True)]
    out.append(("lm_head", config["vocab_size"], h, True))
    return out


def float_parts(config: dict[str, Any], dtype: str, layout: Callable[[str, int, int], Tensors],
                quantised: Callable[[str], bool]) -> Tensors:
    """Embeddings, norms and every linear module: `layout` for those `quantised` accepts."""
    h, v = config["hidden_size"], config["vocab_size"]
    t: Tensors = {"model.embed_tokens.weight": (dtype, (v, h)), "model.norm.weight": (dtype, (h,))}
    for il in range(config["num_hidden_layers"]):
        t[f"model.layers.{il}.input_layernorm.weight"] = (dtype, (h,))
        t[f"model.layers.{il}.post_attention_layernorm.weight"] = (dtype, (h,))
        if config["model_type"].startswith("qwen3"):
            t[f"model.layers.{il}.self_attn.q_norm.weight"] = (dtype, (config["head_dim"],))
            t[f"model.layers.{il}.self_attn.k_norm.weight"] = (dtype, (config["head_dim"],))
    for name, n, k, quantisable in modules(config):
        if quantised(name) and quantisable:
            t.update(layout(name, n, k))
        else:
            t[name + ".weight"] = (dtype, (n, k))
    return t


def gptq(name: str, n: int, k: int) -> Tensors:
    # AutoGPTQ's 4-bit layout, group 128: 8 values per int32 along K for qweight, along N
    # for qzeros
    return {name + ".qweight": ("I32", (k // 8, n)), name + ".qzeros": ("I32", (k // 128, n // 8)),
            name + ".scales": ("F16", (k // 128, n)), name + ".g_idx": ("I32", (k,))}


def awq(name: str, n: int, k: int) -> Tensors:
    # AutoAWQ GEMM: qweight [K, N/8], qzeros [K/128, N/8] int32, scales [K/128, N] fp16
    return {name + ".qweight": ("I32", (k, n // 8)), name + ".qzeros": ("I32", (k // 128, n // 8)),
            name + ".scales": ("F16", (k // 128, n))}


def fp8_tensor(name: str, n: int, k: int) -> Tensors:
    # per-tensor FP8 with static activations: one fp32 scale each for weight and input
    return {name + ".weight": ("F8_E4M3", (n, k)), name + ".weight_scale": ("F32", ()),
            name + ".input_scale": ("F32", ())}


def fp8_block(name: str, n: int, k: int) -> Tensors:
    # DeepSeek/Qwen3-FP8 block-wise: an fp32 inverse scale per 128x128 block
    return {name + ".weight": ("F8_E4M3", (n, k)),
            name + ".weight_scale_inv": ("F32", (math.ceil(n / 128), math.ceil(k / 128)))}


def ct_w4a16(name: str, n: int, k: int) -> Tensors:
    # compressed-tensors pack-quantized, int4 symmetric, group 128, scales in bf16
    return {name + ".weight_packed": ("I32", (n, k // 8)),
            name + ".weight_scale": ("BF16", (n, k // 128)), name + ".weight_shape": ("I64", (2,))}


def ct_fp8_channel(name: str, n: int, k: int) -> Tensors:
    # compressed-tensors float-quantized FP8, one bf16 scale per output channel
    return {name + ".weight": ("F8_E4M3", (n, k)), name + ".weight_scale": ("BF16", (n, 1))}


def bnb_nf4(name: str, n: int, k: int) -> Tensors:
    # transformers' serialisation of a 4-bit nf4 weight: two values a byte, an fp32 absmax
    # per block of 64, the 16-entry code, and the quant state as a small JSON blob
    return {name + ".weight": ("U8", (n * k // 2, 1)),
            name + ".weight.absmax": ("F32", (n * k // 64,)),
            name + ".weight.quant_map": ("F32", (16,)),
            name + ".weight.quant_state.bitsandbytes__nf4": ("U8", (120,))}


def bnb_int8(name: str, n: int, k: int) -> Tensors:
    # LLM.int8(): int8 weight, an fp32 scale per row (SCB), a format byte
    return {name + ".weight": ("I8", (n, k)), name + ".SCB": ("F32", (n,)),
            name + ".weight_format": ("U8", (1,))}


def everything(_name: str) -> bool:
    return True


def no_lm_head(name: str) -> bool:
    return name != "lm_head"


CASES: list[tuple[str, dict[str, Any], str, Callable[[str, int, int], Tensors],
                  Callable[[str], bool]]] = [
    ("gptq-int4-g128", {**DENSE, "model_type": "llama", "quantization_config": {
        "quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": False, "sym": True,
        "lm_head": False}}, "F16", gptq, no_lm_head),
    ("awq-int4-g128-skip", {**DENSE, "quantization_config": {
        "quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True,
        "version": "gemm", "modules_to_not_convert": ["layers.1.mlp"]}}, "F16", awq,
     lambda n: n != "lm_head" and "layers.1.mlp" not in n),
    ("fp8-per-tensor", {**DENSE, "torch_dtype": "bfloat16", "quantization_config": {
        "quant_method": "fp8", "activation_scheme": "static"}}, "BF16", fp8_tensor, no_lm_head),
    ("fp8-block-moe", {**MOE, "quantization_config": {
        "quant_method": "fp8", "activation_scheme": "dynamic", "fmt": "e4m3",
        "weight_block_size": [128, 128]}}, "BF16", fp8_block, no_lm_head),
    ("compressed-tensors-w4a16", {**DENSE, "torch_dtype": "bfloat16", "quantization_config": {
        "quant_method": "compressed-tensors", "format": "pack-quantized",
        "config_groups": {"group_0": {"targets": ["Linear"], "weights": {
            "num_bits": 4, "type": "int", "strategy": "group", "group_size": 128,
            "symmetric": True}}}, "ignore": ["lm_head"]}}, "BF16", ct_w4a16, no_lm_head),
    ("compressed-tensors-fp8-moe", {**MOE, "quantization_config": {
        "quant_method": "compressed-tensors", "format": "float-quantized",
        "config_groups": {"group_0": {"targets": ["Linear"], "weights": {
            "num_bits": 8, "type": "float", "strategy": "channel", "symmetric": True},
            "input_activations": {"num_bits": 8, "type": "float", "dynamic": True}}},
        "ignore": ["lm_head", "re:.*mlp.gate$"]}}, "BF16", ct_fp8_channel, no_lm_head),
    ("bnb-nf4", {**DENSE, "torch_dtype": "bfloat16", "quantization_config": {
        "quant_method": "bitsandbytes", "load_in_4bit": True, "bnb_4bit_quant_type": "nf4",
        "bnb_4bit_use_double_quant": False, "llm_int8_skip_modules": ["lm_head"]}}, "BF16",
     bnb_nf4, no_lm_head),
    ("bnb-int8", {**DENSE, "torch_dtype": "bfloat16", "quantization_config": {
        "quant_method": "bitsandbytes", "load_in_8bit": True}}, "BF16", bnb_int8, no_lm_head),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_config_only_weights_agree_with_the_safetensors_headers(
    tmp_path: Path, case: tuple[str, dict[str, Any], str, Callable[[str, int, int], Tensors],
                                Callable[[str], bool]],
) -> None:
    label, config, dtype, layout, quantised = case
    folder = tmp_path / label
    write_checkpoint(folder, config, float_parts(config, dtype, layout, quantised))
    headers = safetensors_weights(folder)
    assert headers is not None
    counted = count_weights(config)
    assert counted.total == pytest.approx(headers.total, rel=0.01)
    assert counted.kv_proj == pytest.approx(headers.kv_proj, rel=0.01)
    # and far below the unquantised model the config would otherwise be taken for
    plain = count_weights({**config, "quantization_config": None, "torch_dtype": "bfloat16"})
    assert headers.total < 0.75 * plain.total


def test_without_safetensors_vllm_plans_the_quantised_size(tmp_path: Path) -> None:
    config = CASES[0][1]
    (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
    v = estimate_vllm(tmp_path, VllmPlan(gpu_memory_mib=24576, max_model_len=4096))
    expected = count_weights(config).total
    assert v.estimate.devices[0].weights_mib == pytest.approx(expected / MIB)
    assert any(n.startswith("weights from config.json (gptq)") for n in v.estimate.notes)


QWEN25_72B_GPTQ_INT4: dict[str, Any] = {
    "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 8192,
    "num_hidden_layers": 80, "intermediate_size": 29568, "vocab_size": 152064,
    "num_attention_heads": 64, "num_key_value_heads": 8, "max_position_embeddings": 32768,
    "torch_dtype": "float16", "tie_word_embeddings": False,
    "quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 128,
                            "desc_act": False, "sym": True, "damp_percent": 0.01},
}


def test_a_gptq_int4_72b_is_planned_near_what_vllm_loads() -> None:
    # vLLM reports 38.5 GiB of weights for Qwen2.5-72B-Instruct-GPTQ-Int4. The count is of
    # the checkpoint's layout; vLLM's Marlin repacking keeps no qzeros for a symmetric
    # checkpoint and an empty g_idx without desc_act (about 0.3 GiB, 0.7 %), and its figure
    # is rounded to 0.1 GiB: hence 2 %, far tighter than the 135 GiB of the bf16 reading.
    gib = count_weights(QWEN25_72B_GPTQ_INT4).total / GIB
    assert gib == pytest.approx(38.5, rel=0.02)
    bf16 = count_weights({**QWEN25_72B_GPTQ_INT4, "quantization_config": None,
                          "torch_dtype": "bfloat16"}).total / GIB
    assert bf16 == pytest.approx(135.4, abs=0.1)


def test_kv_bytes_follow_the_cache_dtype_and_replicate_past_the_kv_heads() -> None:
    cfg = QWEN25_72B_GPTQ_INT4
    # 80 layers x (K and V) x 8 KV heads x head dim 128 x 2 bytes (fp16)
    assert kv_bytes_per_token(cfg, 1, "auto", "auto") == 80 * 2 * 8 * 128 * 2
    assert kv_bytes_per_token(cfg, 1, "fp8", "auto") == 80 * 2 * 8 * 128
    assert kv_bytes_per_token(cfg, 4, "fp8_e5m2", "auto") == 80 * 2 * 2 * 128
    # 16 GPUs, 8 KV heads: every GPU still keeps one whole head
    assert kv_bytes_per_token(cfg, 16, "auto", "auto") == 80 * 2 * 1 * 128 * 2


def test_kv_projections_are_replicated_when_tensor_parallel_exceeds_the_kv_heads(
    tmp_path: Path,
) -> None:
    (tmp_path / "config.json").write_text(json.dumps(DENSE), encoding="utf-8")
    count = count_weights(DENSE)
    two = estimate_vllm(tmp_path, VllmPlan(tensor_parallel=2, gpu_memory_mib=24576))
    four = estimate_vllm(tmp_path, VllmPlan(tensor_parallel=4, gpu_memory_mib=24576))
    assert two.estimate.devices[0].weights_mib == pytest.approx(count.total / 2 / MIB)
    # 2 KV heads over 4 GPUs: each GPU holds one head's K/V projections, half of them
    replicated = (count.total - count.kv_proj) / 4 + count.kv_proj / 2
    assert four.estimate.devices[0].weights_mib == pytest.approx(replicated / MIB)


def test_fp8_on_load_sizes_an_unquantised_checkpoint_as_fp8(tmp_path: Path) -> None:
    folder = tmp_path / "bf16"
    write_checkpoint(folder, {**DENSE, "torch_dtype": "bfloat16"}, float_parts(
        DENSE, "BF16", fp8_tensor, lambda n: False))
    plain = estimate_vllm(folder, VllmPlan(gpu_memory_mib=24576))
    fp8 = estimate_vllm(folder, VllmPlan(gpu_memory_mib=24576, quantization="fp8"))
    linear = sum(n * k for name, n, k, _ in modules(DENSE) if name != "lm_head")
    # each quantised weight drops from 2 bytes to 1 (plus one fp32 scale)
    saved = plain.estimate.devices[0].weights_mib - fp8.estimate.devices[0].weights_mib
    assert saved == pytest.approx(linear / MIB, rel=0.01)


def test_a_quantization_that_contradicts_the_checkpoint_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(CASES[0][1]), encoding="utf-8")
    with pytest.raises(UserError, match="--quantization awq does not match"):
        estimate_vllm(tmp_path, VllmPlan(quantization="awq"))


@pytest.mark.parametrize(("version", "gpu_mib", "model_len", "tokens", "seqs"), [
    ("0.5.5", 81559, 131072, 512, 256),    # V0, chunked prefill on past 32k, 512 a chunk
    ("0.6.3", 24576, 131072, 2048, 256),   # V0, chunked prefill at 2048
    ("0.6.3", 24576, 16384, 16384, 256),   # V0 without chunking: the whole context
    ("0.8.5", 81559, 32768, 2048, 256),    # V1 0.8: the large default by GPU name only
    ("0.10.1", 81559, 32768, 8192, 1024),  # V1 0.9 on: >= 70 GiB and not an A100
    ("0.10.1", 24576, 32768, 2048, 256),
    (None, 143771, 32768, 8192, 1024),     # no version: the newest rules
])
def test_batched_token_defaults_follow_the_vllm_version(
    version: str | None, gpu_mib: int, model_len: int, tokens: int, seqs: int
) -> None:
    assert default_max_num_batched_tokens(version, gpu_mib, model_len) == tokens
    assert default_max_num_seqs(version, gpu_mib) == seqs


def test_the_activation_profile_grows_with_max_num_batched_tokens(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(DENSE), encoding="utf-8")
    small = estimate_vllm(tmp_path, VllmPlan(gpu_memory_mib=24576, max_num_batched_tokens=2048))
    large = estimate_vllm(tmp_path, VllmPlan(gpu_memory_mib=24576, max_num_batched_tokens=8192))
    # per batched token: hidden states 4h + MLP 3 ff, two bytes each
    grown = 6144 * (4 * 256 + 3 * 512) * 2 / MIB
    assert large.estimate.devices[0].compute_mib - small.estimate.devices[0].compute_mib == (
        pytest.approx(grown))
    assert "activation profile of 8,192 batched tokens" in large.estimate.notes


def test_cli_plans_a_gptq_folder_with_the_vllm_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "config.json").write_text(json.dumps(QWEN25_72B_GPTQ_INT4), encoding="utf-8")
    rc = main(["fit", str(tmp_path), "--engine", "vllm", "--gpu-memory", "48G",
               "--tensor-parallel", "2", "--kv-cache-dtype", "fp8", "--ctx", "32768",
               "--max-num-seqs", "16", "--max-num-batched-tokens", "4096", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert len(out["devices"]) == 2
    per_gpu = count_weights(QWEN25_72B_GPTQ_INT4).total / 2 / MIB
    assert out["devices"][0]["weights_mib"] == pytest.approx(per_gpu, abs=0.1)
    # fp8 cache over 2 GPUs: 80 layers x 2 x 4 heads x 128 x 1 byte per token
    per_token = 80 * 2 * 4 * 128
    assert out["devices"][0]["kv_mib"] == pytest.approx(out["kv_cache_tokens"] * per_token / MIB)
    assert rc == (0 if out["kv_cache_tokens"] >= 32768 else 1)


def test_fit_help_explains_every_flag_in_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    text = capsys.readouterr().out
    options = text.split("options:")[1].strip().splitlines()
    # every line is one flag and its explanation: none is a flag alone, none runs on
    for line in options:
        flag, _, explained = line.strip().partition("  ")
        assert flag.startswith("-"), line
        assert len(explained.strip()) > 10, line
    flags = {line.strip().split()[0].rstrip(",") for line in options}
    assert {"--tensor-parallel", "--kv-cache-dtype", "--max-num-seqs", "--max-num-batched-tokens",
            "--dtype", "--quantization", "--gpu-memory-utilization", "--n-cpu-moe"} <= flags
