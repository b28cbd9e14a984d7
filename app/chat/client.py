"""A streaming client for OpenAI-compatible `/v1/chat/completions` (llama.cpp, vLLM, any URL).

The stream runs in whatever thread iterates it (a worker in the GUI, the main thread in
the CLI); `ChatStream.cancel()` may be called from any other thread and closes the
connection at once, which is what makes llama-server and vLLM stop generating. Every
failure (no server, HTTP error, timeout, a server dying mid-stream, garbage in the
stream) ends the iteration with a readable `reply.error`; what had arrived is kept.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx

from app.chat.base_url import normalise_base_url
from app.chat.bounds import (
    ERROR_BODY_BYTES,
    JSON_BODY_BYTES,
    MAX_REPLY_MIB,
    MIB,
    loads_bounded,
    read_capped,
)
from app.chat.plain_text import plain_text, shorten
from app.chat.sse import SseDecoder, SseLimitError
from app.chat.stream_parser import (
    ChunkInfo,
    ChunkParser,
    Piece,
    ReplyText,
    ServerStreamError,
    StreamFormatError,
)

log = logging.getLogger(__name__)

NOT_A_STREAM_SHOWN = 200
"""Bytes of an answer that is no event stream kept to show what it was."""


@dataclass(frozen=True)
class Timeouts:
    """Explicit limits for every request: `read` is the longest silence between two chunks
    (a long prompt on a CPU can take minutes before the first token)."""

    connect: float = 5.0
    read: float = 300.0
    write: float = 30.0
    pool: float = 5.0

    def httpx(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write,
                             pool=self.pool)


@dataclass
class ChatRequest:
    """One chat completion request; `sampling` holds temperature, top_p, top_k, min_p, ..."""

    messages: list[dict[str, Any]]
    model: str | None = None
    max_tokens: int | None = None
    sampling: dict[str, float | int] = field(default_factory=dict)
    chat_template_kwargs: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "messages": self.messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if self.model:
            body["model"] = self.model
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        body.update(self.sampling)
        if self.chat_template_kwargs is not None:
            body["chat_template_kwargs"] = self.chat_template_kwargs
        body.update(self.extra)
        return body


@dataclass
class ChatReply:
    """What a stream produced: text, how it ended, and how fast it came."""

    answer: str = ""
    reasoning: str = ""
    finish_reason: str | None = None
    error: str | None = None
    stopped: bool = False
    model: str | None = None
    ttft_s: float | None = None
    tokens_per_s: float | None = None
    tokens_per_s_source: str | None = None
    """"server" (its own timings), "usage" (its token count over our clock) or "counted"."""
    completion_tokens: int | None = None
    prompt_tokens: int | None = None
    reasoning_tokens: int = 0
    """Chunks of reasoning received (one token each on llama.cpp and vLLM)."""
    chunks: int = 0
    stream_s: float | None = None
    """Seconds from the first text to the last."""
    timings: dict[str, float] = field(default_factory=dict)
    """The server's own account of the request (llama.cpp's `timings`: prompt_n,
    prompt_ms, prompt_per_second, predicted_n, predicted_ms, predicted_per_second), its
    numbers only; empty where the server sends none (vLLM)."""

    @property
    def ok(self) -> bool:
        return self.error is None


class ChatStream:
    """One streamed reply: iterate for pieces; `reply` and `text` hold everything so far."""

    def __init__(self, client: httpx.Client, url: str, request: ChatRequest,
                 headers: dict[str, str], *, max_reply_bytes: int = MAX_REPLY_MIB * MIB
                 ) -> None:
        self._client = client
        self.max_reply_bytes = max_reply_bytes
        self._room = max_reply_bytes
        """Bytes of text the reply may still take."""
        self._url = url
        self._request = request
        self._headers = headers
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._response: httpx.Response | None = None
        self.text = ReplyText()
        self.reply = ChatReply()
        self._start = 0.0
        self._first: float | None = None
        self._last: float | None = None

    def cancel(self) -> None:
        """Stop the stream from any thread: the connection is shut at once."""
        self._cancelled.set()
        with self._lock:
            response = self._response
        if response is not None:
            _shutdown_socket(response)

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def __iter__(self) -> Iterator[Piece]:
        self._start = time.perf_counter()
        try:
            with self._client.stream("POST", self._url, json=self._request.body(),
                                     headers=self._headers) as response:
                with self._lock:
                    self._response = response
                if self._cancelled.is_set():
                    _shutdown_socket(response)
                if response.status_code >= 400:
                    body, cut = read_capped(response, ERROR_BODY_BYTES)
                    self.reply.error = _http_error_text(response, body, cut)
                    return
                if response.status_code >= 300:
                    self.reply.error = _redirect_text(response)
                    return
                if _is_json(response):
                    yield from self._read_whole(response)
                else:
                    yield from self._read(response)
        except SseLimitError as exc:
            self.reply.error = f"The reply was ended: {exc}. What had arrived is kept."
        except (StreamFormatError, ServerStreamError) as exc:
            self.reply.error = f"The server's stream broke off: {exc}. What had arrived is kept."
        except httpx.TimeoutException as exc:
            self.reply.error = _timeout_text(exc, self._client.timeout)
        except httpx.TransportError as exc:
            self.reply.error = self._transport_error_text(exc)
        except httpx.DecodingError as exc:
            self.reply.error = (f"The server's answer could not be decoded ({exc}). What had "
                                "arrived is kept.")
        finally:
            with self._lock:
                self._response = None
            self._finish()

    def _read(self, response: httpx.Response) -> Iterator[Piece]:
        """The pieces of an event stream (decoded from gzip or deflate where it came so)."""
        decoder = SseDecoder()
        parser = ChunkParser()
        head = b""
        events = 0
        for raw in response.iter_bytes():
            if len(head) < NOT_A_STREAM_SHOWN:
                head += raw[: NOT_A_STREAM_SHOWN - len(head)]
            for event in decoder.feed(raw):
                events += 1
                info = parser.feed(event.data)
                if (yield from self._pieces(info)) or info.done:
                    return
        for piece in parser.finish():
            self.text.apply(piece)
            yield piece
        if self.reply.finish_reason is None and not self._cancelled.is_set():
            if not events and _media_type(response) != "text/event-stream":
                self.reply.error = _not_a_stream_text(response, head)
            else:
                self.reply.error = ("The server closed the stream before the answer was "
                                    "complete. What had arrived is kept.")

    def _read_whole(self, response: httpx.Response) -> Iterator[Piece]:
        """A whole chat completion as JSON, from a server that does not stream: it is
        the reply (read to twice the longest reply, JSON escapes included)."""
        body, cut = read_capped(response, 2 * self.max_reply_bytes + MIB)
        if cut:
            self.reply.error = (f"The server sent its answer whole, not streamed, and it is "
                                f"longer than {self.max_reply_bytes / MIB:g} MiB, the longest "
                                f"reply kept ({_reply_setting()}); nothing of it is kept.")
            return
        parser = ChunkParser()
        try:
            info = parser.feed(body.decode("utf-8", errors="replace"))
        except ServerStreamError as exc:
            self.reply.error = f"The server answered with an error: {exc}."
            return
        except StreamFormatError as exc:
            self.reply.error = (f"The server answered with JSON that is no chat completion "
                                f"({exc}): is this an OpenAI-compatible server?")
            return
        if not (yield from self._pieces(info)):
            for piece in parser.finish():
                self.text.apply(piece)
                yield piece
        if self.reply.finish_reason is None and self.reply.error is None:
            self.reply.finish_reason = "stop"  # a whole answer is complete as it stands

    def _pieces(self, info: ChunkInfo) -> Generator[Piece, None, bool]:
        """The pieces of one chunk, within the longest reply; True where it was cut."""
        self._take(info)
        for piece in info.pieces:
            kept = self._within_cap(piece)
            self._count(kept)
            yield kept
            if kept is not piece:
                self.reply.error = self._cut_text()
                return True
        return False

    def _within_cap(self, piece: Piece) -> Piece:
        """`piece`, or its part that fits the longest reply (a new, shorter piece)."""
        text = piece.text
        size = len(text) if text.isascii() else len(text.encode("utf-8"))
        if size <= self._room:
            self._room -= size
            return piece
        kept = text.encode("utf-8")[: self._room].decode("utf-8", errors="ignore")
        self._room = 0
        return Piece(piece.kind, kept)

    def _cut_text(self) -> str:
        return (f"Answer cut at {self.max_reply_bytes / MIB:g} MiB, the longest reply "
                f"kept ({_reply_setting()}); the part received is kept.")

    def _count(self, piece: Piece) -> None:
        if piece.text:
            now = time.perf_counter()
            if self._first is None:
                self._first = now
                self.reply.ttft_s = now - self._start
            self._last = now
            self.reply.chunks += 1
            if piece.kind == "reasoning":
                self.reply.reasoning_tokens += 1
        self.text.apply(piece)

    def _transport_error_text(self, exc: httpx.TransportError) -> str | None:
        if self._cancelled.is_set():
            return None
        if isinstance(exc, httpx.ConnectError):
            return (f"Could not connect to {self._url}: {exc}. Is the server running and "
                    "the address right?")
        reason = str(exc) or type(exc).__name__
        return (f"The connection to the server broke ({reason}): the server may have "
                "stopped or crashed. What had arrived is kept.")

    def run(self) -> ChatReply:
        """Consume the whole stream (for callers that only want the result)."""
        for _ in self:
            pass
        return self.reply

    def _take(self, info: ChunkInfo) -> None:
        if info.model:
            self.reply.model = info.model
        if info.finish_reason:
            self.reply.finish_reason = info.finish_reason
        if info.usage:
            tokens = info.usage.get("completion_tokens")
            prompt = info.usage.get("prompt_tokens")
            self.reply.completion_tokens = tokens if isinstance(tokens, int) else None
            self.reply.prompt_tokens = prompt if isinstance(prompt, int) else None
        if info.timings:
            self.reply.timings = {k: float(v) for k, v in info.timings.items()
                                  if isinstance(v, int | float) and not isinstance(v, bool)}
            rate = info.timings.get("predicted_per_second")
            if isinstance(rate, int | float) and rate > 0:
                self.reply.tokens_per_s = float(rate)
                self.reply.tokens_per_s_source = "server"

    def _finish(self) -> None:
        reply, first, last = self.reply, self._first, self._last
        if self._cancelled.is_set() and reply.finish_reason is None:
            reply.stopped = True
            reply.error = None
        reply.answer = self.text.clean_answer()
        reply.reasoning = self.text.clean_reasoning()
        if first is not None and last is not None and last > first:
            reply.stream_s = last - first
            if reply.tokens_per_s is None:
                if reply.completion_tokens:
                    # The first token's time is the start of the window, so it is not counted.
                    reply.tokens_per_s = (reply.completion_tokens - 1) / reply.stream_s
                    reply.tokens_per_s_source = "usage"
                elif reply.chunks > 1:
                    reply.tokens_per_s = (reply.chunks - 1) / reply.stream_s
                    reply.tokens_per_s_source = "counted"


def _shutdown_socket(response: httpx.Response) -> None:
    """Wake a read blocked in another thread: shutting the socket down ends it at once."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _http_error_text(response: httpx.Response, body: bytes, cut: bool) -> str:
    """The server's error answer in one line: its message (from JSON where it sent
    JSON), shortened and stripped of control characters."""
    detail = body.decode("utf-8", errors="replace").strip()
    if not cut:
        with contextlib.suppress(ValueError):
            data = loads_bounded(detail)
            if isinstance(data, dict):
                error = data.get("error", data)
                if isinstance(error, dict):
                    detail = str(error.get("message") or error)
                elif isinstance(error, str):
                    detail = error
                elif "detail" in data:
                    detail = str(data["detail"])
    hint = ""
    if response.status_code in (401, 403):
        hint = " Check the API key saved for this endpoint."
    elif response.status_code == 404:
        hint = " Is this an OpenAI-compatible server (it should answer /v1/chat/completions)?"
    elif response.status_code == 503:
        hint = " The server may still be loading the model."
    return (f"The server answered HTTP {response.status_code} "
            f"{plain_text(response.reason_phrase)}: {shorten(detail) or '(no details)'}."
            f"{hint}")


def _reply_setting() -> str:
    from app.settings import setting_place

    return setting_place("chat_max_reply_mib")


def _media_type(response: httpx.Response) -> str:
    kind = str(response.headers.get("content-type", ""))
    return kind.partition(";")[0].strip().lower()


def _is_json(response: httpx.Response) -> bool:
    kind = _media_type(response)
    return kind == "application/json" or kind.endswith("+json")


def _redirect_text(response: httpx.Response) -> str:
    """A redirect named for what it is. It is not followed: the request carries the
    server's key, which must not go to an address the user did not give."""
    location = str(response.headers.get("location", ""))
    if not location:
        return (f"The server answered HTTP {response.status_code} (a redirect) without "
                "saying where to; is this an OpenAI-compatible server?")
    try:
        target = str(response.url.join(location))
    except httpx.InvalidURL:
        target = location
    target = shorten(target, 300)
    base = target.removesuffix("/chat/completions")
    return (f"The server redirected to {target} (HTTP {response.status_code}); use that URL"
            f"{f' ({base})' if base != target else ''} instead. Rigdeck does not follow "
            "redirects, so a request and its key go only where you point them.")


def _not_a_stream_text(response: httpx.Response, head: bytes) -> str:
    kind = _media_type(response) or "no content type"
    began = shorten(head.decode("utf-8", errors="replace"), 80)
    return (f"The server answered {kind}, not a stream of events"
            f"{f', beginning “{began}”' if began else ''}: is this an OpenAI-compatible "
            "server (it should answer /v1/chat/completions)?")


def _timeout_text(exc: httpx.TimeoutException, timeout: httpx.Timeout) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return f"The server did not accept the connection within {timeout.connect:g} s."
    if isinstance(exc, httpx.ReadTimeout):
        return (f"The server sent nothing for {timeout.read:g} s, so the request was given up. "
                "What had arrived is kept.")
    return f"The request timed out ({type(exc).__name__})."


_ssl_lock = threading.Lock()
_ssl_context: ssl.SSLContext | None = None


def _shared_ssl_context() -> ssl.SSLContext:
    """One verifying SSL context for every client: building one costs about 50 ms (it
    loads the CA store), too long to pay on the GUI thread at each Send."""
    global _ssl_context  # noqa: PLW0603 - a process-wide cache, built once under a lock
    with _ssl_lock:
        if _ssl_context is None:
            _ssl_context = ssl.create_default_context()
        return _ssl_context


class ChatClient:
    """Talks to one server; one httpx client (a connection pool) for its lifetime."""

    def __init__(self, base_url: str, api_key: str | None = None,
                 timeouts: Timeouts | None = None, *,
                 max_reply_mib: float = MAX_REPLY_MIB) -> None:
        self.base_url = normalise_base_url(base_url)
        self.max_reply_mib = max_reply_mib
        """The longest reply a stream keeps; past it the reply is cut, the part kept."""
        self.root_url = self.base_url[: -len("/v1")]
        self.timeouts = timeouts or Timeouts()
        self._headers = {"Accept": "text/event-stream"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._http = httpx.Client(timeout=self.timeouts.httpx(), verify=_shared_ssl_context())

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def stream(self, request: ChatRequest) -> ChatStream:
        """A stream for `request`; nothing is sent until it is iterated."""
        return ChatStream(self._http, f"{self.base_url}/chat/completions", request,
                          self._headers, max_reply_bytes=int(self.max_reply_mib * MIB))

    def _probe_timeout(self, longest: float) -> float:
        """A probe waits `longest` seconds at most, less where the user asked for less."""
        return min(longest, self.timeouts.read)

    def _get_json(self, url: str, body: dict[str, Any] | None = None) -> Any:
        """The JSON at `url` (None on any failure: these are optional questions); the
        body is read to a cap and parsed to a depth, whatever the server sends."""
        headers = {k: v for k, v in self._headers.items() if k != "Accept"}
        try:
            with self._http.stream("GET" if body is None else "POST", url, json=body,
                                   headers=headers,
                                   timeout=self._probe_timeout(10.0)) as response:
                if response.status_code != 200:
                    return None
                data, cut = read_capped(response, JSON_BODY_BYTES)
        except httpx.HTTPError as exc:
            log.debug("%s: %s", url, exc)
            return None
        if cut:
            log.debug("%s: an answer of more than %d bytes, ignored", url, JSON_BODY_BYTES)
            return None
        try:
            return loads_bounded(data)
        except ValueError as exc:
            log.debug("%s: %s", url, exc)
            return None

    def reachable(self) -> bool:
        """Whether anything answers HTTP at this address (any status counts; the body is
        not read)."""
        try:
            with self._http.stream("GET", f"{self.base_url}/models", headers=self._headers,
                                   timeout=self._probe_timeout(5.0)):
                pass
        except httpx.HTTPError:
            return False
        return True

    def models(self) -> list[str]:
        """The model ids the server lists (empty when it lists none or cannot be reached)."""
        data = self._get_json(f"{self.base_url}/models")
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            return []
        return [m["id"] for m in data["data"] if isinstance(m, dict) and "id" in m]

    def chat_template(self) -> str | None:
        """The chat template a llama.cpp server uses (its /props), None where not told."""
        data = self._get_json(f"{self.root_url}/props")
        template = data.get("chat_template") if isinstance(data, dict) else None
        return template if isinstance(template, str) else None

    def apply_template(self, messages: list[dict[str, Any]],
                       chat_template_kwargs: dict[str, Any] | None = None) -> str | None:
        """The prompt llama.cpp would build for `messages` (its /apply-template)."""
        body: dict[str, Any] = {"messages": messages}
        if chat_template_kwargs is not None:
            body["chat_template_kwargs"] = chat_template_kwargs
        data = self._get_json(f"{self.root_url}/apply-template", body)
        prompt = data.get("prompt") if isinstance(data, dict) else None
        return prompt if isinstance(prompt, str) else None
