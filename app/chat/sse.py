"""Server-sent events decoding, incremental over arbitrary byte chunks.

The network hands us bytes cut anywhere: inside a UTF-8 sequence, between CR and LF,
in the middle of a field name. The decoder keeps what it cannot finish yet, so the events
come out the same however the stream was split (the tests cut it at every byte).

It is linear in its input: each chunk is scanned once, and a line not ended yet is kept
as a list of its parts, never rescanned (a 100 MB line without a newline used to take a
minute). A line or an event longer than its cap ends the stream with `SseLimitError`:
no chat chunk is megabytes long, and holding one would let a server fill the memory.
"""

from __future__ import annotations

import codecs
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass

log = logging.getLogger(__name__)

MAX_LINE_CHARS = 8 * 1024 * 1024
"""The longest line (8 MiB of ASCII); a chat chunk is a few hundred bytes."""
MAX_EVENT_CHARS = 8 * 1024 * 1024
"""The longest event, all its `data:` lines together."""

_LINE_END = re.compile(r"\r\n?|\n")


class SseLimitError(Exception):
    """A line or an event passed its cap; the message says which and how long."""


def _mib(chars: int) -> str:
    return f"{chars / (1024 * 1024):g} MiB"


@dataclass(frozen=True)
class SseEvent:
    """One dispatched event: its `event:` type (default "message") and joined `data:` lines."""

    data: str
    event: str = "message"


class SseDecoder:
    """Feeds bytes in, gets whole events out (the WHATWG event-stream rules)."""

    def __init__(self, max_line: int = MAX_LINE_CHARS,
                 max_event: int = MAX_EVENT_CHARS) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._max_line = max_line
        self._max_event = max_event
        self._partial: list[str] = []
        """The parts of a line not ended yet."""
        self._partial_len = 0
        self._data: list[str] = []
        self._data_len = 0
        self._event = ""
        self._pending_cr = False

    def feed(self, chunk: bytes) -> Iterator[SseEvent]:
        """Decode `chunk` and yield every event it completes.

        Raises:
            SseLimitError: a line or an event is longer than the decoder's cap.
        """
        text = self._text.decode(chunk)
        if not text:
            return
        if self._pending_cr:
            # A CR ended the last chunk: an LF right after it belongs to the same line end.
            self._pending_cr = False
            if text.startswith("\n"):
                text = text[1:]
        yield from self._scan(text)

    def close(self) -> Iterator[SseEvent]:
        """Flush at end of stream; an event not ended by a blank line is dropped (per spec)."""
        yield from self._scan(self._text.decode(b"", final=True))
        if self._partial or self._data:
            log.debug("stream ended inside an event; %d characters dropped",
                      self._partial_len + self._data_len)
        self._partial, self._partial_len = [], 0
        self._data, self._data_len = [], 0

    def _scan(self, text: str) -> Iterator[SseEvent]:
        start = 0
        for end in _LINE_END.finditer(text):
            if self._partial_len + end.start() - start > self._max_line:
                raise self._line_too_long()
            if self._partial:
                self._partial.append(text[start:end.start()])
                line = "".join(self._partial)
                self._partial, self._partial_len = [], 0
            else:
                line = text[start:end.start()]
            start = end.end()
            if start == len(text) and end.group() == "\r":
                self._pending_cr = True
            event = self._line(line)
            if event is not None:
                yield event
        if start < len(text):
            self._partial_len += len(text) - start
            if self._partial_len > self._max_line:
                raise self._line_too_long()
            self._partial.append(text[start:])

    def _line_too_long(self) -> SseLimitError:
        return SseLimitError(f"the server sent a line longer than {_mib(self._max_line)} "
                             "(no chat chunk is that long)")

    def _line(self, line: str) -> SseEvent | None:
        if not line:
            if not self._data:
                self._event = ""
                return None
            event = SseEvent("\n".join(self._data), self._event or "message")
            self._data, self._data_len = [], 0
            self._event = ""
            return event
        if line.startswith(":"):
            return None  # a comment (keep-alive)
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data_len += len(value) + 1
            if self._data_len > self._max_event:
                raise SseLimitError(f"the server sent an event longer than "
                                    f"{_mib(self._max_event)} (no chat chunk is that long)")
            self._data.append(value)
        elif name == "event":
            self._event = value
        return None
