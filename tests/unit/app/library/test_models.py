"""What a model and an adapter show, read from real GGUF, Hugging Face and PEFT files."""

import json
import re
from pathlib import Path

import gguf
import pytest

from app.library.compat import check_compatibility
from app.library.entries import JSON_KEYS, Adapter, Model
from app.library.loader import LibraryError, load_entry, load_model
from tests.unit.app.library.builders import (
    PLAIN_TEMPLATE,
    HfModel,
    Shape,
    write_gguf,
    write_gguf_lora,
    write_hf_model,
    write_peft,
)

MOE = Shape(
    arch="qwen3moe",
    layers=2,
    hidden=64,
    heads=4,
    kv_heads=2,
    experts=8,
    experts_used=2,
    expert_ffn=32,
)


def _model(path: Path) -> Model:
    entry = load_entry(path)
    assert isinstance(entry, Model), entry
    assert entry.error is None, entry.error
    return entry


def _adapter(path: Path) -> Adapter:
    entry = load_entry(path)
    assert isinstance(entry, Adapter), entry
    assert entry.error is None, entry.error
    return entry


def test_gguf_dense_model_fields(tmp_path: Path) -> None:
    path = write_gguf(
        tmp_path / "m.gguf", Shape(layers=3, hidden=64, heads=4, kv_heads=2, vocab=300)
    )

    model = _model(path)

    assert (model.format, model.architecture, model.name) == ("gguf", "qwen3", "tiny-qwen3")
    assert (model.layers, model.hidden_size, model.heads, model.kv_heads, model.head_dim) == (
        3,
        64,
        4,
        2,
        16,
    )
    assert (model.experts, model.experts_used) == (None, None)
    assert model.context_length == 4096
    assert model.vocab_size == 300
    assert model.size_bytes == path.stat().st_size
    assert model.params_total == model.params_active
    # 2 vocab-by-hidden embeddings + per layer (q,k,v,o + 3 ffn + 2 norms) + final norm
    per_layer = 64 * 64 + 2 * 64 * 32 + 64 * 64 + 3 * 64 * 128 + 2 * 64
    assert model.params_total == 2 * 300 * 64 + 64 + 3 * per_layer
    assert model.quantization is not None
    assert model.quantization["file_type"] == "F16"
    assert set(model.quantization["tensor_types"]) == {"F16", "F32"}
    assert model.chat_template
    assert model.thinking_switch
    assert model.complete
    assert model.rope_scaling is None
    assert model.sliding_window is None


def test_gguf_moe_active_parameters(tmp_path: Path) -> None:
    model = _model(write_gguf(tmp_path / "moe.gguf", MOE))

    assert (model.experts, model.experts_used) == (8, 2)
    expert_params = 2 * 3 * 8 * 32 * 64  # layers, (gate, up, down), experts, ffn, hidden
    assert model.params_total is not None
    assert model.params_active is not None
    assert model.params_total - model.params_active == expert_params * 6 // 8


def test_gguf_rope_scaling_sliding_window_and_per_layer_kv(tmp_path: Path) -> None:
    def extra(writer: gguf.GGUFWriter) -> None:
        writer.add_string("gemma3.rope.scaling.type", "linear")
        writer.add_float32("gemma3.rope.scaling.factor", 8.0)
        writer.add_uint32("gemma3.rope.scaling.original_context_length", 8192)
        writer.add_uint32("gemma3.attention.sliding_window", 512)

    shape = Shape(arch="gemma3")
    model = _model(write_gguf(tmp_path / "g.gguf", shape, extra=extra, template=PLAIN_TEMPLATE))

    assert model.rope_scaling == {"type": "linear", "factor": 8.0, "original_context": 8192}
    assert model.sliding_window == 512
    assert model.chat_template
    assert not model.thinking_switch


def test_gguf_header_only_model_is_incomplete(tmp_path: Path) -> None:
    model = _model(
        write_gguf(tmp_path / "h.gguf", header_only=True, quant=gguf.GGMLQuantizationType.Q8_0)
    )

    assert not model.complete
    assert model.quantization is not None
    assert (
        model.quantization["tensor_types"]["Q8_0"]["tensors"] == 2 + 2 * 7
    )  # embd, output, layers


def test_gguf_without_template(tmp_path: Path) -> None:
    model = _model(write_gguf(tmp_path / "m.gguf", template=None))
    assert not model.chat_template
    assert not model.thinking_switch


def test_split_gguf_is_one_model(tmp_path: Path) -> None:
    single = _model(write_gguf(tmp_path / "one.gguf"))
    write_gguf(tmp_path / "split" / "m.gguf", split_max_tensors=6)

    model = _model(tmp_path / "split" / "m-00002-of-00004.gguf")

    assert model.path == tmp_path / "split" / "m-00001-of-00004.gguf"
    assert model.params_total == single.params_total
    assert model.size_bytes == sum(p.stat().st_size for p in (tmp_path / "split").iterdir())


def test_hf_folder_fields(tmp_path: Path) -> None:
    folder = write_hf_model(tmp_path / "Qwen3-Tiny", HfModel(shape=Shape(layers=3)))

    model = _model(folder)

    assert (model.format, model.architecture, model.name) == ("safetensors", "qwen3", "Qwen3-Tiny")
    assert (model.layers, model.hidden_size, model.heads, model.kv_heads, model.head_dim) == (
        3,
        64,
        4,
        2,
        16,
    )
    assert model.context_length == 4096
    assert model.vocab_size == 256
    assert model.quantization is not None
    assert model.quantization["method"] is None
    assert list(model.quantization["tensor_types"]) == ["BF16"]
    assert model.chat_template
    assert model.thinking_switch
    assert model.size_bytes == sum(p.stat().st_size for p in folder.iterdir())


def test_hf_sharded_moe_and_a_missing_shard(tmp_path: Path) -> None:
    folder = write_hf_model(tmp_path / "moe", HfModel(shape=MOE, shards=3))
    model = _model(folder)
    assert (model.experts, model.experts_used) == (8, 2)
    assert model.params_total is not None
    assert model.params_active is not None
    assert model.params_total - model.params_active == 2 * 3 * 8 * 32 * 64 * 6 // 8
    assert model.complete

    (folder / "model-00002-of-00003.safetensors").unlink()

    assert not _model(folder).complete


@pytest.mark.parametrize(
    ("config", "method", "bits"),
    [
        ({"quant_method": "gptq", "bits": 4, "group_size": 128}, "gptq", 4),
        ({"quant_method": "awq", "bits": 4}, "awq", 4),
        (
            {"quant_method": "bitsandbytes", "load_in_4bit": True, "bnb_4bit_quant_type": "nf4"},
            "bitsandbytes",
            4,
        ),
        ({"quant_method": "fp8", "fmt": "e4m3"}, "fp8", 8),
    ],
)
def test_hf_quantized_models_count_unpacked_parameters(
    tmp_path: Path, config: dict[str, object], method: str, bits: int
) -> None:
    plain = _model(write_hf_model(tmp_path / "plain"))
    model = _model(write_hf_model(tmp_path / method, HfModel(quantization_config=config)))

    assert model.quantization is not None
    assert (model.quantization["method"], model.quantization["bits"]) == (method, bits)
    assert model.params_total == plain.params_total
    assert model.linear_shapes == plain.linear_shapes


def test_hf_rope_scaling_sliding_window_and_text_config(tmp_path: Path) -> None:
    extra = {
        "rope_scaling": {
            "rope_type": "yarn",
            "factor": 4.0,
            "original_max_position_embeddings": 32768,
        },
        "sliding_window": 4096,
        "use_sliding_window": True,
        "text_config": {"num_hidden_layers": 2, "vocab_size": 262144},
    }
    model = _model(write_hf_model(tmp_path / "m", HfModel(extra_config=extra)))

    assert model.rope_scaling == {"type": "yarn", "factor": 4.0, "original_context": 32768}
    assert model.sliding_window == 4096
    assert model.vocab_size == 262144


def test_hf_sliding_window_off_and_template_file(tmp_path: Path) -> None:
    folder = write_hf_model(
        tmp_path / "m",
        HfModel(template=None, extra_config={"sliding_window": 4096, "use_sliding_window": False}),
    )
    (folder / "chat_template.jinja").write_text("{% if enable_thinking %}<think>{% endif %}")

    model = _model(folder)

    assert model.sliding_window is None
    assert model.chat_template
    assert model.thinking_switch


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("config.json", "{broken", r"config.json: invalid JSON"),
        ("config.json", "[]", r"config.json: a JSON list, not an object"),
        ("tokenizer_config.json", "{", r"tokenizer_config.json: invalid JSON"),
        ("model.safetensors.index.json", '{"weight_map": 3}', r"no weight_map"),
    ],
)
def test_hf_bad_json_files(tmp_path: Path, name: str, content: str, reason: str) -> None:
    folder = write_hf_model(tmp_path / "m")
    (folder / name).write_text(content)

    entry = load_entry(folder)

    assert entry.error is not None
    assert re.search(reason, entry.error), entry.error


def test_peft_adapter_fields(tmp_path: Path) -> None:
    folder = write_peft(
        tmp_path / "role-lora", rank=16, alpha=32, modules=("q_proj", "k_proj", "down_proj")
    )

    adapter = _adapter(folder)

    assert (adapter.format, adapter.rank, adapter.alpha) == ("peft", 16, 32.0)
    assert adapter.target_modules == ("down_proj", "k_proj", "q_proj")
    assert (adapter.dtype, adapter.base_model) == ("F32", "Qwen/Qwen3-Tiny")
    assert (adapter.layers, adapter.hidden_size) == (2, 64)
    assert adapter.size_bytes == sum(p.stat().st_size for p in folder.iterdir())
    data = adapter.to_json()
    assert data["kind"] == "adapter"
    assert data["target_modules"] == ["down_proj", "k_proj", "q_proj"]


def test_peft_with_only_a_pickle_has_unknown_shapes(tmp_path: Path) -> None:
    folder = write_peft(tmp_path / "old")
    (folder / "adapter_model.safetensors").rename(folder / "adapter_model.bin")

    adapter = _adapter(folder)

    assert adapter.rank == 8
    assert adapter.linear_shapes == {}
    model = _model(write_gguf(tmp_path / "m.gguf"))
    assert check_compatibility(adapter, model).fits is None


def test_peft_not_lora_and_no_weights(tmp_path: Path) -> None:
    folder = write_peft(tmp_path / "ia3")
    config = json.loads((folder / "adapter_config.json").read_text())
    (folder / "adapter_config.json").write_text(json.dumps(config | {"peft_type": "IA3"}))
    assert load_entry(folder).error == "adapter_config.json: peft_type 'IA3' is not a LoRA adapter"

    (folder / "adapter_config.json").write_text(json.dumps(config))
    (folder / "adapter_model.safetensors").unlink()
    assert load_entry(folder).error == "no adapter_model.safetensors next to adapter_config.json"


def test_gguf_lora_fields(tmp_path: Path) -> None:
    adapter = _adapter(
        write_gguf_lora(tmp_path / "a.gguf", rank=4, alpha=8, modules=("attn_q", "ffn_down"))
    )

    assert (adapter.format, adapter.rank, adapter.alpha) == ("gguf-lora", 4, 8.0)
    assert adapter.target_modules == ("down_proj", "q_proj")
    assert (adapter.dtype, adapter.base_model) == ("F32", "Qwen3-Tiny")
    assert (adapter.layers, adapter.hidden_size) == (2, 64)


# ---------------------------------------------------------------- compatibility
def test_adapters_fit_models_of_the_same_shape_in_any_format(tmp_path: Path) -> None:
    gguf_model = _model(write_gguf(tmp_path / "m.gguf"))
    hf_model = _model(write_hf_model(tmp_path / "hf"))
    peft = _adapter(write_peft(tmp_path / "lora", modules=("q_proj", "v_proj", "down_proj")))
    gguf_lora = _adapter(write_gguf_lora(tmp_path / "l.gguf"))

    for adapter in (peft, gguf_lora):
        for model in (gguf_model, hf_model):
            verdict = check_compatibility(adapter, model)
            assert verdict.fits is True, verdict.reason


def test_adapter_for_a_wider_model_does_not_fit(tmp_path: Path) -> None:
    model = _model(write_gguf(tmp_path / "m.gguf", Shape(hidden=64)))
    adapter = _adapter(write_peft(tmp_path / "wide", Shape(hidden=128)))

    assert check_compatibility(adapter, model).reason == "hidden size 128 ≠ 64"
    assert check_compatibility(adapter, model).fits is False


def test_adapter_with_more_layers_does_not_fit(tmp_path: Path) -> None:
    model = _model(write_hf_model(tmp_path / "m", HfModel(shape=Shape(layers=2))))
    adapter = _adapter(write_peft(tmp_path / "deep", Shape(layers=4)))

    verdict = check_compatibility(adapter, model)

    assert (verdict.fits, verdict.reason) == (
        False,
        "the adapter targets layer 3; the model has 2 layers",
    )


def test_same_width_different_heads_is_caught_by_shapes(tmp_path: Path) -> None:
    # Same hidden size and layer count, different KV heads: only the shapes tell.
    model = _model(write_gguf(tmp_path / "m.gguf", Shape(kv_heads=2)))
    adapter = _adapter(write_peft(tmp_path / "l", Shape(kv_heads=4), modules=("q_proj", "v_proj")))

    verdict = check_compatibility(adapter, model)

    assert verdict.fits is False
    assert verdict.reason == "layer 0 v_proj: the adapter expects 64→64, the model has 64→32"


def test_adapter_targeting_a_projection_the_model_lacks(tmp_path: Path) -> None:
    model = _model(write_gguf(tmp_path / "moe.gguf", MOE))  # experts, no dense gate_proj
    adapter = _adapter(write_peft(tmp_path / "l", modules=("gate_proj",)))

    verdict = check_compatibility(adapter, model)

    assert (verdict.fits, verdict.reason) == (
        False,
        "the model has no gate_proj in layer 0, gate_proj in layer 1",
    )


def test_compatibility_with_wrong_kinds_or_bad_entries(tmp_path: Path) -> None:
    model = _model(write_gguf(tmp_path / "m.gguf"))
    adapter = _adapter(write_peft(tmp_path / "l"))
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"nope")

    assert check_compatibility(model, model).fits is None
    assert check_compatibility(adapter, adapter).reason.endswith("is an adapter, not a model")
    assert check_compatibility(adapter, load_entry(bad)).reason.startswith(
        "the model could not be read"
    )


# ---------------------------------------------------------------- loader and JSON
def test_json_has_every_key_for_models_adapters_and_bad_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF\x09\x00\x00\x00")
    entries = [
        load_entry(write_gguf(tmp_path / "m.gguf")),
        load_entry(write_peft(tmp_path / "l")),
        load_entry(bad),
    ]
    for entry in entries:
        data = entry.to_json()
        assert set(JSON_KEYS) <= set(data)
        json.dumps(data)
    assert entries[2].to_json()["error"] == "unknown GGUF version 9 (supported: 2 and 3)"
    assert entries[2].to_json()["kind"] == "model"


def test_load_model_for_the_fit_planner(tmp_path: Path) -> None:
    model = load_model(write_gguf(tmp_path / "m.gguf", header_only=True))
    assert model.hidden_size == 64

    with pytest.raises(LibraryError, match=r"is a LoRA adapter, not a model"):
        load_model(write_peft(tmp_path / "l"))
    with pytest.raises(LibraryError, match=r"no such file or folder"):
        load_model(tmp_path / "missing.gguf")
    (tmp_path / "bad.gguf").write_bytes(b"GGUF")
    with pytest.raises(LibraryError, match=r"bad.gguf: truncated: version"):
        load_model(tmp_path / "bad.gguf")


def test_loader_reasons_for_unreadable_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    link = tmp_path / "gone.gguf"
    link.symlink_to(tmp_path / "target.gguf")
    assert load_entry(link).error == f"broken symbolic link (points to {tmp_path / 'target.gguf'})"

    other = tmp_path / "notes.txt"
    other.write_text("hello")
    assert load_entry(other).error == "not a model: not a GGUF file"

    locked = write_gguf(tmp_path / "locked.gguf")
    real_open = Path.open

    def deny(self: Path, *args: object, **kwargs: object) -> object:
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(Path, "open", deny)  # the tests run as root: chmod would not stop it
    assert load_entry(locked).error == "permission denied"


def test_a_weight_file_stands_for_its_folder(tmp_path: Path) -> None:
    folder = write_hf_model(tmp_path / "m")
    assert load_entry(folder / "model.safetensors").path == folder
