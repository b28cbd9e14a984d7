"""Exports: JSONL lines in the fine-tuning `messages` format, and readable Markdown."""

import io
import json

from app.chat.export import write_jsonl, write_markdown
from app.chat.history import HistoryStore
from app.chat.stream_parser import Piece


def make_store() -> HistoryStore:
    store = HistoryStore(None)
    chat = store.create_conversation("Greeting")
    store.add_message(chat.id, "system", "Be brief.")
    store.add_message(chat.id, "user", "Hi")
    writer = store.begin_reply(chat.id, model="qwen3")
    writer.extend([Piece("reasoning", "Say hello."), Piece("answer", "Hello!")])
    writer.finish(state="done", tokens_per_s=30.0, ttft_s=0.1)
    store.add_message(chat.id, "user", "and then?")  # no answer yet: kept, as stored
    failed = store.create_conversation("Failed")
    store.add_message(failed.id, "user", "Hi")
    store.begin_reply(failed.id).finish(state="error", error="Could not connect")
    return store


def test_jsonl_has_one_line_per_conversation_as_stored() -> None:
    store = make_store()
    out = io.StringIO()
    assert write_jsonl(store, out) == 2
    greeting, failed = (json.loads(line) for line in out.getvalue().splitlines())
    assert greeting == {"messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "and then?"},
    ]}
    assert failed == {"messages": [{"role": "user", "content": "Hi"}]}  # the empty failure left out
    store.close()


def test_jsonl_can_keep_the_reasoning() -> None:
    store = make_store()
    field, inline = io.StringIO(), io.StringIO()
    write_jsonl(store, field, reasoning="field")
    write_jsonl(store, inline, reasoning="inline")
    assert json.loads(field.getvalue().splitlines()[0])["messages"][2]["reasoning_content"] == (
        "Say hello.")
    assert json.loads(inline.getvalue().splitlines()[0])["messages"][2]["content"] == (
        "<think>\nSay hello.\n</think>\n\nHello!")
    store.close()


def test_markdown_shows_thinking_folded_and_errors() -> None:
    store = make_store()
    out = io.StringIO()
    assert write_markdown(store, out) == 2
    text = out.getvalue()
    assert "# Greeting" in text
    assert "<details><summary>Thinking</summary>\n\nSay hello.\n\n</details>" in text
    assert "## Assistant (qwen3, 30.0 tok/s, TTFT 100 ms)" in text
    assert "> **Error:** Could not connect" in text
    store.close()
