"""Journey 3: a MoE model started from the Library, chatted with, then relaunched from the
Chat page's Experts chip with 4 experts per token after one confirmation; the server's
own log shows the new count and the conversation goes on.
"""

from __future__ import annotations

import re

import pytest
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from tests.journeys.conftest import READY_MS, WAIT_MS, LaunchApp, open_page
from tests.journeys.steps import (
    add_model_folder,
    ask,
    chat_page,
    pick_backend,
    snapshot,
    start_from_library,
    wait_ready,
)
from tests.realparts.fixtures import TinyGgufFactory
from tests.realparts.gguf_factory import TinyModelSpec
from ui.pages.backends_page import BackendsPage


@pytest.mark.journey
def test_the_experts_chip_relaunches_a_moe_backend_and_the_chat_goes_on(
        qtbot: QtBot, launch_app: LaunchApp, tiny_gguf: TinyGgufFactory) -> None:
    model = tiny_gguf(TinyModelSpec(arch="qwen3moe", experts=8, experts_used=2),
                      filename="moe-tiny.gguf")
    app = launch_app()
    add_model_folder(qtbot, app, model.parent)
    card = start_from_library(qtbot, app, "processes", 1024)
    name, pid = card.backend.name, card.backend.ref

    chat = chat_page(app)
    pick_backend(qtbot, chat, name)
    ask(qtbot, chat, "Hello experts")

    experts = chat.experts_box
    qtbot.waitUntil(experts.isEnabled, timeout=WAIT_MS)
    labels = [experts.itemText(i) for i in range(experts.count())]
    assert len(labels) == 8
    assert labels[1] == "Experts: 2 (default)"
    assert experts.currentText() == "Experts: 2 (default)"
    assert all("MiB" in text or "same memory" in text for text in labels[2:])

    four = experts.findData(4)
    experts.setCurrentIndex(four)
    experts.activated.emit(four)
    question = chat.experts_confirm
    assert question is not None
    qtbot.waitUntil(question.isVisible, timeout=WAIT_MS)
    assert "4 experts per token" in question.text()
    snapshot(question, "experts-confirmation")
    yes = question.button(QMessageBox.StandardButton.Yes)
    assert yes is not None
    yes.click()

    qtbot.waitUntil(lambda: chat.status_label.text().startswith("Ready")
                    and experts.isEnabled(), timeout=READY_MS)
    assert experts.currentText() == labels[3]  # 4, with its memory effect
    assert app.services.notifier.history[-1].text == (
        f"{name} runs again, with 4 experts per token")
    snapshot(app.window, "experts-chip-after-relaunch")
    backends = open_page(app, "backends")
    assert isinstance(backends, BackendsPage)
    relaunched = wait_ready(qtbot, backends, name, replacing=pid)  # a new server process
    relaunched.logs_button.click()
    qtbot.waitUntil(lambda: "n_expert_used" in backends.log_view.toPlainText(),
                    timeout=WAIT_MS)
    log = backends.log_view.toPlainText()
    assert re.search(r"n_expert_used +=  *4\b", log)  # the engine's own word

    chat = chat_page(app)
    conversation = chat.conversation_id
    ask(qtbot, chat, "And now?")
    assert chat.conversation_id == conversation
    assert len(chat.message_list.widgets) == 4
