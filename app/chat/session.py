"""One turn of a conversation: build the request from history and preset, stream the
reply into the store, and check that a no-think request was obeyed.

Used the same way by the CLI (in its main thread) and the Chat page (in a worker), so
both store the same things: reasoning, timings, endpoint, model, preset and role.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from app.chat.client import ChatClient, ChatReply, ChatRequest, ChatStream
from app.chat.history import HistoryStore, Message, ReplyWriter
from app.chat.stream_parser import Piece
from app.presets.presets import Preset
from app.presets.thinking import (
    ThinkingMemory,
    ThinkingSupport,
    ThinkSwitch,
    apply_thinking,
    sampling_for,
    support_from_template,
    switch_was_ignored,
)
from app.roles.requests import RoleRequest

log = logging.getLogger(__name__)

SENDABLE_STATES = ("done", "stopped", "interrupted")
"""Replies that go back to the model as context (a failed, empty one does not)."""


@dataclass(frozen=True)
class TurnSettings:
    """What the user chose for this message: a toggle beats the preset's thinking mode."""

    thinking: bool | None = None
    preset: Preset | None = None
    role_name: str | None = None
    model: str | None = None
    sampling: dict[str, float | int] | None = None
    max_tokens: int | None = None
    role: RoleRequest | None = None
    """The conversation's role on this backend: system prompt, sampling, adapters."""

    def thinking_mode(self) -> bool | None:
        """The toggle, else the role's default, else the preset's."""
        if self.thinking is not None:
            return self.thinking
        if self.role is not None and self.role.role.thinking is not None:
            return self.role.role.thinking
        return self.preset.request.thinking if self.preset else None

    @property
    def stored_role_name(self) -> str | None:
        return (self.role.role.name or None) if self.role is not None else self.role_name


def build_request(history: Sequence[Message], settings: TurnSettings,
                  support: ThinkingSupport) -> ChatRequest:
    """The request for the next reply to `history` (which ends with the user's turn)."""
    messages: list[dict[str, object]] = []
    preset = settings.preset
    role = settings.role
    system = (role.role.system_prompt if role is not None and role.role.system_prompt
              else preset.request.system_prompt if preset else None)
    if system and not any(m.role == "system" for m in history):
        messages.append({"role": "system", "content": system})
    for message in history:
        if message.role == "assistant" and (message.state not in SENDABLE_STATES
                                            or not message.content):
            continue
        messages.append({"role": message.role, "content": message.content})
    thinking = settings.thinking_mode()
    sent, kwargs = apply_thinking(messages, thinking, support)
    overrides = dict(preset.request.sampling) if preset else {}
    overrides.update(role.role.sampling if role is not None else {})
    overrides.update(settings.sampling or {})
    mode_for_sampling = thinking if support.switch is not ThinkSwitch.NONE else None
    return ChatRequest(
        messages=sent,
        model=(role.model if role is not None and role.model else settings.model),
        max_tokens=settings.max_tokens or (preset.request.max_tokens if preset else None),
        sampling=sampling_for(mode_for_sampling, overrides),
        chat_template_kwargs=kwargs,
        extra=dict(role.extra) if role is not None else {},
    )


@dataclass
class TurnResult:
    message: Message
    reply: ChatReply
    switch_ignored: bool = False
    """A no-think request came back with reasoning: the endpoint now gets the soft switch."""


class ReplyRun:
    """Streams one reply into the store; `cancel()` may be called from any thread."""

    def __init__(self, client: ChatClient, store: HistoryStore, conversation_id: int,
                 request: ChatRequest, settings: TurnSettings, *, endpoint: str,
                 support: ThinkingSupport, memory: ThinkingMemory | None = None) -> None:
        self.client = client
        self.store = store
        self.conversation_id = conversation_id
        self.request = request
        self.settings = settings
        self.endpoint = endpoint
        self.support = support
        self.memory = memory
        self.stream: ChatStream = client.stream(request)
        self.writer: ReplyWriter = store.begin_reply(
            conversation_id, endpoint=endpoint, model=settings.model,
            preset=settings.preset.name if settings.preset else None,
            role_name=settings.stored_role_name, thinking=settings.thinking_mode())
        self.ended = False
        """True once the stream is over (run returned or raised, or the run closed)."""

    @property
    def message_id(self) -> int:
        return self.writer.message_id

    def cancel(self) -> None:
        self.stream.cancel()

    def close(self) -> None:
        """Close the run's client (its connections) once the reply has ended."""
        self.ended = True
        self.client.close()

    def run(self, on_piece: Callable[[Piece], None] | None = None) -> TurnResult:
        """Stream to the end (or to Stop, or to an error); every piece is stored on arrival."""
        try:
            for piece in self.stream:
                self.writer.append(piece)
                if on_piece is not None:
                    on_piece(piece)
        finally:
            self.ended = True
        reply = self.stream.reply
        state = "stopped" if reply.stopped else ("error" if reply.error else "done")
        ignored = (self.support.switch is ThinkSwitch.TEMPLATE
                   and switch_was_ignored(self.settings.thinking_mode(), reply.reasoning))
        error = reply.error
        if ignored:
            note = ("This backend sent reasoning although thinking was off: its template "
                    "ignores enable_thinking, so Rigdeck uses the /no_think soft switch for "
                    "it from now on.")
            error = f"{error} {note}" if error else note
            if self.memory is not None:
                self.memory.use_soft_switch(self.endpoint)
        message = self.writer.finish(
            state=state, error=error, ttft_s=reply.ttft_s, tokens_per_s=reply.tokens_per_s,
            completion_tokens=reply.completion_tokens, reasoning_tokens=reply.reasoning_tokens,
            finish_reason=reply.finish_reason, model=reply.model or self.settings.model)
        return TurnResult(message, reply, ignored)


def detect_support(client: ChatClient, endpoint: str,
                   memory: ThinkingMemory | None = None) -> ThinkingSupport:
    """How to switch thinking on this endpoint: its template (llama.cpp /props), corrected
    by what earlier answers showed."""
    support = support_from_template(client.chat_template())
    return memory.support(endpoint, support) if memory is not None else support
