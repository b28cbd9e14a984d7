"""A local OpenAI-compatible chat server on 127.0.0.1 that streams a scripted reply as
server-sent events, the way llama.cpp does, in a thread of the test process."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def chunk(delta: dict[str, str], finish: str | None = None) -> bytes:
    data = {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            "object": "chat.completion.chunk", "model": "scripted"}
    return f"data: {json.dumps(data)}\n\n".encode()


class SseServer:
    """Streams `tokens` (set by the test) as content deltas, `pace_s` apart in groups of
    `group`, then a stop chunk and [DONE]; /props answers 404 (no template known)."""

    def __init__(self) -> None:
        self.tokens: list[str] = ["Hello", " there"]
        self.pace_s = 0.0
        self.group = 20
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(chunk({"role": "assistant", "content": ""}))
                for index, token in enumerate(server.tokens):
                    self.wfile.write(chunk({"content": token}))
                    if server.pace_s and index % server.group == server.group - 1:
                        self.wfile.flush()
                        time.sleep(server.pace_s)
                self.wfile.write(chunk({}, "stop") + b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

            def do_GET(self) -> None:
                self.send_error(404)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self._thread = threading.Thread(target=self._http.serve_forever, name="test-sse")
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"

    @property
    def answer(self) -> str:
        return "".join(self.tokens)

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join()
