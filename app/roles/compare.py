"""One prompt sent to a backend twice, without a role and with it: what the role changes.

The Roles page's test box shows the two answers side by side; both requests carry the
same sampling apart from the role's own. Blocking (HTTP): run on the task runner.
"""

from __future__ import annotations

from app.chat.client import ChatClient, ChatReply
from app.chat.history import Message
from app.chat.session import TurnSettings, build_request, detect_support
from app.roles.binding import bind_role
from app.roles.requests import BASE_MODEL, role_request
from app.roles.role import Role
from app.roles.served import LoraApi

MAX_TOKENS = 256


def _reply_text(reply: ChatReply) -> str:
    text = reply.answer.strip() or reply.reasoning.strip()
    return f"{text}\n\n[{reply.error}]" if reply.error else text


def compare(url: str, api_key: str | None, role: Role, prompt: str) -> tuple[str, str]:
    """(answer without the role, answer with it) from the backend at `url`."""
    history = [Message(id=0, conversation_id=0, role="user", content=prompt, reasoning="",
                       created=0.0)]
    with LoraApi(url, api_key) as api, ChatClient(url, api_key) as client:
        served = api.served()
        bound = bind_role(role, api, served=served)
        plain = role_request(BASE_MODEL, served)
        support = detect_support(client, url)
        answers = []
        for role_fields in (plain, bound):
            settings = TurnSettings(role=role_fields, max_tokens=MAX_TOKENS)
            answers.append(_reply_text(client.stream(
                build_request(history, settings, support)).run()))
    return answers[0], answers[1]
