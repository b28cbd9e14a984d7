"""The Gateway page with the app's real Gateway on a real loopback port: the switch, the
URL and its Copy, the errors a start can end in (a port taken, an address beyond this
computer without a key), keys in a working keyring, the model ids of a saved plan with
its idle stop and on-demand start written back, and the live requests and usage as the
Gateway's events (from its own threads) report them.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QMessageBox, QSpinBox
from pytestqt.qtbot import QtBot

from app.engines.plan import LaunchPlan
from app.gateway.records import RequestRecord
from app.paths import AppPaths
from app.runtime.saved_plans import SavedPlans
from app.settings import setting_place
from tests.realparts.process_keyring import ProcessKeyring
from ui.gateway_tables import (
    LIVE_ROWS,
    ON_DEMAND_COLUMN,
    TTL_COLUMN,
    RequestsTableModel,
)
from ui.pages.gateway_page import GatewayPage
from ui.services import Services

WAIT_MS = 15_000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def page(qtbot: QtBot, services: Services) -> Iterator[GatewayPage]:
    services.settings.set("gateway_port", free_port())
    widget = GatewayPage(services, lambda: None)
    qtbot.add_widget(widget)
    widget.resize(1100, 760)
    widget.show()
    qtbot.wait_exposed(widget)
    yield widget
    qtbot.waitUntil(lambda: services.tasks.pending == 0, timeout=WAIT_MS)


def from_a_thread(emit: object, record: RequestRecord) -> None:
    """Emit as the Gateway does: on a request's own thread."""
    assert callable(emit)
    thread = threading.Thread(target=emit, args=(record,))
    thread.start()
    thread.join()


# ------------------------------------------------------------------ on / off
def test_the_switch_serves_at_the_url_shown_then_stops(qtbot: QtBot, page: GatewayPage,
                                                        services: Services) -> None:
    port = services.settings.get("gateway_port")
    url = f"http://127.0.0.1:{port}/v1"
    assert page.url_edit.text() == url
    assert page.status_label.text().startswith("Off")
    assert not page.warning_label.isVisible()

    with qtbot.wait_signal(services.gateway.state_changed, timeout=WAIT_MS):
        page.switch.click()
    qtbot.waitUntil(lambda: page.status_label.text().startswith("On"), timeout=WAIT_MS)
    assert page.switch.isChecked()
    assert page.switch.isEnabled()
    assert page.url_edit.text() == url
    assert url in page.status_label.text()
    with httpx.Client(trust_env=False, timeout=10) as client:  # no key exists: loopback is let in
        assert client.get(f"{url}/models").json() == {"object": "list", "data": []}
    page.copy_button.click()
    assert QGuiApplication.clipboard().text() == url

    with qtbot.wait_signal(services.gateway.state_changed, timeout=WAIT_MS) as stopped:
        page.switch.click()
    assert stopped.args == [""]
    qtbot.waitUntil(lambda: page.status_label.text().startswith("Off"), timeout=WAIT_MS)
    assert not page.switch.isChecked()
    with pytest.raises(httpx.ConnectError), httpx.Client(trust_env=False) as client:
        client.get(f"{url}/models")


def test_a_port_taken_says_so_and_names_the_port_setting(qtbot: QtBot, page: GatewayPage,
                                                         services: Services) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        services.settings.set("gateway_port", taken.getsockname()[1])
        with qtbot.wait_signal(services.gateway.start_failed, timeout=WAIT_MS):
            page.switch.click()
    text = page.status_label.text()
    assert text.startswith("Not started: the Gateway cannot listen on 127.0.0.1:")
    assert setting_place("gateway_port") in text
    assert not page.switch.isChecked()
    assert page.switch.isEnabled()
    assert not services.gateway.gateway.serving


def test_an_address_beyond_loopback_warns_and_needs_a_key_first(
        qtbot: QtBot, page: GatewayPage, services: Services) -> None:
    services.settings.set("gateway_address", "0.0.0.0")
    assert page.warning_label.isVisible()
    assert "lets other machines in" in page.warning_label.text()
    assert setting_place("gateway_address") in page.warning_label.text()
    assert page.url_edit.text().startswith("http://0.0.0.0:")
    with qtbot.wait_signal(services.gateway.start_failed, timeout=WAIT_MS):
        page.switch.click()
    assert "create a gateway key first" in page.status_label.text()
    assert page.create_key_button.text().startswith("Create key")  # the control it names
    assert not services.gateway.gateway.serving


def test_the_gateway_starts_with_rigdeck_when_set_and_stops_at_shutdown(
        qtbot: QtBot, services: Services) -> None:
    services.settings.set("gateway_port", free_port())
    services.settings.set("gateway_autostart", True)
    with qtbot.wait_signal(services.gateway.state_changed, timeout=WAIT_MS) as started:
        services.gateway.start_at_launch()
    assert started.args == [services.gateway.configured_url()]
    # the fixture's shutdown stops it: no gateway thread is left behind (conftest checks)


# ------------------------------------------------------------------ keys
def test_a_key_is_created_shown_once_listed_and_revoked_after_a_yes(
        qtbot: QtBot, page: GatewayPage, services: Services,
        working_keyring: ProcessKeyring) -> None:
    qtbot.waitUntil(lambda: page.keys_note.text().startswith("No keys"), timeout=WAIT_MS)
    page.create_key_button.click()
    dialog = page.key_name_dialog
    assert dialog is not None
    assert dialog.isVisible()
    dialog.setTextValue("n8n")
    dialog.accept()
    qtbot.waitUntil(lambda: page.new_key_dialog is not None
                    and page.new_key_dialog.isVisible(), timeout=WAIT_MS)
    assert page.new_key_dialog is not None
    key = page.new_key_dialog.key_edit.text()
    assert key.startswith("rdk-")
    page.new_key_dialog.copy_button.click()
    assert QGuiApplication.clipboard().text() == key
    page.new_key_dialog.reject()
    qtbot.waitUntil(lambda: page.keys.rowCount() == 1, timeout=WAIT_MS)
    name, created, hint = page.keys.texts(0)
    assert (name, hint) == ("n8n", f"…{key[-4:]}")
    assert created[:2] == "20"
    assert key not in " ".join(page.keys.texts(0))
    assert services.gateway.gateway.keys.check(key) == "n8n"

    assert not page.revoke_button.isEnabled()
    assert not page.copy_key_button.isEnabled()
    page.keys_view.selectRow(0)
    assert page.revoke_button.isEnabled()
    QGuiApplication.clipboard().setText("")
    page.copy_key_button.click()  # later: the key again, from the keyring
    qtbot.waitUntil(lambda: page.copy_key_button.text() == "Copied", timeout=WAIT_MS)
    assert QGuiApplication.clipboard().text() == key
    page.revoke_button.click()
    question = page.revoke_question
    assert question is not None
    assert question.text().startswith("Programs that use n8n")
    question.button(QMessageBox.StandardButton.No).click()
    assert page.keys.rowCount() == 1
    page.revoke_button.click()
    question = page.revoke_question
    assert question is not None
    question.button(QMessageBox.StandardButton.Yes).click()
    qtbot.waitUntil(lambda: page.keys.rowCount() == 0, timeout=WAIT_MS)
    assert services.gateway.gateway.keys.check(key) is None


def test_a_key_without_a_keyring_says_why(qtbot: QtBot, page: GatewayPage,
                                          no_keyring: None) -> None:
    page.create_key_button.click()
    assert page.key_name_dialog is not None
    page.key_name_dialog.setTextValue("n8n")
    page.key_name_dialog.accept()
    qtbot.waitUntil(lambda: "keyring" in page.keys_note.text(), timeout=WAIT_MS)
    assert page.new_key_dialog is None
    assert page.keys.rowCount() == 0


# ------------------------------------------------------------------ model ids
@pytest.fixture
def saved_plan(app_paths: AppPaths) -> SavedPlans:
    """A backend started earlier (its plan kept); the built-in roles (a prompt and
    sampling each, no adapter) are served by any base."""
    plans = SavedPlans(app_paths.config / "saved_plans.toml")
    plans.remember("tiny", "local", LaunchPlan(model="/models/tiny.gguf", name="tiny"))
    return plans


def ids(page: GatewayPage) -> list[str]:
    return [page.models.texts(r)[0] for r in range(page.models.rowCount())]


def test_a_saved_plan_is_listed_and_its_idle_stop_and_on_demand_are_written(
        qtbot: QtBot, saved_plan: SavedPlans, page: GatewayPage) -> None:
    qtbot.waitUntil(lambda: page.models.rowCount() > 1, timeout=WAIT_MS)
    assert ids(page) == ["tiny", "sports-coach", "physics-tutor", "coder"]
    assert page.models.texts(0)[:7] == ["tiny", "tiny.gguf", "—", "tiny", "local",
                                        "on demand", "never"]
    assert page.models.texts(3)[:7] == ["coder", "tiny.gguf", "Coder", "tiny", "local",
                                        "on demand", ""]
    ttl, demand = page.models.index(0, TTL_COLUMN), page.models.index(0, ON_DEMAND_COLUMN)
    assert demand.data(Qt.ItemDataRole.CheckStateRole) == Qt.CheckState.Checked
    assert page.models.index(1, TTL_COLUMN).flags() & Qt.ItemFlag.ItemIsEditable \
        == Qt.ItemFlag.NoItemFlags  # a role shares its backend's
    assert ttl.flags() & Qt.ItemFlag.ItemIsEditable

    page.models_view.edit(ttl)  # what a double-click opens: seconds, 0 "never"
    [editor] = page.models_view.viewport().findChildren(QSpinBox)
    assert editor.specialValueText() == "never"
    editor.setValue(600)
    QTest.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: saved_plan.get("tiny").ttl_s == 600, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: page.models.texts(0)[TTL_COLUMN] == "10 min", timeout=WAIT_MS)

    assert page.models.setData(demand, Qt.CheckState.Unchecked.value,
                               Qt.ItemDataRole.CheckStateRole)
    qtbot.waitUntil(lambda: not saved_plan.get("tiny").on_demand, timeout=WAIT_MS)
    # not started on demand: still listed (to switch it back on), its roles no longer are
    qtbot.waitUntil(lambda: ids(page) == ["tiny"], timeout=WAIT_MS)
    assert page.models.texts(0)[5] == "stopped (not started on demand)"
    assert page.models.setData(page.models.index(0, ON_DEMAND_COLUMN),
                               Qt.CheckState.Checked.value, Qt.ItemDataRole.CheckStateRole)
    qtbot.waitUntil(lambda: page.models.rowCount() == 4, timeout=WAIT_MS)
    assert saved_plan.get("tiny").on_demand


# ------------------------------------------------------------------ requests and usage
def record_of(model: str, role: str | None) -> RequestRecord:
    return RequestRecord(client="n8n", peer="127.0.0.1", path="/v1/chat/completions",
                         model=model, stream=True, role=role, backend="tiny", host="local")


def test_requests_arrive_newest_first_and_usage_follows(
        qtbot: QtBot, page: GatewayPage, services: Services) -> None:
    gateway = services.gateway.gateway
    first, second = record_of("tiny", None), record_of("coach", "Coach")
    for record in (first, second):
        gateway.records.begin(record)
        from_a_thread(gateway.request_started.emit, record)
    qtbot.waitUntil(lambda: page.requests.rowCount() == 2, timeout=WAIT_MS)
    assert page.requests.texts(0)[1:5] == ["n8n", "coach", "Coach", "tiny"]
    assert page.requests.texts(0)[-1] == "running…"

    second.status, second.outcome = 200, "ok"
    second.prompt_tokens, second.completion_tokens = 12, 8
    second.ttft_s, second.tokens_per_s = 0.042, 95.5
    gateway.records.finish(second)
    first.status, first.outcome = 502, "the backend went away mid-stream"
    gateway.records.finish(first)
    from_a_thread(gateway.request_finished.emit, second)
    from_a_thread(gateway.request_finished.emit, first)
    qtbot.waitUntil(lambda: page.requests.texts(0)[-1] == "ok", timeout=WAIT_MS)
    assert page.requests.texts(0)[5:] == ["12 → 8", "42", "95.5", "ok"]
    assert page.requests.texts(1)[-1] == "502: the backend went away mid-stream"
    assert page.requests.index(1, 8).data(Qt.ItemDataRole.ForegroundRole) is not None
    qtbot.waitUntil(lambda: page.usage.rowCount() == 2, timeout=WAIT_MS)
    assert sorted(page.usage.texts(r) for r in range(2)) == [
        ["n8n", "Coach", "1", "0", "12", "8"], ["n8n", "—", "1", "1", "0", "0"]]

    again = GatewayPage(services, lambda: None)  # a page built later shows this run's
    qtbot.add_widget(again)
    assert [again.requests.texts(r)[2] for r in range(2)] == ["coach", "tiny"]


def test_the_live_table_is_bounded(qtmodeltester: object) -> None:
    table = RequestsTableModel()
    qtmodeltester.check(table, force_py=True)  # type: ignore[attr-defined]
    for number in range(LIVE_ROWS + 5):
        table.add(record_of(f"m{number}", None))
    assert table.rowCount() == LIVE_ROWS
    assert table.texts(0)[2] == f"m{LIVE_ROWS + 4}"


def test_qt_model_tester_passes(qtbot: QtBot, saved_plan: SavedPlans, page: GatewayPage, *,
                                services: Services, working_keyring: ProcessKeyring,
                                qtmodeltester: object) -> None:
    services.gateway.create_key("pytest", lambda _key: None,
                                lambda error: pytest.fail(str(error)))
    record = record_of("tiny", None)
    record.status, record.outcome = 200, "ok"
    services.gateway.gateway.records.finish(record)
    from_a_thread(services.gateway.gateway.request_finished.emit, record)
    qtbot.waitUntil(lambda: [page.models.rowCount(), page.keys.rowCount(),
                             page.requests.rowCount(), page.usage.rowCount()] == [4, 1, 1, 1],
                    timeout=WAIT_MS)
    for model in (page.models, page.keys, page.requests, page.usage):
        qtmodeltester.check(model)  # type: ignore[attr-defined]


def test_requests_of_earlier_runs_are_shown_below_this_run_s(
        qtbot: QtBot, page: GatewayPage, services: Services) -> None:
    gateway = services.gateway.gateway
    earlier = record_of("tutor", "Tutor")
    earlier.started -= 3600
    earlier.status, earlier.outcome = 200, "ok"
    gateway.records.finish(earlier)  # in the history only, as after a restart
    now = record_of("tiny", None)
    gateway.records.begin(now)
    later = GatewayPage(services, lambda: None)
    qtbot.add_widget(later)
    qtbot.waitUntil(lambda: later.requests.rowCount() == 2, timeout=WAIT_MS)
    assert [later.requests.texts(r)[2] for r in range(2)] == ["tiny", "tutor"]
    assert later.requests.texts(1)[-1] == "ok"
    del page  # it set the port and waits for the runner at its end
