"""How far a context can go: the trained context, the RoPE scaling a model names, the flags."""

from __future__ import annotations

from pathlib import Path

import gguf

from app.fit.context_scaling import (
    RopeScaling,
    context_advice,
    rope_scaling,
    rope_scaling_from_config,
)
from app.library.gguf import read_gguf_header
from tests.unit.app.fit.reference import need, shared_data


def _gguf_with_yarn(path: Path) -> Path:
    """A header-only GGUF that names YaRN x4 over 32,768, as Qwen's 128k GGUFs do."""
    w = gguf.GGUFWriter(str(path), "qwen3")
    w.add_context_length(131072)
    w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
    w.add_rope_scaling_factor(4.0)
    w.add_rope_scaling_orig_ctx_len(32768)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_a_file_without_scaling_needs_yarn_flags_beyond_its_trained_context() -> None:
    header = read_gguf_header(need(shared_data() / "gguf-headers" / "moe30.header.gguf"))
    scaling = rope_scaling(header)
    assert scaling == RopeScaling(trained=40960, context_length=40960)
    assert scaling.usable == 4 * 40960
    assert context_advice(scaling, 40960) is None
    advice = context_advice(scaling, 90000)
    assert advice is not None
    assert advice.flags == ("--rope-scaling", "yarn", "--rope-scale", "2.2",
                            "--yarn-orig-ctx", "40960")
    assert not advice.capped
    assert "names no RoPE scaling" in advice.note
    capped = context_advice(scaling, 200000)
    assert capped is not None
    assert capped.capped
    assert "--rope-scale 4 " in capped.note + " "
    assert "at most 163,840" in capped.note


def test_a_file_that_names_yarn_needs_no_flags_up_to_what_it_covers(tmp_path: Path) -> None:
    scaling = rope_scaling(read_gguf_header(_gguf_with_yarn(tmp_path / "yarn.gguf")))
    assert (scaling.kind, scaling.factor, scaling.trained) == ("yarn", 4.0, 32768)
    assert scaling.usable == 131072
    advice = context_advice(scaling, 100000)
    assert advice is not None
    assert advice.flags == ()
    assert "applies by itself" in advice.note
    over = context_advice(scaling, 140000)
    assert over is not None
    assert over.capped
    assert "at most 131,072" in over.note


def test_a_config_names_its_scaling_as_transformers_does() -> None:
    config = {
        "max_position_embeddings": 131072,
        "rope_scaling": {"rope_type": "yarn", "factor": 4.0,
                         "original_max_position_embeddings": 32768},
    }
    scaling = rope_scaling_from_config(config)
    assert (scaling.kind, scaling.factor, scaling.trained, scaling.usable) == (
        "yarn", 4.0, 32768, 131072)
    plain = rope_scaling_from_config({"max_position_embeddings": 40960, "rope_scaling": None})
    assert plain == RopeScaling(trained=40960, context_length=40960)
