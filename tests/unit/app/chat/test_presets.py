"""Presets, the think / no-think switch and the expert-count override.

(These live beside the chat tests: app/presets exists for the chat.)
"""

from pathlib import Path

import pytest

from app.errors import UserError
from app.presets.experts import expert_choices, relaunch_with_experts, with_expert_count
from app.presets.presets import PresetError, PresetStore
from app.presets.thinking import (
    NO_THINK_SAMPLING,
    THINKING_SAMPLING,
    ThinkingMemory,
    ThinkSwitch,
    apply_thinking,
    support_from_template,
)
from tests.realparts.tiny_vocab import CHAT_TEMPLATE


def test_the_five_default_presets_ship(tmp_path: Path) -> None:
    presets = PresetStore(tmp_path).all()
    assert list(presets) == ["Fast", "Balanced", "Deep", "Code", "Long-context"]
    assert presets["Fast"].request.thinking is False
    assert presets["Deep"].request.thinking is True
    assert presets["Deep"].launch.context == "max"
    assert all(p.builtin for p in presets.values())


def test_presets_apply_qwens_sampling_with_overrides(tmp_path: Path) -> None:
    presets = PresetStore(tmp_path).all()
    assert presets["Fast"].request.effective_sampling() == NO_THINK_SAMPLING
    assert presets["Deep"].request.effective_sampling() == THINKING_SAMPLING
    # A per-message toggle beats the preset's mode; Code's own temperature stays.
    assert presets["Code"].request.effective_sampling(thinking=False) == {
        **NO_THINK_SAMPLING, "temperature": 0.4}


def test_editing_a_default_saves_a_copy_and_delete_restores_it(tmp_path: Path) -> None:
    store = PresetStore(tmp_path)
    fast = store.get("Fast")
    from dataclasses import replace

    store.save(replace(fast, request=replace(fast.request, max_tokens=99)))
    assert store.get("Fast").request.max_tokens == 99
    assert store.get("Fast").builtin
    store.delete("Fast")
    assert store.get("Fast").request.max_tokens == 1024


def test_copy_keeps_every_setting_under_a_new_name(tmp_path: Path) -> None:
    store = PresetStore(tmp_path)
    mine = store.copy("Code", "My code")
    assert not mine.builtin
    assert PresetStore(tmp_path).get("My code").request == store.get("Code").request
    with pytest.raises(PresetError, match="already exists"):
        store.copy("Code", "My code")


def test_a_broken_user_preset_is_reported_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text('name = "Bad"\n[launch]\ncontext = "huge"\n')
    store = PresetStore(tmp_path)
    assert "Bad" not in store.all()
    assert any("context must be" in problem for problem in store.problems)


def test_context_sized_to_what_fits(tmp_path: Path) -> None:
    presets = PresetStore(tmp_path).all()
    assert presets["Deep"].launch.sized_to(40960).context == 40960
    assert presets["Fast"].launch.sized_to(40960).context == 8192
    small = presets["Long-context"].launch.sized_to(2048)
    assert (small.context, small.batch, small.ubatch) == (2048, 2048, 1024)


def test_the_switch_follows_the_template() -> None:
    assert support_from_template(CHAT_TEMPLATE).switch is ThinkSwitch.TEMPLATE
    assert support_from_template("{{ '<think>' }}").switch is ThinkSwitch.SOFT
    plain = support_from_template("{{ messages }}")
    assert not plain.available
    assert "no thinking switch" in plain.reason


def test_soft_switch_changes_only_what_is_sent() -> None:
    messages = [{"role": "user", "content": "Hi"}]
    sent, kwargs = apply_thinking(messages, False, support_from_template("<think>"))
    assert sent[-1]["content"] == "Hi /no_think"
    assert messages[-1]["content"] == "Hi"
    assert kwargs is None
    _, kwargs = apply_thinking(messages, True, support_from_template(CHAT_TEMPLATE))
    assert kwargs == {"enable_thinking": True}


def test_a_backend_that_ignored_the_switch_is_remembered(tmp_path: Path) -> None:
    memory = ThinkingMemory(tmp_path / "switch.json")
    memory.use_soft_switch("vllm-box")
    again = ThinkingMemory(tmp_path / "switch.json")
    assert again.support("vllm-box", support_from_template(None)).switch is ThinkSwitch.SOFT
    assert again.support("other", support_from_template(None)).switch is ThinkSwitch.TEMPLATE


def test_expert_override_for_llama_cpp_replaces_an_earlier_one() -> None:
    command = ["llama-server", "-m", "m.gguf", "--override-kv",
               "qwen3moe.expert_used_count=int:8", "--override-kv", "tokenizer.x=str:y"]
    assert with_expert_count(command, "llama.cpp", "qwen3moe", 4) == [
        "llama-server", "-m", "m.gguf", "--override-kv", "tokenizer.x=str:y",
        "--override-kv", "qwen3moe.expert_used_count=int:4"]
    assert "qwen3moe.expert_used_count=int:8" not in with_expert_count(
        command, "llama.cpp", "qwen3moe", None)


def test_expert_override_for_vllm_merges_hf_overrides() -> None:
    command = ["vllm", "serve", "m", "--hf-overrides", '{"rope_scaling": null}']
    assert with_expert_count(command, "vllm", "qwen3_moe", 6)[-2:] == [
        "--hf-overrides", '{"rope_scaling": null, "num_experts_per_tok": 6}']


def test_relaunch_asks_the_backend_to_stop_then_start_with_the_new_count() -> None:
    choices = expert_choices(total=8, used=2)
    assert choices is not None
    assert choices.values == [2, 3, 4, 5, 6, 7, 8]
    assert choices.label(2) == "2 (default)"
    calls: list[object] = []
    plan = relaunch_with_experts(
        ["llama-server"], 4, choices=choices,
        set_experts=lambda p, n: with_expert_count(p, "llama.cpp", "qwen3moe", n),
        stop=lambda: calls.append("stop"), start=calls.append)
    assert calls == ["stop", plan]
    assert plan[-1] == "qwen3moe.expert_used_count=int:4"
    with pytest.raises(UserError, match="2…8"):
        relaunch_with_experts([], 9, choices=choices, set_experts=lambda p, n: p,
                              stop=lambda: None, start=lambda p: None)
    assert expert_choices(None, None) is None
