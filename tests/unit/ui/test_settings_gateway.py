"""The Settings page's Gateway group writes each gateway_* setting through the settings
store, refuses an address the CLI refuses (with the same words), and shows changes made
elsewhere."""

from __future__ import annotations

import pytest
from PySide6.QtTest import QTest
from pytestqt.qtbot import QtBot

from app.settings import setting_limits
from ui.services import Services
from ui.settings_gateway import GatewayGroup

WAIT_MS = 10_000


@pytest.fixture
def group(qtbot: QtBot, services: Services) -> GatewayGroup:
    widget = GatewayGroup(services)
    qtbot.add_widget(widget)
    widget.show()
    return widget


def test_each_control_writes_its_setting(qtbot: QtBot, group: GatewayGroup,
                                         services: Services) -> None:
    settings = services.settings
    group.spins["gateway_port"].setValue(9100)
    group.spins["gateway_queue_limit"].setValue(8)
    group.spins["gateway_ram_budget_mib"].setValue(32_768)
    group.timeout_spin.setValue(60)
    group.autostart_box.click()
    assert [settings.get(n) for n in ("gateway_port", "gateway_queue_limit",
                                      "gateway_ram_budget_mib", "gateway_start_timeout_s",
                                      "gateway_autostart")] == [9100, 8, 32_768, 60.0, True]
    assert group.spins["gateway_ram_budget_mib"].minimum() == 0
    assert group.spins["gateway_ram_budget_mib"].specialValueText() == "not checked"
    assert group.timeout_spin.minimum() == setting_limits("gateway_start_timeout_s")[0]

    group.address_edit.clear()
    QTest.keyClicks(group.address_edit, "0.0.0.0")
    group.address_edit.editingFinished.emit()
    qtbot.waitUntil(lambda: settings.get("gateway_address") == "0.0.0.0", timeout=WAIT_MS)


def test_an_address_that_is_not_one_is_refused_beside_the_field(
        qtbot: QtBot, group: GatewayGroup, services: Services) -> None:
    group.address_edit.setText("my-vm")
    group.address_edit.editingFinished.emit()
    qtbot.waitUntil(group.address_note.isVisible, timeout=WAIT_MS)
    assert group.address_note.text().startswith("Not saved: gateway_address: 'my-vm' is not "
                                                "an IP address")
    assert services.settings.get("gateway_address") == "127.0.0.1"
    group.address_edit.setText("127.0.0.2")
    group.address_edit.editingFinished.emit()
    qtbot.waitUntil(lambda: not group.address_note.isVisible(), timeout=WAIT_MS)
    assert services.settings.get("gateway_address") == "127.0.0.2"


def test_a_change_made_elsewhere_is_shown(group: GatewayGroup, services: Services) -> None:
    services.settings.set("gateway_port", 9200)
    services.settings.set("gateway_address", "10.0.2.2")
    services.settings.set("gateway_autostart", True)
    services.settings.set("gateway_start_timeout_s", 90.0)
    assert group.spins["gateway_port"].value() == 9200
    assert group.address_edit.text() == "10.0.2.2"
    assert group.autostart_box.isChecked()
    assert group.timeout_spin.value() == 90.0
