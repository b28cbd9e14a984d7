"""Reasoning is kept apart from the answer in every form a server sends it, cut anywhere.

The llama_* streams were recorded from the real llama-server (data/record_llama.py); their
expected texts come from the same server's non-streamed answer. The vllm_* streams follow
vLLM's documented chunk format (`delta.reasoning`, `delta.reasoning_content`, inline tags).
"""

import json
import random
from pathlib import Path

import pytest

from app.chat.sse import SseDecoder
from app.chat.stream_parser import (
    ChunkParser,
    Piece,
    ReplyText,
    ServerStreamError,
    StreamFormatError,
    ThinkTagSplitter,
)

DATA = Path(__file__).parent / "data"
RECORDINGS = sorted(path.stem for path in DATA.glob("*.sse"))


def parse(chunks: list[bytes]) -> tuple[ReplyText, str | None, bool]:
    decoder, parser, text = SseDecoder(), ChunkParser(), ReplyText()
    finish, done = None, False
    for chunk in chunks:
        for event in decoder.feed(chunk):
            info = parser.feed(event.data)
            for piece in info.pieces:
                text.apply(piece)
            finish = info.finish_reason or finish
            done = done or info.done
    return text, finish, done


def expected(name: str) -> dict[str, str]:
    data: dict[str, str] = json.loads((DATA / f"{name}.expected.json").read_text())
    return data


def test_recordings_cover_every_form() -> None:
    assert {"llama_reasoning_content", "llama_inline_think", "llama_lone_close",
            "vllm_reasoning", "vllm_reasoning_content", "vllm_inline_think"} <= set(RECORDINGS)


@pytest.mark.parametrize("name", RECORDINGS)
def test_whole_stream(name: str) -> None:
    text, finish, done = parse([(DATA / f"{name}.sse").read_bytes()])
    assert text.clean_answer() == expected(name)["answer"]
    assert text.clean_reasoning() == expected(name)["reasoning"]
    assert finish in {"stop", "length"}
    assert done


@pytest.mark.parametrize("name", RECORDINGS)
def test_split_at_every_byte(name: str) -> None:
    raw = (DATA / f"{name}.sse").read_bytes()
    text, _, done = parse([raw[i:i + 1] for i in range(len(raw))])
    assert (text.clean_answer(), text.clean_reasoning()) == (
        expected(name)["answer"], expected(name)["reasoning"])
    assert done


@pytest.mark.parametrize("name", RECORDINGS)
def test_split_in_two_anywhere(name: str) -> None:
    raw = (DATA / f"{name}.sse").read_bytes()
    want = (expected(name)["answer"], expected(name)["reasoning"])
    for cut in random.Random(name).sample(range(len(raw)), 300):
        text, _, _ = parse([raw[:cut], raw[cut:]])
        assert (text.clean_answer(), text.clean_reasoning()) == want, cut


INLINE = "<think>\nlet me see\n</think>\n\nThe answer."


def split_text(pieces: list[str]) -> tuple[str, str]:
    splitter, text = ThinkTagSplitter(), ReplyText()
    for part in pieces:
        for piece in splitter.feed(part):
            text.apply(piece)
    for piece in splitter.finish():
        text.apply(piece)
    return text.clean_answer(), text.clean_reasoning()


def test_inline_tags_cut_at_every_pair_of_characters() -> None:
    for a in range(len(INLINE) + 1):
        for b in range(a, len(INLINE) + 1):
            assert split_text([INLINE[:a], INLINE[a:b], INLINE[b:]]) == (
                "The answer.", "let me see"), (a, b)


def test_lone_close_tag_cut_at_every_character() -> None:
    text = "thinking first\n</think>\n\nthen answer"
    for cut in range(len(text) + 1):
        assert split_text([text[:cut], text[cut:]]) == ("then answer", "thinking first")


def test_text_that_only_looks_like_a_tag_stays_in_the_answer() -> None:
    assert split_text(["a < b and <thi", "nking> is not a tag", " </thin"]) == (
        "a < b and <thinking> is not a tag </thin", "")


def test_a_second_close_tag_after_the_block_is_answer_text() -> None:
    assert split_text(["<think>x</think>use ", "</think> literally"]) == (
        "use </think> literally", "x")


def test_a_think_block_that_never_closes_is_all_reasoning() -> None:
    assert split_text(["<think>still going", " when the budget ran o"]) == (
        "", "still going when the budget ran o")


def test_not_json_is_a_format_error() -> None:
    with pytest.raises(StreamFormatError, match="not JSON"):
        ChunkParser().feed("{oops")


def test_an_error_object_in_the_stream_is_reported_with_its_message() -> None:
    with pytest.raises(ServerStreamError, match="context size exceeded"):
        ChunkParser().feed('{"error": {"code": 500, "message": "context size exceeded"}}')


def test_usage_and_timings_are_read() -> None:
    info = ChunkParser().feed(
        '{"choices": [], "usage": {"completion_tokens": 8}, '
        '"timings": {"predicted_per_second": 42.5}}')
    assert info.usage == {"completion_tokens": 8}
    assert info.timings == {"predicted_per_second": 42.5}


def test_json_nested_100000_deep_is_refused_with_its_depth() -> None:
    with pytest.raises(StreamFormatError, match="nested deeper than 64 levels"):
        ChunkParser().feed("[" * 100_000 + "]" * 100_000)


def test_a_chunk_with_a_deep_field_is_refused() -> None:
    deep = "[" * 70 + "]" * 70
    with pytest.raises(StreamFormatError, match="nested deeper than 64 levels"):
        ChunkParser().feed('{"choices": [{"delta": {"content": "hi"}}], "x": ' + deep + "}")


def test_a_chunk_with_many_shallow_lists_is_read() -> None:
    lists = ", ".join(["[1, 2]"] * 200)
    info = ChunkParser().feed('{"choices": [{"delta": {"content": "hi"}}], "x": [' + lists + "]}")
    assert info.pieces == [Piece("answer", "hi")]
