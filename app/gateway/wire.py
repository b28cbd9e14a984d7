"""OpenAI's wire forms the Gateway answers in: error bodies, and the error event that ends
a stream whose backend went away (the `openai` clients raise it as an APIError)."""

from __future__ import annotations

import json
from typing import Any


class GatewayError(Exception):
    """A request the Gateway answers with an OpenAI error: HTTP `status`, `kind` as
    OpenAI's `type`, `code` as its `code`."""

    def __init__(self, status: int, message: str, *, kind: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.code = code
        self.param = param

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param,
                          "code": self.code}}


def unknown_model(model: object, known: list[str]) -> GatewayError:
    listed = ", ".join(known[:20]) + (" …" if len(known) > 20 else "") if known else "none"
    return GatewayError(404, f"The model {model!r} does not exist here. Model ids: {listed} "
                             "(GET /v1/models lists them with their backends)",
                        code="model_not_found", param="model")


def bad_key(has_key: bool) -> GatewayError:
    said = "Incorrect API key provided" if has_key else "No API key provided"
    return GatewayError(401, f"{said}. Use a gateway key (Rigdeck's Gateway page, or "
                             "`rigdeck serve keys create NAME`) as the OpenAI API key.",
                        code="invalid_api_key")


def error_json(error: GatewayError) -> bytes:
    return json.dumps(error.body()).encode("utf-8")


def stream_error_event(message: str) -> bytes:
    """An SSE event carrying an error, then `[DONE]`: how a stream cut off upstream ends."""
    body = {"error": {"message": message, "type": "server_error", "param": None,
                      "code": "backend_failed"}}
    return f"data: {json.dumps(body)}\n\ndata: [DONE]\n\n".encode()
