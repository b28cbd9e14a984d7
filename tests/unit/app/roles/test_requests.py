"""Whether a backend can serve a role, and what each request carries, per engine.

The adapters are real files (GGUF LoRA as llama.cpp's converter writes them, PEFT folders
as PEFT saves them), read by the library; the vLLM side talks HTTP to a loopback server
answering in vLLM's documented shapes (see vllm_api.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.chat.client import ChatClient
from app.chat.history import Message
from app.chat.session import TurnSettings, build_request
from app.errors import UserError
from app.library.loader import load_entry
from app.presets.thinking import ThinkingSupport, ThinkSwitch
from app.roles.binding import bind_role, read_adapters
from app.roles.requests import role_availability, role_request
from app.roles.role import Role, RoleAdapter, RoleError
from app.roles.served import NO_LORA, LoraApi, ServedAdapter, ServedLoras
from tests.unit.app.library.builders import (
    HfModel,
    Shape,
    write_gguf,
    write_gguf_lora,
    write_hf_model,
    write_peft,
)
from tests.unit.app.roles.vllm_api import VllmState, vllm_api

TEMPLATE = ThinkingSupport(ThinkSwitch.TEMPLATE, "reads enable_thinking")


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return {
        "model": write_gguf(tmp_path / "base.gguf"),
        "coach": write_gguf_lora(tmp_path / "coach.gguf"),
        "tutor": write_gguf_lora(tmp_path / "tutor.gguf", rank=4),
        "wide": write_gguf_lora(tmp_path / "wide.gguf", Shape(hidden=128, head_dim=32)),
        "hf": write_hf_model(tmp_path / "hf-base"),
        "peft8": write_peft(tmp_path / "peft-coach", rank=8),
        "peft64": write_peft(tmp_path / "peft-big", rank=64, modules=("q_proj", "o_proj")),
    }


def _llama(*paths: Path) -> ServedLoras:
    return ServedLoras("llamacpp", tuple(ServedAdapter(p.stem, str(p), i)
                                         for i, p in enumerate(paths)))


def test_llama_request_names_every_preloaded_adapter_with_the_roles_scale(
        files: dict[str, Path]) -> None:
    served = _llama(files["coach"], files["tutor"])
    coach = Role("Coach", adapters=(RoleAdapter(str(files["coach"]), 0.5),))
    plain = Role("Plain")
    assert role_request(coach, served).extra == {"lora": [{"id": 0, "scale": 0.5},
                                                          {"id": 1, "scale": 0.0}]}
    assert role_request(plain, served).extra == {"lora": [{"id": 0, "scale": 0.0},
                                                          {"id": 1, "scale": 0.0}]}


def test_role_adds_its_system_prompt_sampling_and_thinking(files: dict[str, Path]) -> None:
    served = _llama(files["coach"])
    role = Role("Coach", adapters=(RoleAdapter(str(files["coach"])),),
                system_prompt="Be a coach.", sampling={"temperature": 0.1}, thinking=False)
    settings = TurnSettings(role=role_request(role, served))
    history = [Message(id=1, conversation_id=1, role="user", content="Run?", reasoning="",
                       created=0.0)]
    body = build_request(history, settings, TEMPLATE).body()
    assert body["messages"][0] == {"role": "system", "content": "Be a coach."}
    assert body["temperature"] == 0.1
    assert body["chat_template_kwargs"] == {"enable_thinking": False}
    assert body["lora"] == [{"id": 0, "scale": 1.0}]
    assert settings.stored_role_name == "Coach"
    toggled = TurnSettings(role=settings.role, thinking=True)
    assert build_request(history, toggled, TEMPLATE).body()["chat_template_kwargs"] == {
        "enable_thinking": True}


def test_unavailable_llama_roles_say_why(files: dict[str, Path], tmp_path: Path) -> None:
    model = load_entry(files["model"])
    served = _llama(files["coach"])
    cases = {
        "not preloaded": (Role("T", adapters=(RoleAdapter(str(files["tutor"])),)),
                          "not loaded", "relaunch"),
        "missing file": (Role("M", adapters=(RoleAdapter(str(tmp_path / "gone.gguf")),)),
                         "adapter file missing", None),
        "wrong base": (Role("W", adapters=(RoleAdapter(str(files["wide"])),)),
                       "incompatible base: hidden size 128 ≠ 64", None),
        "named base": (Role("B", adapters=(RoleAdapter(str(files["coach"])),),
                            base_models=("/elsewhere/other.gguf",)),
                       "incompatible base: the role is for /elsewhere/other.gguf", None),
    }
    for name, (role, reason, fix) in cases.items():
        verdict = role_availability(role, served, model=model,
                                    adapters=read_adapters([role]))
        assert not verdict.ok, name
        assert verdict.reason.startswith(reason), (name, verdict.reason)
        assert verdict.fix == fix, name


def test_a_corrupt_adapter_file_is_a_reason_not_a_crash(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 20)
    role = Role("Bad", adapters=(RoleAdapter(str(bad)),))
    verdict = role_availability(role, _llama(bad), adapters=read_adapters([role]))
    assert not verdict.ok
    assert verdict.reason.startswith("adapter bad cannot be read:")


def test_a_backend_without_lora_cannot_serve_adapter_roles(files: dict[str, Path]) -> None:
    role = Role("Coach", adapters=(RoleAdapter(str(files["coach"])),))
    verdict = role_availability(role, NO_LORA, adapters=read_adapters([role]))
    assert not verdict.ok
    assert verdict.reason.startswith("no LoRA support")
    assert role_availability(Role("Plain"), NO_LORA).ok
    with pytest.raises(RoleError, match="needs LoRA adapters"):
        role_request(role, NO_LORA)


def test_vllm_rank_and_runtime_loading_reasons(files: dict[str, Path]) -> None:
    big = Role("Big", adapters=(RoleAdapter(str(files["peft64"])),))
    small = Role("Small", adapters=(RoleAdapter(str(files["peft8"])),))
    served = ServedLoras("vllm", base_model="tiny").with_launch(max_rank=16,
                                                                runtime_loading=True)
    verdict = role_availability(big, served, adapters=read_adapters([big]))
    assert (verdict.ok, verdict.fix) == (False, "relaunch")
    assert verdict.reason == ("rank too large: peft-big has rank 64, the backend serves up "
                              "to --max-lora-rank 16")
    loadable = role_availability(small, served, adapters=read_adapters([small]))
    assert loadable.ok
    assert loadable.to_load == small.adapters
    frozen = ServedLoras("vllm", base_model="tiny").with_launch(max_rank=16,
                                                                runtime_loading=False)
    assert role_availability(small, frozen).reason.startswith("not loaded")
    off = ServedLoras("vllm", base_model="tiny", lora_enabled=False)
    assert role_availability(small, off).reason.endswith("without --enable-lora")
    two = Role("Two", adapters=(*small.adapters, *big.adapters))
    assert "one adapter per request" in role_availability(two, served).reason


def test_vllm_binding_loads_the_adapter_then_sends_its_name_as_model(
        files: dict[str, Path]) -> None:
    state = VllmState()
    role = Role("Small", adapters=(RoleAdapter(str(files["peft8"])),), system_prompt="Hi.")
    with vllm_api(state) as url, LoraApi(url) as api:
        served = api.served().with_launch(max_rank=16, runtime_loading=True)
        assert served.engine == "vllm"
        assert served.base_model == "tiny"
        bound = bind_role(role, api, served=served)
        assert ("POST", "/v1/load_lora_adapter",
                {"lora_name": "peft-coach", "lora_path": str(files["peft8"])}) in state.requests
        assert bound.model == "peft-coach"
        history = [Message(id=1, conversation_id=1, role="user", content="hello",
                           reasoning="", created=0.0)]
        request = build_request(history, TurnSettings(role=bound, model="tiny"), TEMPLATE)
        with ChatClient(url) as client:
            reply = client.stream(request).run()
        assert reply.answer == "from peft-coach"
        chat = [body for method, path, body in state.requests
                if path == "/v1/chat/completions"]
        assert chat[-1]["model"] == "peft-coach"
        assert chat[-1]["messages"][0] == {"role": "system", "content": "Hi."}
        again = api.served()
        assert again.find(str(files["peft8"])) is not None  # now listed: no second load


def test_vllm_refusing_a_runtime_load_is_a_clear_error(files: dict[str, Path]) -> None:
    state = VllmState(runtime_loading=False)
    role = Role("Small", adapters=(RoleAdapter(str(files["peft8"])),))
    with vllm_api(state) as url, LoraApi(url) as api:
        served = api.served().with_launch(max_rank=16, runtime_loading=True)
        with pytest.raises(UserError, match="refused to load adapter peft-coach"):
            bind_role(role, api, served=served)


def test_peft_rank_and_targets_come_from_the_files(files: dict[str, Path]) -> None:
    entry = read_adapters([Role("Big", adapters=(RoleAdapter(str(files["peft64"])),))])
    adapter = entry[str(files["peft64"])]
    assert adapter is not None
    assert adapter.rank == 64  # type: ignore[attr-defined]
    assert adapter.target_modules == ("o_proj", "q_proj")  # type: ignore[attr-defined]
    base = load_entry(files["hf"])
    assert HfModel().shape.hidden == base.hidden_size
