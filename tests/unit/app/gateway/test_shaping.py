"""A role applied to one request: its prompt first, its sampling as defaults, its thinking
default where the template has a switch, its adapters, its slot."""

from __future__ import annotations

from app.gateway.shaping import Shaping, shape_body
from app.presets.thinking import ThinkingSupport, ThinkSwitch
from app.roles.requests import RoleRequest
from app.roles.role import Role

TEMPLATE = ThinkingSupport(ThinkSwitch.TEMPLATE, "")
NONE = ThinkingSupport(ThinkSwitch.NONE, "")
COACH = Role("Coach", system_prompt="You are a coach.", sampling={"temperature": 0.2,
                                                                   "top_p": 0.9},
             thinking=False)
LORA = {"lora": [{"id": 0, "scale": 1.0}, {"id": 1, "scale": 0.0}]}


def shaping(role: Role | None = COACH, support: ThinkingSupport = TEMPLATE,
            slot: int | None = 1) -> Shaping:
    return Shaping("qwen.gguf", role, RoleRequest(role or Role(""), dict(LORA)), support, slot)


def test_the_role_s_prompt_goes_first_and_its_sampling_yields_to_the_request() -> None:
    body = {"model": "coach", "messages": [{"role": "user", "content": "Hi"}],
            "temperature": 1.0}
    out = shape_body(body, shaping(), chat=True)
    assert out["messages"] == [{"role": "system", "content": "You are a coach."},
                               {"role": "user", "content": "Hi"}]
    assert (out["temperature"], out["top_p"]) == (1.0, 0.9)
    assert out["model"] == "qwen.gguf"
    assert out["lora"] == LORA["lora"]
    assert out["id_slot"] == 1
    assert out["chat_template_kwargs"] == {"enable_thinking": False}
    assert body["model"] == "coach"  # the client's body is not changed


def test_a_client_s_own_system_message_follows_the_role_s_in_one_message() -> None:
    body = {"messages": [{"role": "system", "content": "Answer in French."},
                         {"role": "user", "content": "Hi"}]}
    out = shape_body(body, shaping(), chat=True)
    assert out["messages"][0] == {"role": "system",
                                  "content": "You are a coach.\n\nAnswer in French."}
    assert len(out["messages"]) == 2


def test_the_client_s_thinking_choice_wins_and_no_switch_means_none_is_sent() -> None:
    body = {"messages": [{"role": "user", "content": "Hi"}],
            "chat_template_kwargs": {"enable_thinking": True}}
    assert shape_body(body, shaping(), chat=True)["chat_template_kwargs"] == \
        {"enable_thinking": True}
    plain = {"messages": [{"role": "user", "content": "Hi"}]}
    assert "chat_template_kwargs" not in shape_body(plain, shaping(support=NONE), chat=True)


def test_a_soft_switch_template_gets_no_think_in_the_last_user_turn() -> None:
    soft = ThinkingSupport(ThinkSwitch.SOFT, "")
    out = shape_body({"messages": [{"role": "user", "content": "Hi"}]}, shaping(support=soft),
                     chat=True)
    assert out["messages"][-1]["content"] == "Hi /no_think"


def test_completions_get_the_adapters_and_sampling_but_no_messages() -> None:
    out = shape_body({"prompt": "Once"}, shaping(), chat=False)
    assert out["prompt"] == "Once"
    assert "messages" not in out
    assert out["lora"] == LORA["lora"]
    assert out["temperature"] == 0.2


def test_the_base_model_gets_every_adapter_at_zero_and_no_slot() -> None:
    zeros = Shaping("qwen.gguf", None, RoleRequest(Role(""), {"lora": [{"id": 0, "scale": 0.0}]}),
                    TEMPLATE, None)
    out = shape_body({"messages": [{"role": "user", "content": "Hi"}]}, zeros, chat=True)
    assert out["lora"] == [{"id": 0, "scale": 0.0}]
    assert "id_slot" not in out
    assert out["messages"] == [{"role": "user", "content": "Hi"}]
