"""The Chat page against the hostile server: each case ends as a clear error (or a clean
answer) in the transcript, read off the GUI thread."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytestqt.qtbot import QtBot

from app.paths import AppPaths
from tests.reliability import hostile_server as hostile
from ui.pages.chat_page import ChatPage
from ui.services import Services

WAIT_MS = 60_000


@pytest.fixture
def page(qtbot: QtBot, app_paths: AppPaths) -> Iterator[ChatPage]:
    services = Services.build(app_paths)
    widget = ChatPage(services)
    qtbot.add_widget(widget)
    widget.show()
    yield widget
    widget.stop()
    services.shutdown()


@pytest.mark.parametrize(("case", "said"), [
    ("endless_error", "The server answered HTTP 500"),
    ("huge_event", "the server sent an event longer than 8 MiB"),
    ("deep_json", "nested deeper than 64 levels"),
    ("html_page", "text/html"),
])
def test_a_hostile_server_ends_as_a_clear_error_while_the_window_answers(
        qtbot: QtBot, page: ChatPage, case: str, said: str) -> None:
    server = hostile.HostileServer(hostile.CASES[case]).start()
    try:
        page.set_endpoint(f"{server.url}/v1")
        qtbot.waitUntil(lambda: page.target is not None, timeout=WAIT_MS)
        with qtbot.waitSignal(page.controller.finished, timeout=WAIT_MS) as finished:
            page.send("Hello?")
        message = finished.args[0].message
        assert message.state == "error"
        assert said in (message.error or "")
        assert page.controller.running is False  # ended: the page takes the next question
    finally:
        server.close()


def test_escape_sequences_from_a_server_are_kept_as_text_not_run(
        qtbot: QtBot, page: ChatPage) -> None:
    server = hostile.HostileServer(hostile.CASES["escapes"]).start()
    try:
        page.set_endpoint(f"{server.url}/v1")
        qtbot.waitUntil(lambda: page.target is not None, timeout=WAIT_MS)
        with qtbot.waitSignal(page.controller.finished, timeout=WAIT_MS) as finished:
            page.send("Hello?")
        assert finished.args[0].message.state == "done"
    finally:
        server.close()
