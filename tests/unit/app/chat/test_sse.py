"""SSE decoding gives the same events however the bytes were cut."""

import pytest

from app.chat.sse import SseDecoder, SseEvent, SseLimitError

STREAM = (
    ": keep-alive comment\r\n"
    "event: ping\r\n"
    "data: one\r\n"
    "\r\n"
    "data: first line\n"
    "data: second line \u00e9\u20ac\U0001f375\n"
    "\n"
    "data:no space\r"
    "\r"
    "id: 4\n"
    "data: {\"x\": 1}\n\n"
    "data: unterminated"
).encode()

EXPECTED = [
    SseEvent("one", "ping"),
    SseEvent("first line\nsecond line \u00e9\u20ac\U0001f375"),
    SseEvent("no space"),
    SseEvent('{"x": 1}'),
]


def decode(chunks: list[bytes]) -> list[SseEvent]:
    decoder = SseDecoder()
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    return events + list(decoder.close())


def test_whole_stream() -> None:
    assert decode([STREAM]) == EXPECTED


def test_every_single_split_point() -> None:
    for cut in range(len(STREAM) + 1):
        assert decode([STREAM[:cut], STREAM[cut:]]) == EXPECTED, cut


def test_every_pair_of_split_points() -> None:
    for first in range(len(STREAM) + 1):
        for second in range(first, len(STREAM) + 1, 3):
            chunks = [STREAM[:first], STREAM[first:second], STREAM[second:]]
            assert decode(chunks) == EXPECTED, (first, second)


def test_one_byte_at_a_time() -> None:
    assert decode([STREAM[i:i + 1] for i in range(len(STREAM))]) == EXPECTED


def test_invalid_utf8_becomes_a_replacement_character() -> None:
    assert decode([b"data: a\xffb\n\n"]) == [SseEvent("a\ufffdb")]


def test_a_line_past_the_cap_ends_the_stream_without_holding_it() -> None:
    decoder = SseDecoder(max_line=1000)
    assert list(decoder.feed(b"data: fine\n\n")) == [SseEvent("fine")]
    for _ in range(9):  # 906 characters held: still under the cap
        assert list(decoder.feed(b"data: " + b"x" * 100)) == []
    with pytest.raises(SseLimitError, match="a line longer than"):
        list(decoder.feed(b"x" * 100))


def test_a_long_line_in_one_chunk_is_refused_too() -> None:
    with pytest.raises(SseLimitError, match="a line longer than"):
        list(SseDecoder(max_line=1000).feed(b"data: " + b"x" * 2000 + b"\n\n"))


def test_an_event_past_the_cap_ends_the_stream() -> None:
    decoder = SseDecoder(max_line=1000, max_event=5000)
    for _ in range(5):  # 4,505 characters of data: still under the cap
        assert list(decoder.feed(b"data: " + b"y" * 900 + b"\n")) == []
    with pytest.raises(SseLimitError, match="an event longer than"):
        list(decoder.feed(b"data: " + b"y" * 900 + b"\n"))


def test_a_line_fed_byte_by_byte_is_decoded_in_linear_time() -> None:
    """A 4 MB line in 64-byte chunks: 65,536 feeds, each scanning only its own bytes.
    The old decoder rescanned the whole held line on every chunk (about 140 GB of
    scanning here: this test would not have finished)."""
    decoder = SseDecoder()
    body = b"data: " + b"z" * (4 * 1024 * 1024) + b"\n\n"
    events = [e for i in range(0, len(body), 64) for e in decoder.feed(body[i:i + 64])]
    assert len(events) == 1
    assert len(events[0].data) == 4 * 1024 * 1024
