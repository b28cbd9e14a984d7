"""A loopback HTTP server that answers in the shapes vLLM documents for LoRA serving and
records every request, so tests can check what Rigdeck sends a vLLM backend.

Shapes (vLLM docs, "Using LoRA adapters" and the OpenAI-compatible server):
- `GET /v1/models`: `{"object": "list", "data": [{"id", "object": "model", "root",
  "parent"}]}`; a LoRA module's `parent` is the base model's id, the base's is null;
- `POST /v1/load_lora_adapter` with `{"lora_name", "lora_path"}`: 200 and a text
  "Success: LoRA adapter '<name>' added successfully." (400 with a reason otherwise);
- `POST /v1/chat/completions` with `model=<adapter name>`: a normal (streamed) completion.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class VllmState:
    base: str = "tiny"
    adapters: dict[str, str] = field(default_factory=dict)
    """Loaded adapters: name → path."""
    runtime_loading: bool = True
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    """(method, path, JSON body) of every request, in order."""


def _handler(state: VllmState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: object) -> None:
            pass

        def _send(self, status: int, body: object, content: str = "application/json") -> None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            state.requests.append(("GET", self.path, None))
            if self.path == "/v1/models":
                data = [{"id": state.base, "object": "model", "root": "/models/tiny",
                         "parent": None}]
                data += [{"id": name, "object": "model", "root": path, "parent": state.base}
                         for name, path in state.adapters.items()]
                self._send(200, {"object": "list", "data": data})
            else:
                self._send(404, {"detail": "Not Found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"null")
            state.requests.append(("POST", self.path, body))
            if self.path == "/v1/load_lora_adapter":
                if not state.runtime_loading:
                    self._send(404, {"detail": "Not Found"})
                    return
                state.adapters[body["lora_name"]] = body["lora_path"]
                self._send(200, f"Success: LoRA adapter '{body['lora_name']}' added "
                                "successfully.", "text/plain")
            elif self.path == "/v1/chat/completions":
                model = body.get("model")
                if model not in (state.base, *state.adapters):
                    self._send(404, {"object": "error", "message":
                                     f"The model `{model}` does not exist."})
                    return
                chunk = {"id": "c", "object": "chat.completion.chunk", "model": model,
                         "choices": [{"index": 0, "delta": {"content": f"from {model}"},
                                      "finish_reason": "stop"}]}
                self._send(200, f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n",
                           "text/event-stream")
            else:
                self._send(404, {"detail": "Not Found"})

    return Handler


@contextmanager
def vllm_api(state: VllmState) -> Iterator[str]:
    """Serve `state` on a free loopback port; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, name="vllm-api", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
