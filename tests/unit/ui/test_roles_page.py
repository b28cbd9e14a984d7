"""The Roles page, the Chat role chip and the tray's Roles menu, with real parts: real
GGUF LoRA files in a real library, and a real llama-server that preloads one of them.

The tiny model is random, so the side-by-side test uses greedy decoding (the role's
sampling) and a scale that moves the first tokens (see test_roles_llama_server.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from PySide6.QtGui import QStandardItemModel
from pytestqt.qtbot import QtBot

from app.engines.plan import LaunchPlan
from app.paths import AppPaths
from app.roles.role import Role, RoleAdapter, RoleError, role_from_toml
from app.runtime.hosts import PROCESSES
from tests.realparts.fixtures import TinyGgufFactory
from tests.realparts.gguf_factory import LORA_TARGETS, TinyModelSpec
from tests.realparts.leak_guard import LeakGuard
from tests.unit.app.chat.llama_process import llama_server
from tests.unit.app.library.builders import write_peft
from tests.unit.app.roles.vllm_api import VllmState, vllm_api
from ui.pages.chat_page import ChatPage
from ui.pages.roles_page import RolesPage, roles_page
from ui.role_chip import RoleChipWidget
from ui.role_feed import NO_ROLE, tray_role_entries
from ui.services import Services
from ui.tray import TrayIcon

WAIT_MS = 30_000
GREEDY: dict[str, float | int] = {"temperature": 0.0, "top_k": 1}


@dataclass
class Models:
    folder: Path
    model: Path
    coach: Path
    tutor: Path
    wide: Path


@pytest.fixture(autouse=True)
def _no_default_stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The app's library also looks in the HF cache, Ollama and LM Studio: empty ones."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "no-hf"))
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "no-ollama"))
    monkeypatch.setenv("LMSTUDIO_MODELS", str(tmp_path / "no-lmstudio"))


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    folder = tmp_path_factory.mktemp("roles-ui-models")
    factory = TinyGgufFactory(folder)
    spec = TinyModelSpec()
    wide = TinyModelSpec(hidden_size=128, head_dim=32, name="wide")
    return Models(
        folder, factory(spec, filename="tiny.gguf"),
        factory.lora(spec, rank=8, targets=LORA_TARGETS, seed=11, filename="coach.gguf"),
        factory.lora(spec, rank=8, targets=LORA_TARGETS, seed=22, filename="tutor.gguf"),
        factory.lora(wide, rank=8, seed=5, filename="wide-lora.gguf"))


@pytest.fixture(scope="module")
def server(llama_server_binary: Path, models: Models) -> Iterator[str]:
    """A llama-server that preloads the coach adapter only."""
    with llama_server(llama_server_binary, models.model,
                      extra=["--lora", str(models.coach), "--lora-init-without-apply"],
                      env={"LLAMA_SERVER_SLOTS_DEBUG": "1"}) as url:
        yield url


def coach(models: Models) -> Role:
    return Role("Coach", icon="⚑", colour="#16a34a", system_prompt="You are a coach.",
                adapters=(RoleAdapter(str(models.coach), 16.0),), sampling=GREEDY)


def tutor(models: Models) -> Role:
    return Role("Tutor", colour="#7c3aed", adapters=(RoleAdapter(str(models.tutor), 16.0),),
                sampling=GREEDY)


@pytest.fixture
def page(qtbot: QtBot, services: Services, models: Models) -> RolesPage:
    services.settings.set("model_folders", [str(models.folder)])
    services.roles.save(coach(models))
    services.roles.save(tutor(models))
    widget = roles_page(services, None)
    assert isinstance(widget, RolesPage)
    qtbot.add_widget(widget)
    widget.resize(1100, 680)
    widget.show()
    qtbot.waitUntil(lambda: len(services.library.entries) == 4, timeout=WAIT_MS)
    return widget


def names(page: RolesPage) -> list[str]:
    return [page.role_list.item(i).text() for i in range(page.role_list.count())]


def test_lists_shipped_and_own_roles_and_edits_them(page: RolesPage, services: Services,
                                                    models: Models) -> None:
    assert names(page)[:4] == ["○ Plain", "⚑ Sports coach", "⚛ Physics tutor", "⌨ Coder"]
    page.select("Coach")
    assert page.editor.name_edit.text() == "Coach"
    assert page.editor.prompt_edit.toPlainText() == "You are a coach."
    assert page.editor.adapter_table.rowCount() == 1
    assert page.editor.temperature.value() == 0.0
    assert page.editor.top_p.text() == "model default"
    page.editor.name_edit.setText("Head coach")
    page.editor.prompt_edit.setPlainText("You are the head coach.")
    page.editor.save_button.click()
    saved = services.roles.store.get("Head coach")
    assert saved.system_prompt == "You are the head coach."
    assert saved.adapters == coach(models).adapters
    assert "Coach" not in services.roles.roles()
    assert page.selected_name() == "Head coach"


def test_new_duplicate_delete_and_shipped_roles_cannot_be_deleted(page: RolesPage) -> None:
    page.new_button.click()
    assert page.selected_name() == "New role"
    page.select("Plain")
    assert not page.delete_button.isEnabled()
    page.duplicate_button.click()
    assert page.selected_name() == "Plain copy"
    page.delete_button.click()
    assert "○ Plain copy" not in names(page)


def test_export_then_import_and_a_bad_file_is_a_clear_message(
        page: RolesPage, services: Services, tmp_path: Path, qtbot: QtBot) -> None:
    target = tmp_path / "coach.toml"
    page.export_role("Coach", target)
    assert role_from_toml(target.read_text()).system_prompt == "You are a coach."
    services.roles.delete("Coach")
    page.import_role(target)
    assert "Coach" in services.roles.roles()
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [", encoding="utf-8")
    with qtbot.wait_signal(services.notifier.posted, timeout=1000) as posted:
        page.import_role(bad)
    assert "is not valid TOML" in posted.args[0].text


def test_adapter_picker_offers_only_adapters_that_fit_the_base(page: RolesPage,
                                                               models: Models) -> None:
    editor = page.editor
    every = [editor.adapter_picker.itemText(i) for i in range(editor.adapter_picker.count())]
    assert sorted(every) == ["coach.gguf", "tutor.gguf", "wide-lora.gguf"]
    editor.base_box.setCurrentIndex(editor.base_box.findData(str(models.model)))
    fitting = [editor.adapter_picker.itemData(i) for i in range(editor.adapter_picker.count())]
    assert sorted(fitting) == sorted([str(models.coach), str(models.tutor)])
    page.new_button.click()
    editor.base_box.setCurrentIndex(editor.base_box.findData(str(models.model)))
    editor.adapter_picker.setCurrentIndex(editor.adapter_picker.findData(str(models.tutor)))
    editor.add_adapter_button.click()
    assert editor.role().adapters == (RoleAdapter(str(models.tutor), 1.0),)
    assert editor.role().base_models == (str(models.model),)


def test_backend_check_shows_unservable_roles_with_the_reason_and_fix(
        page: RolesPage, server: str, qtbot: QtBot) -> None:
    page.test_box.url_edit.setText(server)
    page.check_backend()
    qtbot.waitUntil(lambda: page.backend_roles is not None, timeout=WAIT_MS)
    page.select("Coach")
    assert page.status_label.text() == f"{server} can serve ⚑ Coach."
    assert not page.relaunch_button.isVisible()
    page.select("Tutor")
    assert page.status_label.text().startswith(
        f"{server} cannot serve Tutor: not loaded: tutor was not preloaded")
    assert page.relaunch_button.isVisible()
    assert not page.relaunch_button.isEnabled()  # a URL, not a backend Rigdeck started
    assert "Only a backend Rigdeck started" in page.relaunch_button.toolTip()
    tutor_item = page.role_list.item(names(page).index("Tutor"))
    assert tutor_item.toolTip().startswith(f"Not available on {server}: not loaded")


def test_side_by_side_answers_differ_with_the_role(page: RolesPage, server: str,
                                                   qtbot: QtBot) -> None:
    page.select("Coach")
    page.test_box.url_edit.setText(server)
    page.test_box.prompt_edit.setText("Hello there")
    with qtbot.wait_signal(page.test_box.finished, timeout=WAIT_MS):
        page.test_box.send_button.click()
    without = page.test_box.without_view.toPlainText()
    with_role = page.test_box.with_view.toPlainText()
    assert without
    assert with_role
    assert without != with_role
    assert page.test_box.with_label.text() == "With ⚑ Coach"
    page.select("Tutor")
    with qtbot.wait_signal(page.test_box.finished, timeout=WAIT_MS):
        page.test_box.send_button.click()
    assert "not loaded" in page.test_box.without_view.toPlainText()


def test_chat_chip_disables_unservable_roles_and_sends_with_the_role(
        page: RolesPage, services: Services, server: str, qtbot: QtBot) -> None:
    chat = ChatPage(services)
    qtbot.add_widget(chat)
    chip = chat.role_box
    chat.set_endpoint(server)
    qtbot.waitUntil(lambda: chip.backend is not None, timeout=WAIT_MS)
    model = chip.model()
    assert isinstance(model, QStandardItemModel)
    tutor_row = chip.findData("Tutor")
    assert not model.item(tutor_row).isEnabled()
    assert model.item(tutor_row).toolTip().startswith("Not available on this backend: "
                                                      "not loaded")
    assert model.item(chip.findData("Coach")).isEnabled()
    chip.activated.emit(chip.findData("Coach"))
    assert services.roles.current == "Coach"
    assert "⚑ Coach  (in use)" in names(page)
    with qtbot.wait_signal(chat.controller.finished, timeout=WAIT_MS):
        chat.send("Hello there")
    assert chat.conversation_id is not None
    reply = chat.chat.history.messages(chat.conversation_id)[-1]
    assert reply.role_name == "Coach"
    slot = httpx.get(f"{server}/slots", timeout=10).json()[0]
    assert slot["params"]["lora"] == [{"id": 0, "scale": 16.0}]
    assert "You are a coach." in slot["prompt"]
    services.roles.choose(NO_ROLE)
    with qtbot.wait_signal(chat.controller.finished, timeout=WAIT_MS):
        chat.send("Without a role")
    assert chat.chat.history.messages(chat.conversation_id)[-1].role_name is None
    slot = httpx.get(f"{server}/slots", timeout=10).json()[0]
    assert slot["params"]["lora"] == [{"id": 0, "scale": 0.0}]  # off, not at load scale 1
    services.roles.choose("Tutor")
    with qtbot.wait_signal(services.notifier.posted, timeout=1000) as posted:
        chat.send("Again")
    assert "not available on this backend: not loaded" in posted.args[0].text
    assert [m.content for m in chat.chat.history.messages(chat.conversation_id)
            if m.role == "user"] == ["Hello there", "Without a role"]  # not the refused one
    chat.close()


def test_tray_roles_menu_sets_the_role_of_chat(page: RolesPage, services: Services,
                                               qtbot: QtBot) -> None:
    chat = ChatPage(services)
    qtbot.add_widget(chat)
    tray = TrayIcon()
    tray.set_roles(*tray_role_entries(services.roles))
    labels = [a.text() for a in tray.roles_menu.actions()]
    assert labels[:2] == ["No role", "○ Plain"]
    assert "⚑ Coach" in labels
    assert tray.roles_menu.actions()[0].isChecked()
    tray.roles_menu.actions()[labels.index("⚑ Coach")].trigger()
    assert services.roles.current == "Coach"
    assert chat.role_box.currentData() == "Coach"
    tray.set_roles(*tray_role_entries(services.roles))
    checked = [a.text() for a in tray.roles_menu.actions() if a.isChecked()]
    assert checked == ["⚑ Coach"]
    services.roles.choose(NO_ROLE)
    assert chat.role_box.currentText() == "Role: none"
    services.roles.choose("Sports coach")  # a shipped role whose thinking default is off
    assert not chat.think_button.isChecked()
    services.roles.choose("Physics tutor")
    assert chat.think_button.isChecked()
    chat.close()


@pytest.fixture
def process_services(qtbot: QtBot, app_paths: AppPaths, llama_server_binary: Path
                     ) -> Iterator[Services]:
    """Services whose "processes" host runs the real llama-server; backends stopped after."""
    app_paths.config.mkdir(parents=True, exist_ok=True)
    app_paths.settings_file.write_text(f'llama_server_path = "{llama_server_binary}"\n',
                                       encoding="utf-8")
    built = Services.build(app_paths)
    yield built
    for backend in built.backends.service.refresh():
        if backend.state.is_live:
            built.backends.service.stop(backend)
    built.shutdown()


def test_relaunch_button_restarts_a_rigdeck_backend_with_every_fitting_role(
        qtbot: QtBot, leak_guard: LeakGuard, process_services: Services,
        models: Models) -> None:
    """The selected role's adapter and the other fitting role's are preloaded; the role
    for a wider model is left out (llama-server would refuse to start with it).

    (The leak guard comes first, so it checks after the services stopped the backend.)"""
    services = process_services
    services.roles.save(coach(models))
    services.roles.save(tutor(models))
    services.roles.save(Role("Wide", adapters=(RoleAdapter(str(models.wide)),)))
    plan = LaunchPlan(model=str(models.model), name="roles-ui", context=512, threads=1)
    backend = services.backends.service.start(plan, PROCESSES, wait=True).backend
    with qtbot.wait_signal(services.backends.updated, timeout=WAIT_MS):
        services.backends.refresh()
    page = RolesPage(services)
    qtbot.add_widget(page)
    page.select("Coach")
    page.test_box.url_edit.setText(backend.base_url)
    page.check_backend()
    qtbot.waitUntil(lambda: page.backend_roles is not None, timeout=WAIT_MS)
    assert "cannot serve ⚑ Coach: not loaded" in page.status_label.text()
    assert page.relaunch_button.isEnabled()
    assert page.relaunch_button.toolTip().startswith("Stop roles-ui and start it again")
    page.relaunch_button.click()
    assert page.status_label.text().startswith("Relaunching roles-ui with ⚑ Coach")
    qtbot.waitUntil(lambda: page.status_label.text().endswith("can serve ⚑ Coach."),
                    timeout=WAIT_MS)
    live = [b for b in services.backends.service.refresh() if b.state.is_live]
    assert [b.name for b in live] == ["roles-ui"]
    assert live[0].ref != backend.ref  # a new process, on the same port
    assert live[0].port == backend.port
    assert LaunchPlan.from_json(live[0].plan_json).adapters == (str(models.coach),
                                                                str(models.tutor))


def _sendable(chip: RoleChipWidget) -> bool:
    """Whether the chip's role can be sent now (a vLLM adapter may still be loading)."""
    try:
        return chip.role_request() is not None
    except RoleError:
        return False


@pytest.mark.parametrize("runtime_loading", [True, False])
def test_chat_on_vllm_loads_the_roles_adapter_then_asks_for_it_by_name(
        qtbot: QtBot, services: Services, tmp_path: Path, runtime_loading: bool) -> None:
    """vLLM's side, against a loopback server speaking its documented LoRA API."""
    peft = write_peft(tmp_path / "peft-coach", rank=8)
    services.roles.save(Role("Coach", adapters=(RoleAdapter(str(peft)),)))
    state = VllmState(adapters={"other": "/models/other"}, runtime_loading=runtime_loading)
    with vllm_api(state) as url:
        chat = ChatPage(services)
        qtbot.add_widget(chat)
        services.roles.choose("Coach")
        chat.set_endpoint(url)
        chip = chat.role_box
        if not runtime_loading:
            qtbot.waitUntil(lambda: chip.reason("Coach") is not None, timeout=WAIT_MS)
            assert "refused to load adapter peft-coach" in str(chip.reason("Coach"))
            chat.close()
            return
        qtbot.waitUntil(lambda: _sendable(chip), timeout=WAIT_MS)
        assert "peft-coach" in state.adapters
        with qtbot.wait_signal(chat.controller.finished, timeout=WAIT_MS):
            chat.send("Hello")
        sent = [body for method, path, body in state.requests
                if path == "/v1/chat/completions"]
        assert sent[-1]["model"] == "peft-coach"
        assert chat.conversation_id is not None
        assert chat.chat.history.messages(chat.conversation_id)[-1].content == "from peft-coach"
        loads = [p for _m, p, _b in state.requests if p == "/v1/load_lora_adapter"]
        assert len(loads) == 1
        chat.close()


def test_a_nameless_role_is_not_saved_and_says_why(page: RolesPage, services: Services,
                                                   qtbot: QtBot) -> None:
    page.select("Coach")
    page.editor.name_edit.setText("  ")
    with qtbot.wait_signal(services.notifier.posted, timeout=1000) as posted:
        page.editor.save_button.click()
    assert "a role needs a name with letters or digits" in posted.args[0].text
    assert "Coach" in services.roles.roles()


def test_a_corrupt_role_file_is_reported_when_the_app_starts(qtbot: QtBot,
                                                             app_paths: AppPaths) -> None:
    folder = app_paths.config / "roles"
    folder.mkdir(parents=True)
    (folder / "broken.toml").write_text("name = 'Broken'\ncolour = 'red'\n", encoding="utf-8")
    built = Services.build(app_paths)
    try:
        texts = [notice.text for notice in built.notifier.history]
        assert any("broken.toml cannot be read: colour must look like" in t for t in texts)
        assert "Plain" in built.roles.roles()
    finally:
        built.shutdown()
