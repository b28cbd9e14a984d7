"""The Gateway's relay client against a real socket that answers as scripted: a chunked
body passes through unread and ends after its last chunk however the bytes are split; a
cut is told apart at a chunk's end and inside one; nothing listening is "unreachable"."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest

from app.gateway import upstream

HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


EVENTS = chunk(b'data: {"a":1}\n\n') + chunk(b'data: {"b":22}\n\n')
LAST = b"0\r\n\r\n"


@contextlib.contextmanager
def answering(data: bytes, *, split: int = 1 << 20, hold_open: bool = True
              ) -> Iterator[upstream.Answer]:
    """A server that reads the request, sends `data` in pieces of `split` bytes and then
    waits for the client to hang up (or hangs up itself: the backend died)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            for start in range(0, len(data), split):
                connection.sendall(data[start:start + split])
            if hold_open:
                connection.recv(1)

    thread = threading.Thread(target=serve)
    thread.start()
    answer = upstream.post(f"http://127.0.0.1:{listener.getsockname()[1]}", "/v1/x", b"{}",
                           "key", connect_timeout_s=5, read_timeout_s=5)
    try:
        yield answer
    finally:
        answer.close()
        thread.join(10)
        listener.close()


@pytest.mark.parametrize("split", [1, 3, 7, 1000])
def test_a_chunked_body_passes_through_whole_however_it_is_split(split: int) -> None:
    with answering(HEAD + EVENTS + LAST, split=split) as answer:
        assert (answer.status, answer.chunked) == (200, True)
        assert b"".join(answer.frames()) == EVENTS + LAST  # ended by its framing alone


@pytest.mark.parametrize(("sent", "at_boundary"), [(EVENTS, True), (EVENTS[:12], False)])
def test_a_cut_is_told_at_a_chunk_s_end_or_inside_one(sent: bytes, at_boundary: bool) -> None:
    passed: list[bytes] = []
    with answering(HEAD + sent, hold_open=False) as answer, \
            pytest.raises(upstream.UpstreamFailedError) as cut:
        passed.extend(answer.frames())
    assert b"".join(passed) == sent
    assert cut.value.at_boundary is at_boundary


def test_an_answer_that_is_not_chunked_is_read_to_its_length() -> None:
    with answering(b'HTTP/1.1 404 Not Found\r\nContent-Length: 11\r\n\r\n{"e": "no"}') as answer:
        assert answer.status == 404
        assert answer.body(1024) == b'{"e": "no"}'


def test_a_chunked_answer_is_joined_and_a_long_one_refused() -> None:
    with answering(HEAD + EVENTS + LAST) as answer:
        assert answer.body(1024) == b'data: {"a":1}\n\ndata: {"b":22}\n\n'
    with answering(HEAD + EVENTS + LAST) as answer, \
            pytest.raises(upstream.UpstreamFailedError, match="longer than 10 bytes"):
        answer.body(10)


def test_nothing_listening_is_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(upstream.UnreachableError):
        upstream.post(f"http://127.0.0.1:{port}", "/x", b"{}", None, connect_timeout_s=2,
                      read_timeout_s=2)
