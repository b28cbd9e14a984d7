"""Exports conversations as JSONL in the chat `messages` format used for fine-tuning data,
and as Markdown for reading.

JSONL has one conversation per line: `{"messages": [{"role": ..., "content": ...}, ...]}`.
Reasoning is left out by default (most fine-tuning sets want answers only); "field" keeps it
as `reasoning_content` (what Qwen3-style templates read) and "inline" as a `<think>` block
in the content. Every conversation asked for is one line, as stored: a reply that failed
with nothing in it is left out, a reply cut short keeps what came, a last question that
got no answer stays (a fine-tuning set may want those lines dropped). An export to a file
is written atomically: a full disk leaves the file that was there.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TextIO

from app.chat.history import Conversation, HistoryStore, Message
from app.errors import UserError
from app.user_files import atomic_output

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
    return out


def _asked(store: HistoryStore, conversation_ids: Iterable[int] | None) -> list[Conversation]:
    """The conversations asked for, oldest first when all are.

    Raises:
        UserError: an id of no stored conversation.
    """
    if conversation_ids is None:
        return list(reversed(store.conversations()))
    asked = [(i, store.conversation(i)) for i in conversation_ids]
    missing = [str(i) for i, conversation in asked if conversation is None]
    if missing:
        raise UserError(f"no stored conversation {', '.join(missing)} (see rigdeck chat "
                        "--list); nothing was exported")
    return [conversation for _i, conversation in asked if conversation is not None]


def write_jsonl(store: HistoryStore, out: TextIO, conversation_ids: Iterable[int] | None = None,
                reasoning: ReasoningExport = "omit") -> int:
    """Write one line per conversation asked for (all of them when `conversation_ids` is
    None); returns how many lines went out.

    Raises:
        UserError: an id of no stored conversation (nothing is written).
    """
    conversations = _asked(store, conversation_ids)
    for conversation in conversations:
        messages = training_messages(store.messages(conversation.id), reasoning)
        out.write(json.dumps({"messages": messages}, ensure_ascii=False) + "\n")
    return len(conversations)


def export_to_file(store: HistoryStore, path: Path, fmt: str,
                   conversation_ids: Iterable[int] | None = None,
                   reasoning: ReasoningExport = "omit") -> int:
    """Write the export ("jsonl" or "md") to `path` atomically; returns how many
    conversations went in.

    Raises:
        UserError: an id of no stored conversation, or the file cannot be written (what
            was at `path` is then unchanged).
    """
    try:
        with atomic_output(path, create_folder=False) as raw:
            out = io.TextIOWrapper(raw, encoding="utf-8", newline="\n")
            count = (write_jsonl(store, out, conversation_ids, reasoning) if fmt == "jsonl"
                     else write_markdown(store, out, conversation_ids))
            out.flush()
            out.detach()  # the handle is atomic_output's to close
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}; nothing was "
                        "exported") from None
    return count


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
    """Write the conversations as Markdown, separated by rules; returns how many.

    Raises:
        UserError: an id of no stored conversation (nothing is written).
    """
    conversations = _asked(store, conversation_ids)
    for index, conversation in enumerate(conversations):
        if index:
            out.write("\n---\n\n")
        out.write(conversation_markdown(conversation, store.messages(conversation.id)))
    return len(conversations)
