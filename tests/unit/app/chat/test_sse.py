"""SSE decoding gives the same events however the bytes were cut."""

from app.chat.sse import SseDecoder, SseEvent

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
