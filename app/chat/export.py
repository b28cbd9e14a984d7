"""Exports conversations as JSONL in the chat `messages` format used for fine-tuning data,
and as Markdown for reading.

JSONL has one conversation per line: `{"messages": [{"role": ..., "content": ...}, ...]}`.
Reasoning is left out by default (most fine-tuning sets want answers only); "field" keeps it
as `reasoning_content` (what Qwen3-style templates read) and "inline" as a `<think>` block
in the content. Replies that failed with nothing in them are skipped; a user turn left
without its answer is dropped from the end.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from app.chat.history import Conversation, HistoryStore, Message

log = logging.getLogger(__name__)

ReasoningExport = Literal["omit", "field", "inline"]


def training_messages(messages: Iterable[Message],
                      reasoning: ReasoningExport = "omit") -> list[dict[str, Any]]:
    """The conversation as role/content dicts, ready for a fine-tuning line."""
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "assistant" and not message.content and message.state != "done":
            continue
        item: dict[str, Any] = {"role": message.role, "content": message.content}
        if message.role == "assistant" and message.reasoning:
            if reasoning == "field":
                item["reasoning_content"] = message.reasoning
            elif reasoning == "inline":
                item["content"] = f"<think>\n{message.reasoning}\n</think>\n\n{message.content}"
        out.append(item)
    while out and out[-1]["role"] != "assistant":
        out.pop()
    return out


def write_jsonl(store: HistoryStore, out: TextIO, conversation_ids: Iterable[int] | None = None,
                reasoning: ReasoningExport = "omit") -> int:
    """Write one line per conversation (all of them when `conversation_ids` is None).

    Returns the number of lines written; conversations with no complete exchange are skipped.
    """
    ids = ([c.id for c in reversed(store.conversations())] if conversation_ids is None
           else list(conversation_ids))
    written = 0
    for conversation_id in ids:
        messages = training_messages(store.messages(conversation_id), reasoning)
        if messages:
            out.write(json.dumps({"messages": messages}, ensure_ascii=False) + "\n")
            written += 1
    return written


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _stats(message: Message) -> str:
    parts = [p for p in (message.model, message.preset and f"preset {message.preset}") if p]
    if message.tokens_per_s:
        parts.append(f"{message.tokens_per_s:.1f} tok/s")
    if message.ttft_s is not None:
        parts.append(f"TTFT {message.ttft_s * 1000:.0f} ms")
    if message.state != "done":
        parts.append(message.state)
    return f" ({', '.join(parts)})" if parts else ""


def conversation_markdown(conversation: Conversation, messages: Iterable[Message]) -> str:
    """A readable Markdown page; thinking goes in a collapsed <details> block."""
    lines = [f"# {conversation.title}", "", f"_{_when(conversation.created)}_", ""]
    for message in messages:
        lines += [f"## {message.role.capitalize()}{_stats(message)}", ""]
        if message.reasoning:
            lines += ["<details><summary>Thinking</summary>", "", message.reasoning, "",
                      "</details>", ""]
        if message.content:
            lines += [message.content, ""]
        if message.error:
            lines += [f"> **Error:** {message.error}", ""]
    return "\n".join(lines)


def write_markdown(store: HistoryStore, out: TextIO,
                   conversation_ids: Iterable[int] | None = None) -> int:
    """Write the conversations as Markdown, separated by rules; returns how many."""
    conversations = (list(reversed(store.conversations())) if conversation_ids is None
                     else [c for i in conversation_ids if (c := store.conversation(i))])
    for index, conversation in enumerate(conversations):
        if index:
            out.write("\n---\n\n")
        out.write(conversation_markdown(conversation, store.messages(conversation.id)))
    return len(conversations)
