"""Turns the chunks of a streamed chat completion into answer and reasoning text.

Servers send the model's thinking three ways: `delta.reasoning_content` (llama.cpp, older
vLLM), `delta.reasoning` (newer vLLM), or inline in `delta.content` between `<think>` and
`</think>` (a server that does not split it). A template that opens the block itself
leaves only a lone `</think>` in the output. All of them end up apart from the answer,
and a tag cut across chunks (the tiny test model emits `<`, `t`, `h`, ... one by one) is
recognised the same as a whole one.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from app.chat.bounds import JsonTooDeepError, loads_bounded
from app.chat.plain_text import shorten

log = logging.getLogger(__name__)

OPEN_TAG = "<think>"
CLOSE_TAG = "</think>"

PieceKind = Literal["reasoning", "answer"]


@dataclass(frozen=True)
class Piece:
    """A run of text of one kind, in stream order."""

    kind: PieceKind
    text: str


class StreamFormatError(Exception):
    """The stream is not the OpenAI chunk format (bad JSON, no choices): the message says how."""


class ServerStreamError(Exception):
    """The server put an error object into the stream (e.g. the context filled up)."""


def _partial_tag_suffix(text: str, tag: str) -> int:
    """Length of the longest end of `text` that is a proper start of `tag`."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


class ThinkTagSplitter:
    """Splits inline `<think>…</think>` out of content text fed in arbitrary pieces.

    A lone `</think>` (the template opened the block) turns what came before it into
    reasoning: `moved` counts the answer characters that were taken back, so a consumer
    that keeps totals (see `ReplyText`) can move them.
    """

    def __init__(self) -> None:
        self._held = ""
        self._in_think = False
        self._seen_open = False
        self._closed = False

    def feed(self, text: str) -> list[Piece]:
        pieces: list[Piece] = []
        text = self._held + text
        self._held = ""
        while text:
            tag = CLOSE_TAG if self._in_think else OPEN_TAG
            at = text.find(tag)
            # A lone close tag matters only while no block has opened or closed yet.
            lone_at = -1 if self._in_think or self._seen_open or self._closed else text.find(
                CLOSE_TAG)
            if lone_at >= 0 and (at < 0 or lone_at < at):
                if lone_at:
                    pieces.append(Piece("answer", text[:lone_at]))
                pieces.append(LONE_CLOSE)
                self._closed = True
                text = text[lone_at + len(CLOSE_TAG):]
                continue
            if at >= 0:
                if at:
                    pieces.append(Piece("reasoning" if self._in_think else "answer", text[:at]))
                self._in_think = not self._in_think
                if self._in_think:
                    self._seen_open = True
                else:
                    self._closed = True
                text = text[at + len(tag):]
                continue
            hold = _partial_tag_suffix(text, tag)
            if lone_at < 0 and not (self._in_think or self._seen_open or self._closed):
                hold = max(hold, _partial_tag_suffix(text, CLOSE_TAG))
            if hold:
                text, self._held = text[:-hold], text[-hold:]
            if text:
                pieces.append(Piece("reasoning" if self._in_think else "answer", text))
            break
        return pieces

    def finish(self) -> list[Piece]:
        """The text held back for a tag that never completed."""
        held, self._held = self._held, ""
        return [Piece("reasoning" if self._in_think else "answer", held)] if held else []


LONE_CLOSE = Piece("reasoning", "")
"""Marker: everything answered so far was reasoning (a lone `</think>`)."""


def is_lone_close(piece: Piece) -> bool:
    return piece is LONE_CLOSE


class ReplyText:
    """The answer and reasoning so far; applies pieces, including a lone close tag.

    The text is kept as a list of parts, joined when read: adding to a str attribute
    copies it each time, which made a long reply of small pieces quadratic.
    """

    def __init__(self) -> None:
        self._answer: list[str] = []
        self._reasoning: list[str] = []
        self.reasoning_pieces = 0
        self.answer_pieces = 0

    @property
    def answer(self) -> str:
        return _joined(self._answer)

    @property
    def reasoning(self) -> str:
        return _joined(self._reasoning)

    def apply(self, piece: Piece) -> None:
        if is_lone_close(piece):
            self._reasoning.extend(self._answer)
            self.reasoning_pieces += self.answer_pieces
            self._answer = []
            self.answer_pieces = 0
        elif piece.kind == "reasoning":
            self._reasoning.append(piece.text)
            self.reasoning_pieces += 1
        else:
            self._answer.append(piece.text)
            self.answer_pieces += 1

    def clean_answer(self) -> str:
        return self.answer.strip()

    def clean_reasoning(self) -> str:
        return self.reasoning.strip()


def _joined(parts: list[str]) -> str:
    """The parts as one string, kept as the only part (the next read costs nothing)."""
    if len(parts) > 1:
        parts[:] = ["".join(parts)]
    return parts[0] if parts else ""


@dataclass
class ChunkInfo:
    """What one chunk carried besides text."""

    pieces: list[Piece] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    timings: dict[str, Any] | None = None
    model: str | None = None
    done: bool = False


class ChunkParser:
    """Parses the `data:` payloads of a chat completion stream, one at a time."""

    def __init__(self) -> None:
        self._splitter = ThinkTagSplitter()

    def feed(self, data: str) -> ChunkInfo:
        """Parse one event's data.

        Raises:
            StreamFormatError: not JSON, or not a chat completion chunk.
            ServerStreamError: the server reported an error inside the stream.
        """
        if data.strip() == "[DONE]":
            return ChunkInfo(pieces=self._splitter.finish(), done=True)
        try:
            chunk = loads_bounded(data)
        except JsonTooDeepError as exc:
            raise StreamFormatError(str(exc)) from None
        except ValueError as exc:
            raise StreamFormatError(
                f"the server sent something that is not JSON: {data[:120]!r}"
            ) from exc
        if not isinstance(chunk, dict):
            raise StreamFormatError(f"the server sent an unexpected value: {data[:120]!r}")
        if "error" in chunk:
            raise ServerStreamError(_error_text(chunk["error"]))
        info = ChunkInfo(
            usage=chunk.get("usage") if isinstance(chunk.get("usage"), dict) else None,
            timings=chunk.get("timings") if isinstance(chunk.get("timings"), dict) else None,
            model=chunk.get("model") if isinstance(chunk.get("model"), str) else None,
        )
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            raise StreamFormatError(f"a chunk without choices: {data[:120]!r}")
        for choice in choices[:1]:
            # "message" in a whole (not streamed) completion, "delta" in a chunk
            delta = (choice.get("delta") or choice.get("message") or {}
                     if isinstance(choice, dict) else None)
            if not isinstance(delta, dict):
                raise StreamFormatError(f"a malformed choice: {data[:120]!r}")
            self._read_choice(choice, delta, info)
        return info

    def _read_choice(self, choice: dict[str, Any], delta: dict[str, Any],
                     info: ChunkInfo) -> None:
        reasoning = delta.get("reasoning_content")
        if not isinstance(reasoning, str) or not reasoning:
            reasoning = delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            info.pieces.append(Piece("reasoning", reasoning))
        content = delta.get("content")
        if isinstance(content, str) and content:
            info.pieces.extend(self._splitter.feed(content))
        reason = choice.get("finish_reason")
        if isinstance(reason, str):
            info.finish_reason = reason
            info.pieces.extend(self._splitter.finish())

    def finish(self) -> list[Piece]:
        """Text still held back when the stream ends without [DONE]."""
        return self._splitter.finish()


def _error_text(error: Any) -> str:
    """The server's error object as one short line of plain text."""
    if isinstance(error, dict):
        message = shorten(str(error.get("message") or json.dumps(error)))
        code = error.get("code")
        return f"{message} (code {shorten(str(code), 40)})" if code else message
    return shorten(str(error))
