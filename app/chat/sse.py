"""Server-sent events decoding, incremental over arbitrary byte chunks.

The network hands us bytes cut anywhere: inside a UTF-8 sequence, between CR and LF,
in the middle of a field name. The decoder keeps what it cannot finish yet, so the events
come out the same however the stream was split (the tests cut it at every byte).
"""

from __future__ import annotations

import codecs
import logging
from collections.abc import Iterator
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SseEvent:
    """One dispatched event: its `event:` type (default "message") and joined `data:` lines."""

    data: str
    event: str = "message"


class SseDecoder:
    """Feeds bytes in, gets whole events out (the WHATWG event-stream rules)."""

    def __init__(self) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._data: list[str] = []
        self._event = ""
        self._pending_cr = False

    def feed(self, chunk: bytes) -> Iterator[SseEvent]:
        """Decode `chunk` and yield every event it completes."""
        text = self._text.decode(chunk)
        if not text:
            return
        if self._pending_cr:
            # A CR ended the last chunk: an LF right after it belongs to the same line end.
            self._pending_cr = False
            if text.startswith("\n"):
                text = text[1:]
        self._buffer += text
        yield from self._lines()

    def close(self) -> Iterator[SseEvent]:
        """Flush at end of stream; an event not ended by a blank line is dropped (per spec)."""
        self._buffer += self._text.decode(b"", final=True)
        yield from self._lines()
        if self._buffer or self._data:
            log.debug("stream ended inside an event; %d bytes dropped", len(self._buffer))
        self._buffer = ""
        self._data = []

    def _lines(self) -> Iterator[SseEvent]:
        buffer = self._buffer
        start = 0
        length = len(buffer)
        while start < length:
            lf = buffer.find("\n", start)
            cr = buffer.find("\r", start, lf if lf >= 0 else length)
            if cr >= 0:
                end, nxt = cr, cr + 1
                if nxt < length and buffer[nxt] == "\n":
                    nxt += 1
                elif nxt == length:
                    self._pending_cr = True
            elif lf >= 0:
                end, nxt = lf, lf + 1
            else:
                break
            event = self._line(buffer[start:end])
            start = nxt
            if event is not None:
                yield event
        self._buffer = buffer[start:]

    def _line(self, line: str) -> SseEvent | None:
        if not line:
            if not self._data:
                self._event = ""
                return None
            event = SseEvent("\n".join(self._data), self._event or "message")
            self._data = []
            self._event = ""
            return event
        if line.startswith(":"):
            return None  # a comment (keep-alive)
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        return None
