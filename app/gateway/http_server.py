"""The Gateway's HTTP side: a threaded HTTP/1.1 server on the standard library (one thread
per connection, keep-alive, chunked streaming, Nagle off so each token leaves at once),
handing each request to the Gateway service with a Responder.

Stopping closes every connection, idle keep-alive ones included, and waits for their
threads, so nothing is left running behind a stopped Gateway.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from app.errors import UserError
from app.gateway.wire import GatewayError, error_json

if TYPE_CHECKING:
    from app.gateway.service import Gateway

log = logging.getLogger(__name__)

IDLE_TIMEOUT_S = 120.0
"""A keep-alive connection with no request for this long is closed."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: GatewayHttpServer
    timeout = IDLE_TIMEOUT_S
    _streaming = False
    _answered = False
    """Whether the current request's answer has begun (set per request by do_POST)."""

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    # ------------------------------------------------------------------ Responder
    def send_json(self, status: int, body: bytes) -> None:
        self._answered = True
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def begin_stream(self, status: int, content_type: str) -> None:
        self._answered = True
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._streaming = True

    def write_chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))

    def write_framed(self, data: bytes) -> None:
        self.wfile.write(data)

    def end_stream(self, *, framed: bool = False) -> None:
        if self._streaming:
            self._streaming = False
            if not framed:
                self.wfile.write(b"0\r\n\r\n")

    def abort(self) -> None:
        self._streaming = False
        self.close_connection = True

    # ------------------------------------------------------------------ methods
    def _fail(self, error: GatewayError) -> None:
        self.send_json(error.status, error_json(error))

    def _client(self) -> str:
        return self.server.gateway.authorize(self.headers.get("Authorization"),
                                             self.server.address)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        try:
            if path in ("/health", "/v1/health"):
                self.send_json(200, b'{"status":"ok"}')
                return
            self._client()
            if path == "/v1/models":
                self.send_json(200, json.dumps(self.server.gateway.models()).encode())
                return
            if path.startswith("/v1/models/"):
                route = self.server.gateway.route(unquote(path.removeprefix("/v1/models/")))
                body = {"id": route.id, "object": "model", "created": route.served.created,
                        "owned_by": "rigdeck", "rigdeck": route.describe()}
                self.send_json(200, json.dumps(body).encode())
                return
            raise GatewayError(404, f"no such endpoint: GET {path}", code="unknown_url")
        except GatewayError as exc:
            self._fail(exc)

    def do_POST(self) -> None:
        from app.gateway.service import FORWARDED_PATHS, MAX_BODY_BYTES

        path = self.path.split("?", 1)[0]
        try:
            length = int(self.headers.get("Content-Length") or -1)
        except ValueError:
            length = -1
        try:
            try:
                client = self._client()  # before the body: a stranger's is not read
            except GatewayError:
                self.close_connection = True  # its unread body would be the next request
                raise
            if length < 0:
                self.close_connection = True
                raise GatewayError(411, "the request needs a Content-Length")
            if length > MAX_BODY_BYTES:
                self.close_connection = True
                raise GatewayError(413, f"the request body is larger than "
                                        f"{MAX_BODY_BYTES >> 20} MiB")
            raw = self.rfile.read(length)
            if path not in FORWARDED_PATHS:
                raise GatewayError(404, f"no such endpoint: POST {path}; the Gateway serves "
                                        f"{', '.join(FORWARDED_PATHS)}", code="unknown_url")
        except GatewayError as exc:
            self._fail(exc)
            return
        try:
            self._answered = False
            self.server.gateway.handle(path, raw, client, self.client_address[0], self)
        except OSError as exc:
            self.close_connection = True
            if self._answered:
                return  # the client went away while it was answered
            log.warning("gateway request failed before its answer", exc_info=True)
            with contextlib.suppress(OSError):
                self._fail(GatewayError(500, f"the Gateway failed: {exc}", kind="server_error"))
        except Exception as exc:  # a bug must not kill the connection's thread silently
            log.exception("gateway request failed")
            if not self._streaming:
                self._fail(GatewayError(500, f"the Gateway failed: {exc}", kind="server_error"))
            self.close_connection = True


class GatewayHttpServer(ThreadingHTTPServer):
    """The listening socket and its connection threads."""

    allow_reuse_address = True

    def __init__(self, gateway: Gateway, address: str, port: int) -> None:
        self.gateway = gateway
        self.address = address
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._connection_threads: set[threading.Thread] = set()
        try:
            super().__init__((address, port), _Handler)
        except OSError as exc:
            raise UserError(f"the Gateway cannot listen on {address}:{port}: "
                            f"{exc.strerror or exc} (another program may use the port; "
                            "choose another)") from exc

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._open_lock:
            (self._open.add if open_ else self._open.discard)(connection)

    def serve_in_thread(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, name="gateway-http",
                                        kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        super().shutdown()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self.server_close()
        with self._open_lock:
            threads = list(self._connection_threads)
        for thread in threads:
            thread.join(timeout=10)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that drops its connection is normal; anything else is a bug, logged."""
        if isinstance(sys.exc_info()[1], OSError):
            log.debug("connection from %s ended: %s", client_address, sys.exc_info()[1])
        else:
            log.error("gateway connection from %s failed", client_address,
                      exc_info=sys.exc_info())

    def process_request(self, request: Any, client_address: Any) -> None:
        """One named thread per connection, remembered so a stop can wait for it."""
        thread = threading.Thread(target=self.process_request_thread,
                                  args=(request, client_address), name="gateway-connection",
                                  daemon=True)
        with self._open_lock:
            alive = {t for t in self._connection_threads if t.is_alive()}
            self._connection_threads = alive | {thread}
        thread.start()
