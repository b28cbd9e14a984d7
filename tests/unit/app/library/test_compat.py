"""An adapter for another architecture does not fit, even where every shape lines up.

The files are the real tiny models and LoRAs the integration tests hand to llama-server
(tests/realparts/gguf_factory.py): a qwen3 and a qwen3moe model with the same attention
shapes, so only the architecture tells them apart — as llama.cpp itself does ("model
arch and LoRA arch mismatch").
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.library.architectures import canonical_architecture, same_architecture
from app.library.compat import check_compatibility
from app.library.entries import Adapter, Entry, Model
from app.library.loader import load_entry
from tests.realparts.gguf_factory import TinyModelSpec, write_lora_adapter, write_tiny_model
from tests.unit.app.library.builders import (
    HfModel,
    Shape,
    add_to_hf_cache,
    write_hf_model,
    write_peft,
)

QWEN3 = TinyModelSpec(arch="qwen3")
QWEN3MOE = TinyModelSpec(arch="qwen3moe")
MOE_SHAPE = Shape(arch="qwen3moe", experts=8, experts_used=2)


def _read(path: Path) -> Entry:
    entry = load_entry(path)
    assert entry.error is None, entry.error
    return entry


@pytest.fixture
def models(tmp_path: Path) -> dict[str, Entry]:
    return {
        "qwen3": _read(write_tiny_model(tmp_path / "qwen3.gguf", QWEN3)),
        "qwen3moe": _read(write_tiny_model(tmp_path / "qwen3moe.gguf", QWEN3MOE)),
    }


def test_the_attention_shapes_of_qwen3_and_qwen3moe_are_the_same(
        models: dict[str, Entry]) -> None:
    """Why shapes alone let the wrong adapter through."""
    dense, moe = models["qwen3"].linear_shapes, models["qwen3moe"].linear_shapes
    for key in ("0.q_proj", "0.k_proj", "0.v_proj", "0.o_proj", "1.q_proj"):
        assert dense[key] == moe[key]


def test_a_qwen3_lora_fits_a_qwen3_model_and_not_a_qwen3moe_one(
        tmp_path: Path, models: dict[str, Entry]) -> None:
    lora = _read(write_lora_adapter(tmp_path / "qwen3-lora.gguf", QWEN3,
                                    targets=("attn_q", "attn_k", "attn_v", "attn_output")))
    assert isinstance(lora, Adapter)
    assert lora.architecture == "qwen3"

    on_moe = check_compatibility(lora, models["qwen3moe"])
    assert (on_moe.fits, on_moe.reason) == (False, "adapter for qwen3, model is qwen3moe")

    on_dense = check_compatibility(lora, models["qwen3"])
    assert on_dense.fits is True, on_dense.reason


def test_a_qwen3moe_lora_fits_the_qwen3moe_model_only(
        tmp_path: Path, models: dict[str, Entry]) -> None:
    lora = _read(write_lora_adapter(tmp_path / "moe-lora.gguf", QWEN3MOE))

    assert check_compatibility(lora, models["qwen3moe"]).fits is True
    assert check_compatibility(lora, models["qwen3"]).reason == (
        "adapter for qwen3moe, model is qwen3")


def test_a_peft_adapter_takes_its_architecture_from_the_base_folder(
        tmp_path: Path, models: dict[str, Entry]) -> None:
    """A local base path in adapter_config.json: its config.json says qwen3_moe."""
    base = write_hf_model(tmp_path / "Qwen3-MoE-base", HfModel(shape=MOE_SHAPE,
                                                               model_type="qwen3_moe"))
    adapter = _read(write_peft(tmp_path / "moe-peft", modules=("q_proj", "v_proj"),
                               base=str(base)))
    assert adapter.architecture == "qwen3_moe"

    assert check_compatibility(adapter, models["qwen3moe"]).fits is True  # qwen3_moe = qwen3moe
    assert check_compatibility(adapter, models["qwen3"]).reason == (
        "adapter for qwen3_moe, model is qwen3")
    hf_moe = _read(base)
    assert isinstance(hf_moe, Model)
    assert check_compatibility(adapter, hf_moe).fits is True


def test_a_peft_adapter_finds_its_base_in_the_hugging_face_cache(
        tmp_path: Path, models: dict[str, Entry], monkeypatch: pytest.MonkeyPatch) -> None:
    hub = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    add_to_hf_cache(hub, "Qwen/Qwen3-Dense", write_hf_model(tmp_path / "dense-src"))
    adapter = _read(write_peft(tmp_path / "dense-peft", base="Qwen/Qwen3-Dense"))
    assert adapter.architecture == "qwen3"

    verdict = check_compatibility(adapter, models["qwen3moe"])
    assert (verdict.fits, verdict.reason) == (False, "adapter for qwen3, model is qwen3moe")
    assert check_compatibility(adapter, models["qwen3"]).fits is True


def test_a_base_that_is_not_on_disk_leaves_the_decision_to_the_shapes(
        tmp_path: Path, models: dict[str, Entry], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    adapter = _read(write_peft(tmp_path / "peft", base="Someone/Not-Downloaded"))
    assert adapter.architecture is None

    assert check_compatibility(adapter, models["qwen3moe"]).fits is True  # shapes match


def test_architecture_names_are_compared_in_one_spelling() -> None:
    assert canonical_architecture("qwen3_moe") == canonical_architecture("qwen3moe")
    assert canonical_architecture("Qwen3MoeForCausalLM") == "qwen3moe"
    assert same_architecture("mistral", "llama")  # convert_hf_to_gguf writes Mistral as llama
    assert same_architecture("gemma3_text", "gemma3")
    assert same_architecture("gpt_oss", "gpt-oss")
    assert not same_architecture("qwen3", "qwen3moe")
    assert not same_architecture("qwen2", "qwen3")
