"""The chat against a real llama-server (the CPU build, a tiny qwen3 model).

The server runs as a child process on a free loopback port for this module and is always
stopped. The tiny model's weights are random, so answers are noise; a grammar makes it
"think" so that llama.cpp's own reasoning extraction is exercised.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from app.chat.client import ChatClient, ChatRequest
from app.chat.history import HistoryStore
from app.chat.session import ReplyRun, TurnSettings, build_request, detect_support
from app.chat.stream_parser import Piece, ReplyText
from app.paths import AppPaths
from app.presets.thinking import ThinkingMemory, ThinkSwitch
from tests.realparts.fixtures import TinyGgufFactory
from tests.realparts.gguf_factory import TinyModelSpec
from tests.unit.app.chat.llama_process import THINK_GRAMMAR, llama_server

pytestmark = pytest.mark.integration

HELLO = [{"role": "user", "content": "Hello"}]


@pytest.fixture(scope="module")
def server_url(llama_server_binary: Path, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[str]:
    model = TinyGgufFactory(tmp_path_factory.mktemp("chat-models"))(TinyModelSpec())
    with llama_server(llama_server_binary, model, context=4096) as url:
        yield url


@pytest.fixture
def client(server_url: str) -> Iterator[ChatClient]:
    with ChatClient(server_url) as chat_client:
        yield chat_client


def poll(predicate: Callable[[], bool], attempts: int = 100) -> bool:
    """Ask the server again until `predicate` holds (each try is an HTTP round trip)."""
    return any(predicate() for _ in range(attempts))


def test_a_streamed_answer_arrives_and_is_stored(client: ChatClient, server_url: str,
                                                 app_paths: AppPaths) -> None:
    store = HistoryStore.in_data_folder(app_paths.data)
    chat = store.create_conversation("Hello", endpoint=server_url)
    store.add_message(chat.id, "user", "Hello")
    support = detect_support(client, server_url)
    settings = TurnSettings(thinking=False, max_tokens=24)
    request = build_request(store.messages(chat.id), settings, support)
    request.extra["ignore_eos"] = True  # the random model may sample EOS at any step
    pieces: list[Piece] = []
    result = ReplyRun(client, store, chat.id, request, settings, endpoint=server_url,
                      support=support).run(pieces.append)

    assert result.reply.error is None
    assert result.reply.finish_reason == "length"
    assert len(pieces) > 5
    assert result.reply.ttft_s is not None
    assert result.reply.tokens_per_s_source == "server"
    store.close()
    stored = HistoryStore.in_data_folder(app_paths.data).messages(chat.id)[-1]
    assert stored.role == "assistant"
    # The random model may emit a lone </think>: what streamed before it is reasoning.
    streamed = ReplyText()
    for piece in pieces:
        streamed.apply(piece)
    assert stored.content == streamed.clean_answer() == result.reply.answer
    assert stored.reasoning == streamed.clean_reasoning()
    assert stored.state == "done"
    assert stored.tokens_per_s
    assert stored.tokens_per_s > 0
    assert stored.thinking is False
    assert stored.model
    assert stored.model.endswith(".gguf")


def test_reasoning_arrives_apart_from_the_answer(client: ChatClient) -> None:
    reply = client.stream(ChatRequest(HELLO, max_tokens=80, extra={"grammar": THINK_GRAMMAR})
                          ).run()
    assert reply.error is None
    assert reply.reasoning
    assert reply.answer
    assert "think>" not in reply.answer + reply.reasoning


def test_stop_ends_the_stream_and_frees_the_slot(client: ChatClient, server_url: str,
                                                 app_paths: AppPaths) -> None:
    store = HistoryStore.in_data_folder(app_paths.data)
    chat = store.create_conversation("Long")
    store.add_message(chat.id, "user", "Hello")
    settings = TurnSettings(max_tokens=3500)
    request = build_request(store.messages(chat.id), settings, detect_support(client, "x"))
    request.extra["ignore_eos"] = True
    run = ReplyRun(client, store, chat.id, request, settings, endpoint=server_url,
                   support=detect_support(client, "x"))
    started = threading.Event()

    def stop_when_started() -> None:
        if started.wait(30):
            run.cancel()

    stopper = threading.Thread(target=stop_when_started)
    stopper.start()
    result = run.run(lambda _: started.set())
    stopper.join()

    assert result.reply.stopped
    assert result.reply.error is None
    assert result.message.state == "stopped"
    assert result.message.content  # what had arrived is kept
    assert (result.reply.completion_tokens or 0) < 3500

    def idle() -> bool:
        slots = httpx.get(f"{server_url}/slots", timeout=5).json()
        return not any(slot["is_processing"] for slot in slots)

    assert poll(idle)
    # The server is free for the next request at once.
    again = ChatRequest(HELLO, max_tokens=4, extra={"ignore_eos": True})
    assert client.stream(again).run().finish_reason == "length"
    store.close()


def test_the_prompt_has_the_empty_think_block_only_for_no_think(client: ChatClient) -> None:
    support = detect_support(client, "tiny")
    assert support.switch is ThinkSwitch.TEMPLATE

    def prompt(thinking: bool) -> str:
        from app.chat.history import Message

        history = [Message(1, 1, "user", "Hello", "", 0.0)]
        request = build_request(history, TurnSettings(thinking=thinking), support)
        assert request.sampling["temperature"] == (0.6 if thinking else 0.7)
        text = client.apply_template(request.messages, request.chat_template_kwargs)
        assert text is not None
        return text

    assert prompt(False).endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert "<think>" not in prompt(True)


def test_a_no_think_reply_with_reasoning_moves_the_backend_to_the_soft_switch(
        client: ChatClient, server_url: str, app_paths: AppPaths) -> None:
    store = HistoryStore(None)
    memory = ThinkingMemory(app_paths.data / "thinking_switch.json")
    chat = store.create_conversation("x")
    store.add_message(chat.id, "user", "Hello")
    support = detect_support(client, server_url, memory)
    settings = TurnSettings(thinking=False, max_tokens=80)
    request = build_request(store.messages(chat.id), settings, support)
    request.extra["grammar"] = THINK_GRAMMAR  # a model that thinks whatever it is told
    result = ReplyRun(client, store, chat.id, request, settings, endpoint=server_url,
                      support=support, memory=memory).run()

    assert result.switch_ignored
    assert "soft switch" in (result.message.error or "")
    again = detect_support(client, server_url, ThinkingMemory(memory.path))
    assert again.switch is ThinkSwitch.SOFT
    sent = build_request(store.messages(chat.id)[:1], settings, again)
    assert sent.messages[-1]["content"] == "Hello /no_think"
    assert sent.chat_template_kwargs is None
    store.close()


def rigdeck(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True,
                          text=True, timeout=120, env={"RIGDECK_HOME": str(home),
                                                       "PATH": "/usr/bin:/bin"})


def test_cli_streams_the_answer_and_stores_it(server_url: str, tmp_path: Path) -> None:
    done = rigdeck("chat", "--url", server_url, "--no-think", "--max-tokens", "16", "Hello",
                   home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    listed = rigdeck("chat", "--list", home=tmp_path)
    assert "Hello" in listed.stdout
    exported = rigdeck("chat", "--export", "jsonl", home=tmp_path)
    assert '"role": "assistant"' in exported.stdout


def test_cli_with_no_server_says_so_without_a_traceback(tmp_path: Path) -> None:
    done = rigdeck("chat", "--url", "http://127.0.0.1:9", "Hello", home=tmp_path)
    assert done.returncode != 0
    assert "Could not connect" in done.stderr
    assert "Traceback" not in done.stderr
