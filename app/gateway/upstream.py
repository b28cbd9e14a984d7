"""The Gateway's own HTTP/1.1 client to a backend, made for relaying streams.

A stream's body is passed on as the bytes arrive, still in the backend's chunked framing,
so relaying a token costs a receive and a send and nothing is decoded on the way (an
HTTP library parses every chunk; at thousands of tokens a second on two cores that cost
the backend a third of its speed). The framing is followed only far enough to know where
a chunk ends, so a stream cut off by a dying backend can be ended with an error event at
a chunk boundary. One connection per request (`Connection: close`): a backend never
closes a kept-alive connection under a request going out.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

HEAD_LIMIT = 64 * 1024
"""The longest status line and headers read."""
RECV_BYTES = 64 * 1024


class UnreachableError(Exception):
    """Nothing answered: refused, timed out, or closed before a status line."""


class UpstreamFailedError(Exception):
    """The backend went away (or sent garbage) after its status line; `at_boundary`: the
    bytes passed on so far end at a chunk's end."""

    def __init__(self, message: str, at_boundary: bool) -> None:
        super().__init__(message)
        self.at_boundary = at_boundary


@dataclass
class Answer:
    """A backend's answer: the status and headers, then the body."""

    status: int
    headers: dict[str, str]
    sock: socket.socket
    buffered: bytes
    _remaining: int = 0
    _line: bytes = b""
    _last: bool = False
    _ended: bool = False

    @property
    def chunked(self) -> bool:
        return "chunked" in self.headers.get("transfer-encoding", "").lower()

    def close(self) -> None:
        self.sock.close()

    def _recv(self) -> bytes:
        if self.buffered:
            data, self.buffered = self.buffered, b""
            return data
        try:
            return self.sock.recv(RECV_BYTES)
        except OSError as exc:
            raise UpstreamFailedError(str(exc), self._at_boundary()) from exc

    def _at_boundary(self) -> bool:
        return not self._remaining and not self._line

    def frames(self) -> Iterator[bytes]:
        """The chunked body's bytes as they arrive, framing included, up to and with the
        last chunk.

        Raises:
            UpstreamFailedError: the connection ended (or broke) before the last chunk.
        """
        while not self._ended:
            data = self._recv()
            if not data:
                raise UpstreamFailedError("the backend closed the connection mid-stream",
                                          self._at_boundary())
            self._advance(data)
            yield data

    def pieces(self) -> Iterator[bytes]:
        """A body that is not chunked, as it arrives, to its length or the connection's end."""
        length = self.headers.get("content-length")
        left = int(length) if length and length.isdigit() else None
        while left is None or left > 0:
            data = self._recv()
            if not data:
                if left:
                    raise UpstreamFailedError("the backend closed the connection early", True)
                return
            if left is not None:
                data = data[:left]
                left -= len(data)
            yield data

    def body(self, limit: int) -> bytes:
        """The whole body (chunks joined), `limit` bytes at most.

        Raises:
            UpstreamFailedError: it broke off, or is longer than `limit`.
        """
        parts: list[bytes] = []
        size = 0
        for piece in self.pieces() if not self.chunked else self._dechunked():
            parts.append(piece)
            size += len(piece)
            if size > limit:
                raise UpstreamFailedError(f"the backend's answer is longer than {limit} "
                                          "bytes", True)
        return b"".join(parts)

    def _dechunked(self) -> Iterator[bytes]:
        raw = b"".join(self.frames())
        pos = 0
        while True:
            end = raw.index(b"\r\n", pos)
            size = int(raw[pos:end].split(b";")[0].strip() or b"0", 16)
            if size == 0:
                return
            yield raw[end + 2:end + 2 + size]
            pos = end + 2 + size + 2

    def _advance(self, data: bytes) -> None:
        """Follow the chunk framing through `data` (sizes only; the data is skipped)."""
        pos, end = 0, len(data)
        while pos < end and not self._ended:
            if self._remaining:
                take = min(self._remaining, end - pos)
                self._remaining -= take
                pos += take
                self._ended = self._last and not self._remaining
                continue
            text = self._line + data[pos:]
            newline = text.find(b"\r\n")
            if newline < 0:
                if len(text) > 1024:
                    raise UpstreamFailedError("the backend's chunk framing is broken", False)
                self._line = text
                return
            pos += newline + 2 - len(self._line)
            self._line = b""
            try:
                size = int(text[:newline].split(b";")[0].strip(), 16)
            except ValueError:
                raise UpstreamFailedError("the backend's chunk framing is broken",
                                          False) from None
            self._remaining, self._last = size + 2, size == 0


def post(base_url: str, path: str, body: bytes, api_key: str | None, *,
         connect_timeout_s: float, read_timeout_s: float) -> Answer:
    """POST `body` (JSON) to the backend at `base_url` (http://host:port) and read the
    status line and headers.

    Raises:
        UnreachableError: nothing answered.
    """
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    try:
        sock = socket.create_connection((host, port), timeout=connect_timeout_s)
    except OSError as exc:
        raise UnreachableError(f"{base_url}: {exc.strerror or exc}") from exc
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(read_timeout_s)
        head = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}",
                "Content-Type: application/json", "Accept: */*", "Connection: close",
                f"Content-Length: {len(body)}"]
        if api_key:
            head.append(f"Authorization: Bearer {api_key}")
        sock.sendall("\r\n".join(head).encode("latin-1") + b"\r\n\r\n" + body)
        status, headers, rest = _read_head(sock, base_url)
    except BaseException:
        sock.close()
        raise
    return Answer(status, headers, sock, rest)


def _read_head(sock: socket.socket, base_url: str) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            more = sock.recv(RECV_BYTES)
        except OSError as exc:
            raise UnreachableError(f"{base_url}: {exc}") from exc
        if not more:
            raise UnreachableError(f"{base_url} closed the connection without an answer")
        data += more
        if len(data) > HEAD_LIMIT:
            raise UnreachableError(f"{base_url} sent headers of more than {HEAD_LIMIT} bytes")
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        raise UnreachableError(f"{base_url} answered with no HTTP status line") from None
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, rest
