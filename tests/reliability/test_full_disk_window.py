"""The Chat page on a data disk that fills while a reply streams: the reply shows whole
with one line saying it waits for space, no error dialog or traceback, and the next
message, once there is room, saves it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pytestqt.qtbot import QtBot

from app.paths import AppPaths
from tests.reliability.conftest import SmallDisk
from tests.reliability.sse_server import SseServer
from tests.reliability.test_full_disk_history import FULL, long_reply, seed_earlier
from ui.chat_long_text import HEAD_CHARS, TAIL_CHARS
from ui.pages.chat_page import ChatPage
from ui.services import Services


def stored_replies(path: Path) -> list[tuple[str, str]]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute("SELECT content, state FROM messages WHERE role = 'assistant'"
                          " ORDER BY id").fetchall()
    finally:
        db.close()


def test_the_chat_page_keeps_a_reply_the_disk_had_no_room_for(
        qtbot: QtBot, data_disk: SmallDisk, app_paths: AppPaths, services: Services,
        sse_server: SseServer) -> None:
    seed_earlier(services.chat.history)
    page = ChatPage(services)
    qtbot.add_widget(page)
    page.resize(1200, 800)
    page.show()
    page.set_endpoint(sse_server.url)
    qtbot.waitUntil(lambda: page.status_label.text().startswith("Ready"), timeout=10_000)
    page.new_conversation()
    long_reply(sse_server)
    long_answer = sse_server.answer.strip()
    data_disk.fill(free=300_000)
    with qtbot.wait_signal(page.controller.finished, timeout=60_000):
        page.send("Write a lot")
    reply = page.message_list.widgets[-1]
    assert reply.message.content == long_answer
    assert reply.error_label.isVisible()
    assert reply.error_label.text().startswith(FULL)
    assert [n.level for n in services.notifier.history] == []  # no dialog, no error line
    path = app_paths.data / "chat.sqlite3"
    assert stored_replies(path)[0] == ("All of it.", "done")  # the earlier one, intact

    data_disk.make_room()
    sse_server.tokens = ["Short", " answer"]
    sse_server.pace_s = 0.0
    with qtbot.wait_signal(page.controller.finished, timeout=60_000):
        page.send("And now?")
    assert stored_replies(path) == [("All of it.", "done"), (long_answer, "done"),
                                    ("Short answer", "done")]
    first = page.message_list.widgets[1]
    # shown as the view reads a long answer: its start and end, its whole length
    assert first.message.content == long_answer[:HEAD_CHARS] + long_answer[-TAIL_CHARS:]
    assert first.message.content_chars == len(long_answer)
    assert not first.error_label.isVisible()  # saved now: the note is gone
    page.close()
