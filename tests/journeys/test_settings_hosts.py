"""Journey: a new user with nothing in settings.toml sets up Rigdeck from the Settings page
alone — host networking for the local engine (the test engine has no bridge), the locally
built image as the llama.cpp image, a second engine over ssh:// added and tested (the
doctor's verdict, GPUs: none) — then starts a backend from the Start dialog on each host,
with the image the dialog shows, and removes the second host again. No file is edited."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.paths import AppPaths
from app.settings import SettingsStore
from tests.journeys.conftest import READY_MS, WAIT_MS, LaunchApp, open_page
from tests.journeys.steps import add_model_folder, snapshot, start_dialog_from_library, wait_ready
from tests.realparts.fixtures import TinyGgufFactory
from tests.realparts.remote_host import RemoteHost
from ui.application import RigdeckApp
from ui.pages.settings_page import SettingsPage
from ui.settings_hosts import AddHostDialog


def _row_of(page: SettingsPage, name: str) -> list[str]:
    table = page.hosts_group.table
    for row in range(table.rowCount()):
        items = [table.item(row, c) for c in range(table.columnCount())]
        cells = [item.text() if item is not None else "" for item in items]
        if cells[0] == name:
            return cells
    return []


def _turn_on_host_networking(qtbot: QtBot, page: SettingsPage, paths: AppPaths) -> None:
    """The doctor says the local engine has no bridge and points at Host networking."""
    hosts = page.hosts_group
    assert hosts.selected_name() == "local"
    hosts.test_button.click()
    qtbot.waitUntil(lambda: "✗" in _row_of(page, "local")[3], timeout=WAIT_MS)
    assert "no bridge network" in hosts.details_label.text()
    assert "Settings → Hosts → Host networking" in hosts.details_label.text()
    hosts.network_box.click()
    assert SettingsStore(paths.settings_file).get("local_host_network") is True
    assert _row_of(page, "local")[2] == "host network"


def _choose_image(qtbot: QtBot, page: SettingsPage, paths: AppPaths, image: str) -> None:
    """The llama.cpp image: the local engine's own, offered in the list; then the doctor
    passes on the local engine."""
    box = page.engines_group.image_boxes["llamacpp"]
    qtbot.waitUntil(lambda: box.findText(image) >= 0, timeout=WAIT_MS)
    box.setCurrentIndex(box.findText(image))
    box.activated.emit(box.currentIndex())
    qtbot.waitUntil(lambda: SettingsStore(paths.settings_file).get("llamacpp_image") == image,
                    timeout=WAIT_MS)
    page.hosts_group.test_button.click()
    qtbot.waitUntil(lambda: _row_of(page, "local")[3].startswith("✓"), timeout=WAIT_MS)
    assert _row_of(page, "local")[3].endswith("GPUs: none")


def _add_host(qtbot: QtBot, page: SettingsPage, name: str, url: str) -> None:
    """Add host… → a wrong URL (said in the dialog), then the right one → tested."""
    dialog = page.hosts_group.open_add_dialog()
    assert isinstance(dialog, AddHostDialog)
    qtbot.waitUntil(dialog.isVisible, timeout=WAIT_MS)
    dialog.name_edit.setText(name)
    dialog.url_edit.setText("http://nowhere")
    dialog.add_button.click()
    qtbot.waitUntil(lambda: "a host URL starts with ssh://" in dialog.error_label.text(),
                    timeout=WAIT_MS)
    assert dialog.isVisible()
    dialog.url_edit.setText(url)
    dialog.network_box.setChecked(True)
    dialog.add_button.click()
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "GPUs" in _row_of(page, name)[3], timeout=READY_MS)
    assert _row_of(page, name)[1:3] == [url, "host network"]
    assert _row_of(page, name)[3].endswith("GPUs: none")
    assert "Docker engine" in page.hosts_group.details_label.text()


def _start_on(qtbot: QtBot, app: RigdeckApp, host: str, image: str) -> None:
    """Library → Start… on `host`: the dialog shows `image`, and the backend runs it."""
    backends, start = start_dialog_from_library(qtbot, app)
    qtbot.waitUntil(start.isVisible, timeout=WAIT_MS)
    start.host_combo.setCurrentText(host)
    assert start.image_combo.currentText() == image
    start.name_edit.setText(f"tiny-{host}")
    start.context_spin.setValue(512)
    start.accept_button.click()
    card = wait_ready(qtbot, backends, f"tiny-{host}")
    assert card.backend.host == host
    assert card.backend.image == image


def _remove_host(qtbot: QtBot, app: RigdeckApp, page: SettingsPage, name: str) -> None:
    """Remove is refused while a backend runs there; after a stop it goes."""
    hosts = page.hosts_group
    assert open_page(app, "settings") is page
    hosts.table.selectRow([h.name for h in hosts.hosts()].index(name))
    hosts.remove_button.click()
    qtbot.waitUntil(lambda: "stop them first" in hosts.details_label.text(), timeout=WAIT_MS)
    service = app.services.backends.service
    service.stop(service.find(f"tiny-{name}", name), timeout_s=5)
    hosts.table.selectRow([h.name for h in hosts.hosts()].index(name))
    hosts.remove_button.click()
    qtbot.waitUntil(lambda: not _row_of(page, name), timeout=WAIT_MS)
    assert name not in service.hosts


@pytest.mark.journey
def test_a_new_user_sets_up_images_and_hosts_from_settings_and_starts_on_both(
        qtbot: QtBot, launch_app: LaunchApp, machine: AppPaths, *, llama_server_image: str,
        remote_host: RemoteHost, tiny_gguf: TinyGgufFactory) -> None:
    machine.settings_file.unlink()  # a new user: no settings at all
    model = tiny_gguf(filename="tiny.gguf")
    app = launch_app()
    page = open_page(app, "settings")
    assert isinstance(page, SettingsPage)
    _turn_on_host_networking(qtbot, page, machine)
    _choose_image(qtbot, page, machine, llama_server_image)
    _add_host(qtbot, page, "second", remote_host.url)
    snapshot(page.hosts_group, "settings-hosts")
    snapshot(page.engines_group, "settings-engines")

    add_model_folder(qtbot, app, model.parent)
    for host in ("local", "second"):
        _start_on(qtbot, app, host, llama_server_image)
    assert [c.name for c in remote_host.client.containers.list()] == ["rigdeck-tiny-second"]
    _remove_host(qtbot, app, page, "second")
    assert QApplication.activeModalWidget() is None
