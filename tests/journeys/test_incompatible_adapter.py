"""Journey: a role whose adapter was made for another architecture never breaks a backend.

The user has two roles saved: "Expert" with a LoRA for qwen3moe and "Writer" with a LoRA
for qwen3 (its attention matrices have the very shapes of the qwen3moe model's, which is
how it used to slip through and make llama-server exit with "model loading error"). They
open Backends → Start backend…, pick a tiny qwen3moe model, see Writer disabled with the
reason and Expert checked, start it as a local process with the real llama-server, and it
becomes ready, its log free of any refusal, and the real process's command line passes
only Expert's adapter.

Driven through the real window's visible widgets: clicks and typing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QAbstractButton, QApplication, QListWidget, QListWidgetItem, QWidget
from pytestqt.qtbot import QtBot

from app.paths import AppPaths
from app.roles.role import Role, RoleAdapter
from app.roles.store import RoleStore
from app.runtime.backend import BackendState
from tests.journeys.steps import snapshot
from tests.realparts.fixtures import TinyGgufFactory
from tests.realparts.gguf_factory import TinyModelSpec
from tests.realparts.leak_guard import LeakGuard
from ui.backend_card import BackendCard
from ui.backend_start_dialog import BackendStartDialog
from ui.main_window import MainWindow
from ui.pages.backends_page import BackendsPage
from ui.services import Services

pytestmark = pytest.mark.journey

WAIT_MS = 30_000
READY_MS = 180_000
MOE = TinyModelSpec(arch="qwen3moe")
DENSE = TinyModelSpec(arch="qwen3")
WRITER_REASON = "incompatible base: adapter for qwen3, model is qwen3moe"


# ---------------------------------------------------------------- fixtures
class Files:
    """The user's files: a tiny qwen3moe model and a LoRA for each architecture."""

    def __init__(self, factory: TinyGgufFactory) -> None:
        self.model = factory(MOE, filename="tiny-moe.gguf")
        self.expert_lora = factory.lora(MOE, filename="expert-moe-lora.gguf", seed=7)
        self.writer_lora = factory.lora(DENSE, filename="writer-qwen3-lora.gguf", seed=8)


@pytest.fixture
def files(tiny_gguf: TinyGgufFactory) -> Files:
    return Files(tiny_gguf)


@pytest.fixture
def window(qtbot: QtBot, *, app_paths: AppPaths, files: Files, llama_server_binary: Path,
           tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MainWindow]:
    """The app as the user starts it: their two roles saved, no Docker on this machine,
    llama-server set in the settings; every backend stopped afterwards."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-docker.sock'}")
    for store in ("HF_HUB_CACHE", "OLLAMA_MODELS", "LMSTUDIO_MODELS"):
        monkeypatch.setenv(store, str(tmp_path / f"no-{store.lower()}"))
    roles = RoleStore(app_paths.config / "roles")
    roles.save(Role("Expert", icon="◆", adapters=(RoleAdapter(str(files.expert_lora)),)))
    roles.save(Role("Writer", icon="✎", adapters=(RoleAdapter(str(files.writer_lora)),)))
    app_paths.settings_file.write_text(f'llama_server_path = "{llama_server_binary}"\n',
                                       encoding="utf-8")
    services = Services.build(app_paths)
    services.backends.start()
    main = MainWindow(services)
    qtbot.add_widget(main)
    main.show()
    qtbot.wait_exposed(main)
    yield main
    for backend in services.backends.service.refresh():
        if backend.state.is_live:
            services.backends.service.stop(backend)
    services.shutdown()


# ---------------------------------------------------------------- what the user does
def click(widget: QWidget) -> None:
    QTest.mouseClick(widget, Qt.MouseButton.LeftButton)


def click_item(view: QListWidget, item: QListWidgetItem) -> None:
    view.scrollToItem(item)
    QTest.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.NoModifier, view.visualItemRect(item).center())


def type_into(widget: QWidget, text: str) -> None:
    """Select what the field holds and type over it."""
    widget.setFocus()
    QTest.keyClick(widget, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClicks(widget, text)


def open_page(window: MainWindow, title: str) -> QWidget:
    rail = window.rail
    item = next(rail.item(row) for row in range(rail.count()) if rail.item(row).text() == title)
    click_item(rail, item)
    shown = window.stack.currentWidget()
    assert shown is not None
    return shown


def button(parent: QWidget, text: str) -> QAbstractButton:
    found = [b for b in parent.findChildren(QAbstractButton)
             if b.text() == text and b.isVisible()]
    assert len(found) == 1, [b.text() for b in parent.findChildren(QAbstractButton)]
    return found[0]


def start_dialog() -> BackendStartDialog:
    shown = [w for w in QApplication.topLevelWidgets()
             if isinstance(w, BackendStartDialog) and w.isVisible()]
    assert len(shown) == 1
    return shown[0]


def role_rows(dialog: BackendStartDialog) -> dict[str, QListWidgetItem]:
    items = [dialog.roles_list.item(row) for row in range(dialog.roles_list.count())]
    return {item.text().split(" — ")[0]: item for item in items}


def card_of(page: BackendsPage, name: str) -> BackendCard | None:
    return next((card for card in page.findChildren(BackendCard)
                 if card.name_label.text() == name), None)


# ---------------------------------------------------------------- the journey
def test_an_adapter_for_another_architecture_is_shown_and_never_passed(
        qtbot: QtBot, leak_guard: LeakGuard, window: MainWindow, files: Files) -> None:
    """(The leak guard comes first, so it checks after the window stopped the backend.)"""
    page = open_page(window, "Backends")
    assert isinstance(page, BackendsPage)
    qtbot.waitUntil(lambda: "processes" in page.panels, timeout=WAIT_MS)  # the doctor ran
    click(button(page, "Start backend…"))
    dialog = start_dialog()

    type_into(dialog.model_edit, str(files.model))
    type_into(dialog.name_edit, "journey")
    type_into(dialog.context_spin, "1024")
    type_into(dialog.port_spin, str(leak_guard.free_port()))
    dialog.host_combo.setFocus()
    QTest.keyClicks(dialog.host_combo, "processes")  # the combo's keyboard search
    assert dialog.host_combo.currentText() == "processes"

    qtbot.waitUntil(lambda: set(role_rows(dialog)) == {"◆ Expert", "✎ Writer"},
                    timeout=WAIT_MS)
    expert, writer = role_rows(dialog)["◆ Expert"], role_rows(dialog)["✎ Writer"]
    assert expert.checkState() == Qt.CheckState.Checked
    assert expert.flags() & Qt.ItemFlag.ItemIsEnabled
    assert writer.text() == f"✎ Writer — {WRITER_REASON}"
    assert not writer.flags() & Qt.ItemFlag.ItemIsEnabled
    assert writer.checkState() == Qt.CheckState.Unchecked
    assert writer.toolTip() == f"Not preloaded: {WRITER_REASON}"
    snapshot(dialog, "start-dialog-incompatible-role")
    click_item(dialog.roles_list, writer)  # a disabled row cannot be ticked
    assert writer.checkState() == Qt.CheckState.Unchecked

    click(dialog.accept_button)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=WAIT_MS)

    def ready() -> bool:
        card = card_of(page, "journey")
        return card is not None and f"{BackendState.READY}" in card.state_label.text()

    qtbot.waitUntil(ready, timeout=READY_MS)
    card = card_of(page, "journey")
    assert card is not None
    assert not card.reason_label.text()  # nothing went wrong

    click(card.logs_button)
    qtbot.waitUntil(lambda: "listening on" in page.log_view.toPlainText(), timeout=WAIT_MS)
    log = page.log_view.toPlainText()
    assert "model loading error" not in log
    assert "failed to apply lora adapter" not in log
    command = psutil.Process(int(card.backend.ref)).cmdline()  # the real llama-server's
    loras = [command[i + 1] for i, arg in enumerate(command) if arg == "--lora"]
    assert loras == [str(files.expert_lora)]
    assert "--lora-init-without-apply" in command

    click(card.stop_button)
    qtbot.waitUntil(lambda: card_of(page, "journey") is None, timeout=WAIT_MS)
