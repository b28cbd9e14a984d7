"""Failures the real server cannot be made to produce on demand, from a tiny local server:
garbage in the stream, a server dying mid-answer, silence past the timeout, HTTP errors.

In each the user gets a clear message and keeps what had arrived.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.chat.client import ChatClient, ChatRequest, Timeouts

Script = Callable[[BaseHTTPRequestHandler, threading.Event], None]


def chunk(content: str) -> bytes:
    data = {"choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}]}
    return f"data: {json.dumps(data)}\n\n".encode()


@pytest.fixture
def serve() -> Iterator[Callable[[Script], str]]:
    servers: list[ThreadingHTTPServer] = []
    threads: list[threading.Thread] = []
    release = threading.Event()

    def start(script: Script) -> str:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                script(self, release)

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, name="test-http")
        thread.start()
        servers.append(server)
        threads.append(thread)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    release.set()
    for server in servers:
        server.shutdown()
        server.server_close()
    for thread in threads:
        thread.join()


def stream_head(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.send_header("Connection", "close")
    handler.end_headers()


def ask(url: str, timeouts: Timeouts | None = None) -> tuple[str | None, str]:
    with ChatClient(url, timeouts=timeouts) as client:
        reply = client.stream(ChatRequest([{"role": "user", "content": "Hi"}])).run()
    return reply.error, reply.answer


def test_malformed_sse_keeps_what_arrived(serve: Callable[[Script], str]) -> None:
    def script(handler: BaseHTTPRequestHandler, _: threading.Event) -> None:
        stream_head(handler)
        handler.wfile.write(chunk("Hello") + chunk(" world") + b"data: {not json\n\n")

    error, answer = ask(serve(script))
    assert answer == "Hello world"
    assert error is not None
    assert "not JSON" in error


def test_a_server_dying_mid_stream(serve: Callable[[Script], str]) -> None:
    def script(handler: BaseHTTPRequestHandler, _: threading.Event) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        body = chunk("partial answer")
        handler.wfile.write(f"{len(body):x}\r\n".encode() + body + b"\r\n")
        handler.wfile.flush()
        handler.close_connection = True  # gone without the final zero-length chunk

    error, answer = ask(serve(script))
    assert answer == "partial answer"
    assert error is not None
    assert "broke" in error
    assert "What had arrived is kept" in error


def test_a_stream_that_just_ends(serve: Callable[[Script], str]) -> None:
    def script(handler: BaseHTTPRequestHandler, _: threading.Event) -> None:
        stream_head(handler)
        handler.wfile.write(chunk("so far"))

    error, answer = ask(serve(script))
    assert answer == "so far"
    assert error is not None
    assert "closed the stream before the answer was complete" in error


def test_silence_past_the_read_timeout(serve: Callable[[Script], str]) -> None:
    def script(handler: BaseHTTPRequestHandler, release: threading.Event) -> None:
        stream_head(handler)
        handler.wfile.write(chunk("first words"))
        handler.wfile.flush()
        release.wait(10)

    error, answer = ask(serve(script), Timeouts(read=0.3))
    assert answer == "first words"
    assert error is not None
    assert "sent nothing for 0.3 s" in error


def test_http_error_with_a_json_body(serve: Callable[[Script], str]) -> None:
    def script(handler: BaseHTTPRequestHandler, _: threading.Event) -> None:
        body = json.dumps({"error": {"message": "model not found", "code": 404}}).encode()
        handler.send_response(404)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    error, answer = ask(serve(script))
    assert answer == ""
    assert error is not None
    assert "HTTP 404" in error
    assert "model not found" in error


def test_an_error_object_inside_the_stream(serve: Callable[[Script], str]) -> None:
    def script(handler: BaseHTTPRequestHandler, _: threading.Event) -> None:
        stream_head(handler)
        handler.wfile.write(chunk("Some") + b'data: {"error": {"message": "the context is full"'
                            b', "code": 500}}\n\n')

    error, answer = ask(serve(script))
    assert answer == "Some"
    assert error is not None
    assert "the context is full" in error


def test_nobody_listening() -> None:
    error, _ = ask("http://127.0.0.1:9")
    assert error is not None
    assert "Could not connect" in error
