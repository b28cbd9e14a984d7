"""Journey: a new user points a script at Rigdeck's Gateway. They add the model folder,
start the model from the Library's Start dialog on the Docker engine (their LoRA role
preloaded), choose the Gateway's port in Settings, open the Gateway page, turn it on,
create a key for "n8n" and copy it; the official `openai` Python client then streams a
chat to the backend's model id and one to the role's id through the URL the page shows,
with that key, and the page's live requests table shows both, with the client's name, the
role and the tokens, and the usage per key and role counts them.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any

import openai
import pytest
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from app.paths import AppPaths
from app.roles.role import Role, RoleAdapter
from app.roles.store import RoleStore
from tests.journeys.conftest import WAIT_MS, LaunchApp, open_page
from tests.journeys.steps import add_model_folder, snapshot, start_dialog_from_library, wait_ready
from tests.realparts.fixtures import TinyGgufFactory
from tests.realparts.gguf_factory import LORA_TARGETS, TinyModelSpec
from ui.application import RigdeckApp
from ui.pages.gateway_page import GatewayPage
from ui.pages.settings_page import SettingsPage

GREEDY: dict[str, float | int] = {"temperature": 0.0, "top_k": 1}
STREAM_MS = 120_000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stream_both(url: str, key: str, models: list[str], out: dict[str, Any]) -> None:
    """What the user's script does, on its own thread: one stream per model id."""
    try:
        with openai.OpenAI(base_url=url, api_key=key, max_retries=0, timeout=120.0) as client:
            for model in models:
                stream = client.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": "Hello there"}],
                    max_tokens=12, stream=True,
                    extra_body={"chat_template_kwargs": {"enable_thinking": False}})
                out[model] = "".join(chunk.choices[0].delta.content or ""
                                     for chunk in stream if chunk.choices)
            try:
                with openai.OpenAI(base_url=url, api_key="rdk-wrong", max_retries=0) as wrong:
                    wrong.models.list()
            except openai.AuthenticationError as exc:
                out["wrong key"] = exc.status_code
    except Exception as exc:  # the test thread reports it
        out["error"] = exc


def start_with_the_role(qtbot: QtBot, app: RigdeckApp, folder: Path) -> str:
    """Settings → Add folder…; Library → Start… with the role preloaded, on the Docker
    engine; the backend's name once it is ready."""
    add_model_folder(qtbot, app, folder)
    backends, dialog = start_dialog_from_library(qtbot, app)
    qtbot.waitUntil(lambda: dialog.roles_list.count() == 1, timeout=WAIT_MS)
    assert dialog.roles_list.item(0).text().startswith("Coach")
    dialog.host_combo.setCurrentText("local")  # the Docker engine
    dialog.context_spin.setValue(1024)
    name = dialog.plan().backend_name
    dialog.accept_button.click()
    wait_ready(qtbot, backends, name)
    return name


def choose_port(app: RigdeckApp) -> int:
    """Settings → Gateway → Port: one that is free on this machine."""
    settings = open_page(app, "settings")
    assert isinstance(settings, SettingsPage)
    port = free_port()
    settings.gateway_group.spins["gateway_port"].setValue(port)
    assert app.services.settings.get("gateway_port") == port
    return port


def create_key(qtbot: QtBot, page: GatewayPage, name: str) -> str:
    """Create key… → the name → the key shown once → Copy; the key, from the clipboard."""
    page.create_key_button.click()
    assert page.key_name_dialog is not None
    page.key_name_dialog.setTextValue(name)
    page.key_name_dialog.accept()
    qtbot.waitUntil(lambda: page.new_key_dialog is not None
                    and page.new_key_dialog.isVisible(), timeout=WAIT_MS)
    shown = page.new_key_dialog
    assert shown is not None
    shown.copy_button.click()
    key = QGuiApplication.clipboard().text()
    assert key == shown.key_edit.text()
    assert key.startswith("rdk-")
    shown.reject()
    qtbot.waitUntil(lambda: page.keys.rowCount() == 1, timeout=WAIT_MS)
    assert page.keys.texts(0)[0] == name
    assert page.keys.texts(0)[2] == f"…{key[-4:]}"
    return key


def run_the_script(qtbot: QtBot, page: GatewayPage, key: str, models: list[str]
                   ) -> dict[str, Any]:
    """Copy the base URL, run the user's script with it and the key."""
    page.copy_button.click()
    base_url = QGuiApplication.clipboard().text()
    assert base_url == page.url_edit.text()
    out: dict[str, Any] = {}
    script = threading.Thread(target=stream_both, args=(base_url, key, models, out))
    script.start()
    qtbot.waitUntil(lambda: not script.is_alive(), timeout=STREAM_MS)
    script.join()
    assert "error" not in out, out.get("error")
    return out


@pytest.mark.journey
def test_gateway_on_a_key_for_n8n_and_the_openai_client_streams_to_a_model_and_a_role(
        qtbot: QtBot, launch_app: LaunchApp, tiny_gguf: TinyGgufFactory,
        machine: AppPaths) -> None:
    spec = TinyModelSpec()
    model = tiny_gguf(spec, filename="qwen3-tiny.gguf")
    adapter = tiny_gguf.lora(spec, rank=8, targets=LORA_TARGETS, seed=11,
                             filename="coach-lora.gguf")
    RoleStore(machine.config / "roles").save(Role(  # the user's role, saved earlier
        "Coach", adapters=(RoleAdapter(str(adapter), 16.0),),
        system_prompt="You are a sports coach.", sampling=GREEDY, thinking=False))
    app = launch_app()
    name = start_with_the_role(qtbot, app, model.parent)
    port = choose_port(app)

    page = open_page(app, "gateway")
    assert isinstance(page, GatewayPage)
    url = f"http://127.0.0.1:{port}/v1"
    assert page.url_edit.text() == url
    qtbot.waitUntil(lambda: page.models.rowCount() >= 2, timeout=WAIT_MS)
    rows = {page.models.texts(r)[0]: page.models.texts(r) for r in range(page.models.rowCount())}
    assert rows[name][1:6] == ["qwen3-tiny.gguf", "—", name, "local", "running"]
    assert rows["coach"][1:6] == ["qwen3-tiny.gguf", "Coach", name, "local", "running"]
    page.switch.click()
    qtbot.waitUntil(lambda: page.status_label.text().startswith("On"), timeout=WAIT_MS)
    assert url in page.status_label.text()
    key = create_key(qtbot, page, "n8n")

    out = run_the_script(qtbot, page, key, [name, "coach"])
    assert out[name]
    assert out["coach"]
    assert out["coach"] != out[name]  # the role's adapter and prompt changed the answer
    assert out["wrong key"] == 401

    def finished() -> bool:
        return page.requests.rowCount() == 2 and all(
            page.requests.texts(r)[-1] == "ok" for r in range(2))

    qtbot.waitUntil(finished, timeout=WAIT_MS)
    newest, oldest = page.requests.texts(0), page.requests.texts(1)
    assert newest[1:5] == ["n8n", "coach", "Coach", name]
    assert oldest[1:5] == ["n8n", name, "—", name]
    for row in (newest, oldest):
        prompt, completion = row[5].split(" → ")
        assert int(prompt) > 0
        assert 0 < int(completion) <= 12
        assert row[6] != "—"  # time to first token
        assert row[7] != "—"  # tokens per second
    qtbot.waitUntil(lambda: page.usage.rowCount() == 2, timeout=WAIT_MS)
    usage = sorted(page.usage.texts(r)[:4] for r in range(2))
    assert usage == [["n8n", "Coach", "1", "0"], ["n8n", "—", "1", "0"]]
    snapshot(app.window, "gateway-page")
    settings = open_page(app, "settings")
    assert isinstance(settings, SettingsPage)
    snapshot(settings.gateway_group, "settings-gateway-group")
