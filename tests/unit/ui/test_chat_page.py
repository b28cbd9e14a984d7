"""The Chat page as a user sees it: stored conversations, the thinking block, code with
Copy, sending with Enter, Stop, Regenerate, Edit and resend — against a real llama-server
(the tiny qwen3 model, told to ignore EOS and stop at 2,000 tokens so replies are long).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.chat.history import HistoryStore
from app.chat.stream_parser import Piece
from app.paths import AppPaths
from app.presets.thinking import support_from_template
from tests.realparts.fixtures import TinyGgufFactory
from tests.unit.app.chat.llama_process import llama_server
from ui.chat_messages import MessageWidget
from ui.notifier import Level
from ui.pages.chat_page import ChatPage
from ui.services import Services

ANSWER = ("Use slicing:\n\n```python\nbackwards = numbers[::-1]\n```\n\n"
          "It leaves `numbers` alone.")


@pytest.fixture(scope="module")
def server_url(llama_server_binary: Path, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[str]:
    model = TinyGgufFactory(tmp_path_factory.mktemp("ui-chat-models"))()
    with llama_server(llama_server_binary, model, context=4096,
                      extra=["--ignore-eos", "-n", "2000"]) as url:
        yield url


def seed(paths: AppPaths) -> None:
    store = HistoryStore.in_data_folder(paths.data)
    older = store.create_conversation("Dinner ideas")
    store.add_message(older.id, "user", "Something with rye?")
    chat = store.create_conversation("Reverse a list", endpoint="http://127.0.0.1:9")
    store.add_message(chat.id, "user", "How do I reverse a list?")
    writer = store.begin_reply(chat.id, model="qwen3.gguf", preset="Balanced", thinking=True)
    writer.extend([Piece("reasoning", "They want a copy."), Piece("answer", ANSWER)])
    writer.finish(state="done", ttft_s=0.142, tokens_per_s=61.3, completion_tokens=40,
                  reasoning_tokens=5, finish_reason="stop")
    store.close()


@pytest.fixture
def page(qtbot: QtBot, services: Services) -> Iterator[ChatPage]:
    widget = ChatPage(services)
    qtbot.add_widget(widget)
    widget.resize(1200, 800)
    widget.show()
    yield widget
    widget.stop()


@pytest.fixture
def seeded_page(qtbot: QtBot, services: Services) -> ChatPage:
    seed(services.paths)
    widget = ChatPage(services)
    qtbot.add_widget(widget)
    widget.show()
    qtbot.waitUntil(lambda: services.tasks.pending == 0, timeout=10_000)  # the probe
    return widget


def reply_widget(page: ChatPage) -> MessageWidget:
    return page.message_list.widgets[-1]


def test_the_latest_conversation_opens_with_its_thinking_folded(seeded_page: ChatPage) -> None:
    page = seeded_page
    titles = [page.conversation_list.item(i).text()
              for i in range(page.conversation_list.count())]
    assert titles == ["Reverse a list", "Dinner ideas"]
    reply = reply_widget(page)
    assert reply.thinking.toggle.text() == "Thought (5 tokens)"
    assert not reply.thinking.body.isVisible()
    reply.thinking.toggle.click()
    assert reply.thinking.body.isVisible()
    assert reply.thinking.body.text() == "They want a copy."
    assert reply.stats_label.text().startswith("61.3 tok/s · TTFT 142 ms · 40 tokens · stop")


def test_code_blocks_have_a_copy_button(seeded_page: ChatPage) -> None:
    [block] = reply_widget(seeded_page).answer.code_blocks()
    assert block.language_label.text() == "python"
    block.copy_button.click()
    assert QGuiApplication.clipboard().text() == "backwards = numbers[::-1]"
    assert block.copy_button.text() == "Copied"


def test_search_rename_and_delete(seeded_page: ChatPage) -> None:
    page = seeded_page
    page.search_edit.setText("rye")
    assert page.conversation_list.count() == 1
    page.search_edit.clear()
    page.conversation_list.setCurrentRow(0)
    page.rename_conversation("Lists")
    assert page.conversation_list.item(0).text() == "Lists"
    page.delete_button.click()
    assert [page.conversation_list.item(i).text()
            for i in range(page.conversation_list.count())] == ["Dinner ideas"]
    assert page.message_list.widgets == []


def test_export_writes_jsonl(seeded_page: ChatPage, tmp_path: Path) -> None:
    # every conversation, the one whose question got no answer too
    assert seeded_page.export_to(tmp_path / "all.jsonl", "jsonl", current_only=False) == 2
    text = (tmp_path / "all.jsonl").read_text()
    assert '"content": "How do I reverse a list?"' in text
    assert '"content": "Something with rye?"' in text
    assert seeded_page._services.notifier.history[-1].text == (
        f"Exported 2 conversation(s) to {tmp_path / 'all.jsonl'}")


def test_a_template_without_a_switch_disables_think_with_the_reason(page: ChatPage) -> None:
    page._apply_support(support_from_template("{{ messages[0].content }}"))
    assert not page.think_button.isEnabled()
    assert "no thinking switch" in page.think_button.toolTip()
    assert page.thinking() is None


def test_sending_without_a_backend_says_what_to_do(page: ChatPage, services: Services) -> None:
    page.send("Hello")
    assert services.notifier.history[-1].level is Level.WARNING
    assert "Choose a backend" in services.notifier.history[-1].text


def test_shift_enter_is_a_new_line_and_enter_sends(qtbot: QtBot, page: ChatPage) -> None:
    sent: list[str] = []
    page.input.submitted.disconnect()
    page.input.submitted.connect(sent.append)
    QTest.keyClicks(page.input, "line one")
    QTest.keyClick(page.input, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    QTest.keyClicks(page.input, "line two")
    assert sent == []
    QTest.keyClick(page.input, Qt.Key.Key_Return)
    assert sent == ["line one\nline two"]


def connect(qtbot: QtBot, page: ChatPage, url: str) -> None:
    page.set_endpoint(url)
    qtbot.waitUntil(lambda: page.status_label.text() == "Ready", timeout=10_000)


def test_a_reply_streams_in_without_stalling_the_window(
        qtbot: QtBot, page: ChatPage, server_url: str, app_paths: AppPaths,
        record_property: Callable[[str, object], None]) -> None:
    connect(qtbot, page, server_url)
    page.think_button.setChecked(False)
    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    heartbeat = QTimer()
    heartbeat.setInterval(10)
    heartbeat.timeout.connect(tick)
    heartbeat.start()
    frames: list[int] = []
    page.controller.frame.connect(lambda answer, *_: frames.append(len(answer)))
    with qtbot.wait_signal(page.controller.finished, timeout=120_000) as finished:
        QTest.keyClicks(page.input, "Tell me a long story")
        QTest.keyClick(page.input, Qt.Key.Key_Return)
        assert page.send_button.text() == "Stop"
    heartbeat.stop()
    result = finished.args[0]
    stall_ms = max(gaps) * 1000
    record_property("longest_gui_stall_ms", round(stall_ms, 1))
    print(f"\n2,000-token stream: longest GUI stall {stall_ms:.1f} ms, {len(frames)} repaints")

    assert result.reply.completion_tokens == 2000
    assert len(frames) < 2000  # painted in batches, not per token
    assert page.send_button.text() == "Send"
    reply = reply_widget(page)
    assert reply.answer.markdown == result.message.content
    assert "tok/s" in reply.stats_label.text()
    stored = HistoryStore.in_data_folder(app_paths.data)
    [conversation] = stored.conversations()
    assert conversation.title == "Tell me a long story"
    assert [m.role for m in stored.messages(conversation.id)] == ["user", "assistant"]
    stored.close()


def test_stop_regenerate_and_edit(qtbot: QtBot, page: ChatPage, server_url: str) -> None:
    connect(qtbot, page, server_url)
    with qtbot.wait_signal(page.controller.finished, timeout=60_000) as finished:
        page.send("First question")
        qtbot.waitUntil(lambda: bool(reply_widget(page).answer.markdown), timeout=30_000)
        page.send_button.click()  # Stop
    stopped = finished.args[0].message
    assert stopped.state == "stopped"
    assert "stopped" in reply_widget(page).stats_label.text()

    with qtbot.wait_signal(page.controller.finished, timeout=60_000):
        page.regenerate_button.click()
        qtbot.waitUntil(lambda: bool(reply_widget(page).answer.markdown), timeout=30_000)
        page.stop()
    assert [w.message.role for w in page.message_list.widgets] == ["user", "assistant"]

    page.edit_button.click()
    assert page.input.toPlainText() == "First question"
    page.input.setPlainText("Second question")
    with qtbot.wait_signal(page.controller.finished, timeout=60_000):
        QTest.keyClick(page.input, Qt.Key.Key_Return)
        # the edited text shows at once, before any of the reply (the new message may
        # reuse the old one's id: the view must not keep the old text for it)
        shown = [(w.message.role, w.answer.markdown) for w in page.message_list.widgets]
        assert shown == [("user", "Second question"), ("assistant", "")]
        QApplication.processEvents()  # one turn of the event loop: what is painted now
        assert [w.answer.markdown for w in page.message_list.findChildren(MessageWidget)
                if w.isVisible() and w.message.role == "user"] == ["Second question"]
        qtbot.waitUntil(lambda: bool(reply_widget(page).answer.markdown), timeout=30_000)
        page.stop()
    messages = page.chat.history.messages(page.conversation_id or 0)
    assert [(m.role, m.content if m.role == "user" else "") for m in messages] == [
        ("user", "Second question"), ("assistant", "")]
