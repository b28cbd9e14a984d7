"""A hostile OpenAI-compatible server on 127.0.0.1: each case misbehaves in one way.

It is a real HTTP server (the standard library's, one thread per connection) that answers
every request of a case the way that case says: an endless or a 300 MB error page, a
300 MB event or line, JSON nested 100,000 deep, escape sequences in the reply, a gzipped
stream, a redirect, a whole (not streamed) answer, a reset connection, silence. It never
holds a huge body itself: it writes the same small block again and again, so measuring the
client's memory measures the client. `close()` ends every connection it still serves.
"""

from __future__ import annotations

import gzip
import json
import socket
import struct
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MIB = 1024 * 1024
HUGE = 300 * MIB
"""How much a "huge" answer would send if the client read it all."""
BLOCK = b"x" * (64 * 1024)

Behaviour = Callable[["HostileHandler"], None]


def chunk(content: str | None = None, *, reasoning: str | None = None,
          finish: str | None = None) -> bytes:
    """One `data:` event of a chat completion stream."""
    delta: dict[str, str] = {}
    if content is not None:
        delta["content"] = content
    if reasoning is not None:
        delta["reasoning_content"] = reasoning
    data = {"object": "chat.completion.chunk", "model": "hostile",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(data)}\n\n".encode()


DONE = b"data: [DONE]\n\n"


class HostileHandler(BaseHTTPRequestHandler):
    """Reads the request, then lets the server's behaviour answer it."""

    protocol_version = "HTTP/1.1"
    timeout = 10  # a write blocked on a client that stopped reading gives up
    server: HostileServer

    def do_GET(self) -> None:
        self.server.answer(self)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.answer(self)

    def log_message(self, format: str, *args: object) -> None:
        pass

    # -------------------------------------------------------------- writing
    @property
    def is_chat(self) -> bool:
        return self.command == "POST" and self.path.endswith("/chat/completions")

    def head(self, status: int, content_type: str, *, length: int | None = None,
             extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if length is not None:
            self.send_header("Content-Length", str(length))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.send_header("Connection", "close")
        self.end_headers()

    def stream_head(self) -> None:
        self.head(200, "text/event-stream")

    def send(self, data: bytes) -> bool:
        """Write and flush; False once the client has gone (or the server closes)."""
        if self.server.closing.is_set():
            return False
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            return False
        return True

    def send_repeated(self, total: int | None, block: bytes = BLOCK) -> None:
        """`block` again and again, `total` bytes in all (None: for ever)."""
        sent = 0
        while total is None or sent < total:
            part = block if total is None else block[: total - sent]
            if not self.send(part):
                return
            sent += len(part)

    def reset(self) -> None:
        """Close with a TCP reset (RST), not a clean end."""
        self.wfile.flush()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                   struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def wait_for_close(self) -> None:
        """Say nothing more until the server closes."""
        self.server.closing.wait()
        self.close_connection = True

    def not_found(self) -> None:
        body = b'{"error": {"message": "not here"}}'
        self.head(404, "application/json", length=len(body))
        self.send(body)


class HostileServer(ThreadingHTTPServer):
    """One case's server; `url` is its base URL (add /v1 for the OpenAI API)."""

    daemon_threads = True

    def __init__(self, behaviour: Behaviour) -> None:
        super().__init__(("127.0.0.1", 0), HostileHandler)
        self.behaviour = behaviour
        self.closing = threading.Event()
        self.requests: list[str] = []
        self._thread = threading.Thread(target=self.serve_forever, name="hostile-server")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> HostileServer:
        self._thread.start()
        return self

    def answer(self, handler: HostileHandler) -> None:
        self.requests.append(f"{handler.command} {handler.path}")
        self.behaviour(handler)

    def close(self) -> None:
        self.closing.set()
        self.shutdown()
        self.server_close()
        self._thread.join()


# ---------------------------------------------------------------------- the cases
def endless_error(h: HostileHandler) -> None:
    """Every request: HTTP 500 and an error page that never ends."""
    h.head(500, "text/html")
    h.send(b"<html><body>Internal Server Error ")
    h.send_repeated(None)


def huge_error(h: HostileHandler) -> None:
    """Every request: HTTP 500 with a 300 MB JSON error (its length announced)."""
    opening = b'{"error": {"message": "out of memory: '
    h.head(500, "application/json", length=HUGE)
    h.send(opening)
    h.send_repeated(HUGE - len(opening))


def huge_event(h: HostileHandler) -> None:
    """The chat: one word, then an event of 1 MiB `data:` lines that never ends (300 MB)."""
    if not h.is_chat:
        h.not_found()
        return
    h.stream_head()
    h.send(chunk("Hello"))
    line = b"data: " + b"y" * (MIB - 7) + b"\n"
    h.send_repeated(HUGE, line)


def huge_line(h: HostileHandler) -> None:
    """The chat: one word, then a 300 MB `data:` line without a newline."""
    if not h.is_chat:
        h.not_found()
        return
    h.stream_head()
    h.send(chunk("Hello") + b'data: {"choices": [{"delta": {"content": "')
    h.send_repeated(HUGE)


DEEP = 100_000


def deep_json(h: HostileHandler) -> None:
    """Everything: JSON nested 100,000 levels deep (the chat after one good word)."""
    deep = b"[" * DEEP + b"]" * DEEP
    if not h.is_chat:
        h.head(200, "application/json", length=len(deep))
        h.send(deep)
        return
    h.stream_head()
    h.send(chunk("Hello") + b"data: " + deep + b"\n\n")
    h.wait_for_close()


ESCAPES = [
    chunk(reasoning="think \x1b]0;pwned title\x07quietly"),
    chunk("Plain \x1b[2J\x1b[Hstart, "),
    chunk("\x1b[31mred\x1b[0m, "),
    chunk("clipboard \x1b]52;c;ZXZpbCBjb21tYW5k\x07gone, "),
    chunk("split \x1b["),  # a sequence cut between two chunks
    chunk("1;32mgreen, "),
    chunk("bell\x07 cr\r over \x9b31m c1, "),
    chunk("title \x1bP+q544e\x1b\\ dcs, tab\tand end"),
    chunk(finish="stop"),
    DONE,
]


def escapes(h: HostileHandler) -> None:
    """The chat: terminal escape sequences and control characters in the reply."""
    if not h.is_chat:
        h.not_found()
        return
    h.stream_head()
    h.send(b"".join(ESCAPES))


GOOD_STREAM = chunk("Hello") + chunk(" from a gzipped stream.") + chunk(finish="stop") + DONE


def gzipped(h: HostileHandler) -> None:
    """The chat: a good stream, gzip-encoded."""
    if not h.is_chat:
        h.not_found()
        return
    body = gzip.compress(GOOD_STREAM)
    h.head(200, "text/event-stream", length=len(body), extra={"Content-Encoding": "gzip"})
    h.send(body)


def gzip_bomb(h: HostileHandler) -> None:
    """The chat: a gzipped stream that inflates to a 300 MB line (300 KB on the wire)."""
    if not h.is_chat:
        h.not_found()
        return
    h.head(200, "text/event-stream", extra={"Content-Encoding": "gzip"})
    sink = _Sink(h)
    squeeze = gzip.GzipFile(fileobj=sink, mode="wb")
    squeeze.write(chunk("Hello") + b"data: ")
    for _ in range(HUGE // len(BLOCK)):
        if sink.gone:
            return
        squeeze.write(BLOCK)
    squeeze.close()


class _Sink:
    """A file that writes gzip's output to the client (and stops once it has gone)."""

    def __init__(self, handler: HostileHandler) -> None:
        self.handler = handler
        self.gone = False

    def write(self, data: bytes) -> int:
        if not self.gone and not self.handler.send(data):
            self.gone = True
        return len(data)

    def flush(self) -> None:
        pass


def redirect(h: HostileHandler) -> None:
    """Everything: 307 to another address."""
    h.head(307, "text/plain", length=0,
           extra={"Location": f"{h.server.url}/elsewhere{h.path}"})


WHOLE_ANSWER = "The whole answer at once, not streamed."


def not_streamed(h: HostileHandler) -> None:
    """The chat: a whole chat completion as JSON, though a stream was asked for."""
    if not h.is_chat:
        h.not_found()
        return
    body = json.dumps({
        "id": "x", "object": "chat.completion", "model": "hostile",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": WHOLE_ANSWER,
                                 "reasoning_content": "Thought first."}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 9},
    }).encode()
    h.head(200, "application/json", length=len(body))
    h.send(body)


def html_page(h: HostileHandler) -> None:
    """The chat: HTTP 200 with a web page (a captive portal, a proxy's login)."""
    if not h.is_chat:
        h.not_found()
        return
    body = b"<!DOCTYPE html><html><body>Please log in to the proxy</body></html>"
    h.head(200, "text/html", length=len(body))
    h.send(body)


def reset(h: HostileHandler) -> None:
    """Everything: a reset connection (the chat after one word)."""
    if h.is_chat:
        h.stream_head()
        h.send(chunk("Hello"))
    h.reset()


def silence(h: HostileHandler) -> None:
    """Everything: silence (the chat after one word)."""
    if h.is_chat:
        h.stream_head()
        h.send(chunk("Hello"))
    h.wait_for_close()


def mute(h: HostileHandler) -> None:
    """Everything: the request is taken, and no answer ever starts."""
    h.wait_for_close()


ENDLESS_PIECE = "z" * (16 * 1024)


def endless_reply(h: HostileHandler) -> None:
    """The chat: a reply that never ends, 16 KiB a chunk."""
    if not h.is_chat:
        h.not_found()
        return
    h.stream_head()
    piece = chunk(ENDLESS_PIECE)
    while h.send(piece):
        pass


CASES: dict[str, Behaviour] = {
    "endless_error": endless_error,
    "huge_error": huge_error,
    "huge_event": huge_event,
    "huge_line": huge_line,
    "deep_json": deep_json,
    "escapes": escapes,
    "gzip": gzipped,
    "gzip_bomb": gzip_bomb,
    "redirect": redirect,
    "not_streamed": not_streamed,
    "html_page": html_page,
    "reset": reset,
    "silence": silence,
    "mute": mute,
    "endless_reply": endless_reply,
}


def describe(value: Any) -> str:
    """A case's one-line description (its behaviour's docstring)."""
    return (getattr(value, "__doc__", "") or "").strip().splitlines()[0]
