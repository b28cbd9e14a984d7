"""Journey 2: two roles on one tiny qwen3 backend. The user starts the model from the
Library with both roles preloaded (the Start dialog offers them, checked), then swaps
role from the Chat page's chip and from the tray's Roles menu: the same prompt gets a
different greedy answer under each role's adapter, and the server is never restarted.

The two roles differ only in their adapters (no system prompt, the same greedy sampling),
so different answers show that each request really ran with its role's adapter.
"""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QSystemTrayIcon
from pytestqt.qtbot import QtBot

from app.paths import AppPaths
from app.roles.role import Role, RoleAdapter
from app.roles.store import RoleStore
from tests.journeys.conftest import WAIT_MS, LaunchApp, open_page
from tests.journeys.steps import (
    add_model_folder,
    ask,
    card_of,
    chat_page,
    pick_backend,
    snapshot,
    start_dialog_from_library,
    wait_ready,
)
from tests.realparts.fixtures import TinyGgufFactory
from tests.realparts.gguf_factory import LORA_TARGETS, TinyModelSpec
from ui.application import RigdeckApp
from ui.pages.chat_page import ChatPage

GREEDY: dict[str, float | int] = {"temperature": 0.0, "top_k": 1}
SCALE = 16.0
PROMPT = "Hello there"


def choose_role_in_chip(chat: ChatPage, label: str) -> None:
    chip = chat.role_box
    index = chip.findText(label)
    assert index >= 0, [chip.itemText(i) for i in range(chip.count())]
    assert chip.reason(label) is None  # the backend serves it
    chip.setCurrentIndex(index)
    chip.activated.emit(index)


def ask_fresh(qtbot: QtBot, chat: ChatPage) -> str:
    """The prompt in a new conversation (no earlier turn to change the answer)."""
    chat.new_button.click()
    return ask(qtbot, chat, PROMPT)


def choose_role_in_tray(app: RigdeckApp, label: str) -> None:
    assert app.tray is not None
    [action] = [a for a in app.tray.roles_menu.actions() if a.text() == label]
    action.trigger()


@pytest.mark.journey
# The offscreen platform has no tray area; the tray icon and its menu are the app's own.
@pytest.mark.qt_log_ignore("No such signal QPlatformNativeInterface::systemTrayWindowChanged")
def test_two_roles_preloaded_then_swapped_from_the_chip_and_the_tray_without_a_restart(
        qtbot: QtBot, launch_app: LaunchApp, tiny_gguf: TinyGgufFactory,
        monkeypatch: pytest.MonkeyPatch, machine: AppPaths) -> None:
    spec = TinyModelSpec()
    model = tiny_gguf(spec, filename="qwen3-tiny.gguf")
    store = RoleStore(machine.config / "roles")  # the user's two roles, saved earlier
    for name, seed in (("Coach", 11), ("Tutor", 22)):
        adapter = tiny_gguf.lora(spec, rank=8, targets=LORA_TARGETS, seed=seed,
                                 filename=f"{name.lower()}-lora.gguf")
        store.save(Role(name, adapters=(RoleAdapter(str(adapter), SCALE),), sampling=GREEDY))
    monkeypatch.setattr(QSystemTrayIcon, "isSystemTrayAvailable", staticmethod(lambda: True))

    app = launch_app()
    assert app.tray is not None
    add_model_folder(qtbot, app, model.parent)
    backends, dialog = start_dialog_from_library(qtbot, app)
    qtbot.waitUntil(lambda: dialog.roles_list.count() == 2, timeout=WAIT_MS)
    offered = {dialog.roles_list.item(i).text(): dialog.roles_list.item(i).checkState()
               for i in range(dialog.roles_list.count())}
    snapshot(dialog, "start-dialog-with-roles")
    assert all(state.name == "Checked" for state in offered.values()), offered
    dialog.host_combo.setCurrentText("processes")
    dialog.context_spin.setValue(1024)
    dialog.accept_button.click()
    card = wait_ready(qtbot, backends, "qwen3-tiny")
    pid = card.backend.ref

    chat = chat_page(app)
    pick_backend(qtbot, chat, "qwen3-tiny")
    qtbot.waitUntil(lambda: chat.role_box.reason("Coach") is None
                    and chat.role_box.backend is not None, timeout=WAIT_MS)
    plain = ask_fresh(qtbot, chat)
    choose_role_in_chip(chat, "Coach")
    coach = ask_fresh(qtbot, chat)
    choose_role_in_tray(app, "Tutor")
    assert chat.role_box.currentText() == "Tutor"  # the chip follows the tray
    tutor = ask_fresh(qtbot, chat)
    snapshot(app.window, "chat-with-a-role")
    assert len({plain, coach, tutor}) == 3, (plain, coach, tutor)
    assert [w.message.role_name for w in chat.message_list.widgets] == [None, "Tutor"]

    assert open_page(app, "backends") is backends
    same = card_of(backends, "qwen3-tiny")
    assert same is not None
    assert same.backend.ref == pid  # swapped per request: never restarted
