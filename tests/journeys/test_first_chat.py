"""Journey 1: a new user adds a model folder, plans the model in Fit, starts it with that
plan on the Docker engine, chats with it, quits Rigdeck, and a new Rigdeck run finds the
backend and the conversation goes on with it; then the user stops it.

Everything goes through the window's own widgets; no key, port or file is typed.
"""

from __future__ import annotations

import pytest
from pytestqt.qtbot import QtBot

from tests.journeys.conftest import WAIT_MS, LaunchApp, open_page
from tests.journeys.steps import ask, card_of, chat_page, snapshot, start_from_fit
from tests.realparts.fixtures import TinyGgufFactory
from ui.pages.backends_page import BackendsPage


@pytest.mark.journey
def test_model_folder_to_fit_to_backend_to_chat_and_back_after_a_restart(
        qtbot: QtBot, launch_app: LaunchApp, tiny_gguf: TinyGgufFactory) -> None:
    model = tiny_gguf(filename="qwen3-tiny.gguf")
    app = launch_app()
    name = start_from_fit(qtbot, app, model.parent)

    chat = chat_page(app)
    # The running backend is the first choice, picked for a new user; its key is never
    # shown or typed.
    picker = chat.endpoint_box
    qtbot.waitUntil(lambda: picker.count() >= 1 and picker.itemData(0) == name,
                    timeout=WAIT_MS)
    assert picker.itemText(0).startswith(f"{name} — qwen3-tiny.gguf on local")
    picker.setCurrentIndex(0)
    picker.activated.emit(0)
    qtbot.waitUntil(lambda: chat.status_label.text().startswith("Ready"), timeout=WAIT_MS)
    assert chat.target is not None
    key = app.services.chat.api_key(chat.target)
    assert key
    shown = [picker.itemText(i) for i in range(picker.count())] + [
        chat.status_label.text(), chat.status_label.toolTip(), picker.currentText()]
    assert not [text for text in shown if key in text]
    first = ask(qtbot, chat, "Hello there")
    assert first
    snapshot(app.window, "chat-with-a-rigdeck-backend")
    conversation = chat.conversation_id
    assert conversation is not None

    app.quit()
    assert not app.window.isVisible()

    # A new run of Rigdeck: the backend outlived the last one and is found again.
    again = launch_app()
    chat = chat_page(again)
    titles = [chat.conversation_list.item(i).text()
              for i in range(chat.conversation_list.count())]
    assert titles == ["Hello there"]
    chat.conversation_list.setCurrentRow(0)
    qtbot.waitUntil(lambda: chat.endpoint_box.findData(name) >= 0, timeout=WAIT_MS)
    chat.conversation_list.setCurrentRow(-1)
    chat.conversation_list.setCurrentRow(0)  # the conversation names its backend
    qtbot.waitUntil(lambda: chat.status_label.text().startswith("Ready"), timeout=WAIT_MS)
    assert chat.target is not None
    assert chat.target.name == name
    ask(qtbot, chat, "Tell me more")
    assert chat.conversation_id == conversation
    assert [w.message.role for w in chat.message_list.widgets] == [
        "user", "assistant", "user", "assistant"]

    backends = open_page(again, "backends")
    assert isinstance(backends, BackendsPage)
    qtbot.waitUntil(lambda: card_of(backends, name) is not None, timeout=WAIT_MS)
    card = card_of(backends, name)
    assert card is not None
    card.stop_button.click()
    qtbot.waitUntil(lambda: card_of(backends, name) is None, timeout=WAIT_MS)
    assert again.services.backends.service.refresh() == []
