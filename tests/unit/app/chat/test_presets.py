"""Presets, the think / no-think switch and the expert-count override.

(These live beside the chat tests: app/presets exists for the chat.)
"""

from pathlib import Path

import pytest

from app.engines.plan import LaunchPlan
from app.errors import UserError
from app.presets.experts import expert_offer
from app.presets.presets import PresetError, PresetStore
from app.presets.thinking import (
    NO_THINK_SAMPLING,
    THINKING_SAMPLING,
    ThinkingMemory,
    ThinkSwitch,
    apply_thinking,
    support_from_template,
)
from tests.realparts.fixtures import TinyGgufFactory
from tests.realparts.gguf_factory import TinyModelSpec
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


def test_a_moe_backend_offers_every_count_with_its_memory_effect(
        tiny_gguf: TinyGgufFactory) -> None:
    model = tiny_gguf(TinyModelSpec(arch="qwen3moe", experts=8, experts_used=2))
    offer = expert_offer(LaunchPlan(model=str(model), context=2048))
    assert [o.count for o in offer.options] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert offer.default == 2
    assert offer.current == 2
    labels = [offer.label(o) for o in offer.options]
    assert labels[1] == "2 (default)"
    effects = {o.count: o.effect_mib for o in offer.options}
    assert effects[2] == 0
    # more experts per token: a larger compute buffer, never less memory
    assert effects[8] is not None
    assert effects[1] is not None
    assert effects[8] >= 0 >= effects[1]
    assert "MiB" in labels[7]
    with pytest.raises(UserError, match="1…8"):
        offer.check(9)
    # a backend already relaunched with 4 says so
    assert expert_offer(LaunchPlan(model=str(model), experts=4)).current == 4


def test_a_dense_model_or_a_url_offers_no_count_and_says_why(
        tiny_gguf: TinyGgufFactory) -> None:
    dense = expert_offer(LaunchPlan(model=str(tiny_gguf(TinyModelSpec(arch="qwen3")))))
    assert not dense.available
    assert "dense model" in dense.reason
    url = expert_offer(None, "http://127.0.0.1:8080")
    assert not url.available
    assert "not a backend Rigdeck started" in url.reason
    assert "Backends page" in url.reason
    with pytest.raises(UserError, match="launch setting"):
        url.check(4)
