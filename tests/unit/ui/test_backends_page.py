"""The Backends page with real parts: the host doctor without Docker, a real llama-server
started as a local process from the Start dialog (ready, log that follows, export, stop),
a backend on the real Docker engine restarted, stopped and kept, then removed from its
card next to a container Rigdeck did not start (read-only), and Fit's "Start with this
plan" opening the dialog prefilled."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path, PurePath

import psutil
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QMessageBox, QScrollArea
from pytestqt.qtbot import QtBot

from app.engines.compose import read_compose
from app.engines.plan import LaunchPlan
from app.fit.plan import FitPlan
from app.paths import AppPaths
from app.runtime.backend import Backend, BackendState
from tests.integration.backends_support import chat
from tests.realparts.docker_engine import DockerEngine
from tests.realparts.leak_guard import LeakGuard
from tests.unit.app.fit.reference import need, shared_data
from ui.backend_card import BackendCard
from ui.main_window import MainWindow
from ui.notifier import Level
from ui.pages.backends_page import BackendsPage
from ui.pages.chat_page import ChatPage
from ui.pages.fit_page import ChosenPlan, FitPage
from ui.services import Services

WAIT_MS = 20_000
READY_MS = 180_000
MakeServices = Callable[..., Services]


@pytest.fixture
def make_services(qtbot: QtBot, app_paths: AppPaths, tmp_path: Path,
                  monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeServices]:
    """Services built like the app's, after writing `settings` and choosing the engine."""
    built: list[Services] = []

    def make(settings: str = "", docker_host: str | None = None) -> Services:
        monkeypatch.setenv("DOCKER_HOST", docker_host or f"unix://{tmp_path / 'none.sock'}")
        app_paths.config.mkdir(parents=True, exist_ok=True)
        app_paths.settings_file.write_text(settings, encoding="utf-8")
        services = Services.build(app_paths)
        built.append(services)
        return services

    yield make
    for services in built:
        services.shutdown()


def _page(qtbot: QtBot, services: Services) -> BackendsPage:
    page = BackendsPage(services)
    qtbot.add_widget(page)
    page.resize(1100, 700)
    page.show()
    qtbot.waitUntil(lambda: bool(page.reports), timeout=WAIT_MS)
    return page


def _card(page: BackendsPage, name: str) -> BackendCard | None:
    return next((c for c in page.cards if c.backend.name == name), None)


def _wait_state(qtbot: QtBot, page: BackendsPage, name: str, state: BackendState) -> BackendCard:
    def shown() -> bool:
        card = _card(page, name)
        return card is not None and f"{state}" in card.state_label.text()

    qtbot.waitUntil(shown, timeout=READY_MS)
    card = _card(page, name)
    assert card is not None
    return card


@pytest.mark.usefixtures("no_keyring")
def test_without_docker_the_host_says_what_is_missing_and_how_to_fix_it(
        qtbot: QtBot, make_services: MakeServices, tmp_path: Path) -> None:
    services = make_services(
        f'llama_server_path = "{tmp_path / "no-llama-server"}"\n')
    page = _page(qtbot, services)
    local = page.panels["local"]
    text = local.doctor_label.text()
    assert "Docker engine" in text
    assert "cannot reach the Docker engine at" in text
    assert "Fix: start Docker here" in text
    assert "not checked (the engine does not answer)" in text
    assert "processes" not in page.panels  # no llama-server: nothing can run there
    assert page.cards == []
    # no keyring either: the page says the backends' API keys are not saved
    qtbot.waitUntil(page.key_note.isVisible, timeout=WAIT_MS)
    assert "kept in memory only" in page.key_note.text()
    page.export_button.click()  # nothing to export: says so instead of a file dialog
    assert services.notifier.history[-1].text == "No backends to export: start one first."


def test_a_local_llama_server_started_from_the_dialog_runs_exports_and_stops(
        qtbot: QtBot, *, make_services: MakeServices, llama_server_binary: Path,
        tiny_qwen3_gguf: Path, tmp_path: Path, leak_guard: LeakGuard) -> None:
    services = make_services(
        f'llama_server_path = "{llama_server_binary}"\n')
    services.backends.start()
    page = _page(qtbot, services)
    assert "found at" in page.panels["processes"].doctor_label.text()
    page.start_button.click()
    dialog = page.start_dialog
    assert dialog is not None
    assert dialog.isVisible()
    dialog.model_edit.setText(str(tiny_qwen3_gguf))
    dialog.name_edit.setText("tiny")
    dialog.context_spin.setValue(1024)
    dialog.port_spin.setValue(leak_guard.free_port())
    dialog.host_combo.setCurrentText("processes")
    dialog.accept_button.click()
    card = _wait_state(qtbot, page, "tiny", BackendState.READY)
    assert card in page.panels["processes"].cards
    assert f"port {card.backend.port}" in card.details_label.text()
    pid = int(card.backend.ref)

    card.logs_button.click()
    qtbot.waitUntil(lambda: "listening on" in page.log_view.toPlainText(), timeout=WAIT_MS)
    assert page.log_title.text() == "Log: tiny on processes"
    assert "eval time" not in page.log_view.toPlainText()
    assert chat(card.backend.base_url, card.backend.api_key).status_code == 200
    qtbot.waitUntil(lambda: "eval time" in page.log_view.toPlainText(),  # the log follows
                    timeout=WAIT_MS)

    export = tmp_path / "export"
    page.export_to(export)
    qtbot.waitUntil((export / "launch.sh").exists, timeout=WAIT_MS)
    [plan] = read_compose(export / "docker-compose.yml")
    assert plan == LaunchPlan.from_json(card.backend.plan_json)
    assert plan.context == 1024
    page.export_to(export)  # again: asks before replacing
    qtbot.waitUntil(lambda: page.question is not None and page.question.isVisible(),
                    timeout=WAIT_MS)
    assert page.question is not None
    assert "already holds docker-compose.yml, launch.sh" in page.question.text()
    page.question.button(QMessageBox.StandardButton.Yes).click()
    qtbot.waitUntil(lambda: services.notifier.history[-1].text.startswith("Exported tiny"),
                    timeout=WAIT_MS)

    card.stop_button.click()
    qtbot.waitUntil(lambda: _card(page, "tiny") is None, timeout=WAIT_MS)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_a_docker_backend_restarts_stops_kept_and_goes_beside_a_read_only_container(
        qtbot: QtBot, *, make_services: MakeServices, docker_engine: DockerEngine,
        llama_server_image: str, tiny_qwen3_gguf: Path, leak_guard: LeakGuard) -> None:
    other = docker_engine.client.containers.create(
        llama_server_image, name="someone-elses", labels=leak_guard.labels, command=["--help"])
    try:
        services = make_services(
            f'llamacpp_image = "{llama_server_image}"\nlocal_host_network = true\n',
            docker_engine.base_url)
        services.backends.start()
        page = _page(qtbot, services)
        doctor = page.panels["local"].doctor_label.text()
        assert f"Docker {docker_engine.client.version()['Version']}" in doctor
        qtbot.waitUntil(lambda: "someone-elses" in page.panels["local"].foreign_label.text(),
                        timeout=WAIT_MS)
        assert "Not started by Rigdeck (read-only)" in page.panels["local"].foreign_label.text()

        plan = LaunchPlan(model=str(tiny_qwen3_gguf), name="dock", context=1024,
                          port=leak_guard.free_port(), labels=leak_guard.labels)
        dialog = page.open_start_dialog(plan)
        assert dialog.host() == "local"
        dialog.accept_button.click()
        card = _wait_state(qtbot, page, "dock", BackendState.READY)
        assert card in page.panels["local"].cards
        first_ref = card.backend.ref

        card.restart_button.click()
        qtbot.waitUntil(lambda: (c := _card(page, "dock")) is not None
                        and c.backend.ref != first_ref, timeout=READY_MS)
        card = _wait_state(qtbot, page, "dock", BackendState.READY)
        kept_ref = card.backend.ref
        card.keep_action.trigger()  # Stop ▾ "Stop and keep the container"
        card = _wait_state(qtbot, page, "dock", BackendState.STOPPED)
        for _ in range(2):  # later refreshes see it exited: still stopped, not failed
            with qtbot.waitSignal(services.backends.updated, timeout=WAIT_MS):
                pass
        card = _wait_state(qtbot, page, "dock", BackendState.STOPPED)
        assert card.stop_button.text() == "Remove"
        assert docker_engine.client.containers.get(kept_ref).status == "exited"
        card.stop_button.click()
        qtbot.waitUntil(lambda: _card(page, "dock") is None, timeout=WAIT_MS)
        assert not docker_engine.client.containers.list(all=True, filters={"id": kept_ref})
        assert [e for e in services.notifier.history if e.level is Level.ERROR] == []
    finally:
        other.remove(force=True)


def test_start_with_this_plan_on_fit_opens_the_dialog_prefilled(
        qtbot: QtBot, make_services: MakeServices, tmp_path: Path) -> None:
    services = make_services()
    window = MainWindow(services)
    qtbot.add_widget(window)
    fit, backends = window.pages["fit"], window.pages["backends"]
    assert isinstance(fit, FitPage)
    assert isinstance(backends, BackendsPage)
    window.show_page("fit")
    model = tmp_path / "qwen3-30b-a3b.gguf"
    chosen = ChosenPlan(model, "llamacpp",
                        FitPlan(ctx=16384, parallel=2, cache_type_k="q8_0", cache_type_v="q8_0",
                                experts=4, gpus=(0, 1), n_cpu_moe=6), margin_mib=512)
    fit.plan_started.emit(chosen)

    assert window.current_page == "backends"
    dialog = backends.start_dialog
    assert dialog is not None
    assert dialog.isVisible()
    assert dialog.model_edit.text() == str(model)
    assert dialog.context_spin.value() == 16384
    assert dialog.gpus_edit.text() == "0,1"
    also = dialog.more_label.text()
    for shown in ("parallel 2", "cache_type_k q8_0", "experts 4", "n_cpu_moe 6"):
        assert shown in also
    assert dialog.plan() == LaunchPlan(model=str(model), context=16384, parallel=2,
                                       cache_type_k="q8_0", cache_type_v="q8_0",
                                       flash_attn=True, gpus=("0", "1"), experts=4,
                                       n_cpu_moe=6)
    dialog.reject()


def _shown_backends(qtbot: QtBot, services: Services, page: BackendsPage,
                    backends: list[Backend]) -> None:
    """The page showing `backends` as a refresh of the feed would deliver them."""
    qtbot.waitUntil(lambda: services.tasks.pending == 0, timeout=WAIT_MS)  # first refresh
    services.backends.backends = backends
    services.backends.updated.emit(backends)
    qtbot.waitUntil(lambda: len(page.cards) == len(backends), timeout=WAIT_MS)


def _listed(name: str, host: str, gpus: tuple[str, ...] = (), model: str = "") -> Backend:
    return Backend(name=name, host=host, engine="llamacpp",
                   model=model or f"/models/{name}.gguf", port=8080,
                   endpoint_host="127.0.0.1", ref="1234", gpus=gpus, state=BackendState.READY)


@pytest.mark.usefixtures("no_keyring")
def test_cards_wrap_inside_a_narrow_window_and_long_names_elide(
        qtbot: QtBot, make_services: MakeServices) -> None:
    services = make_services()
    page = _page(qtbot, services)
    area = page.findChild(QScrollArea)
    assert area is not None
    viewport = area.viewport()
    page.resize(560, 700)
    qtbot.waitUntil(lambda: viewport.width() < 560, timeout=WAIT_MS)
    long_model = "/models/" + "Qwen3-30B-A3B-Instruct-2507-UD-Q4_K_XL-" * 3 + ".gguf"
    backends = [_listed("qwen3-30b", "local", ("0",), long_model),
                *(_listed(f"small-{n}", "local", ("0",)) for n in range(3))]
    _shown_backends(qtbot, services, page, backends)
    qtbot.waitUntil(lambda: all(c.isVisible() for c in page.cards), timeout=WAIT_MS)
    # one lane, four cards: on four rows here, not one row running off the right edge
    assert len({c.mapTo(viewport, QPoint(0, 0)).y() for c in page.cards}) == 4
    assert area.horizontalScrollBar().maximum() == 0  # nothing to scroll to sideways
    for card in page.cards:
        left = card.mapTo(viewport, QPoint(0, 0)).x()
        assert left >= 0
        assert left + card.width() <= viewport.width(), card.backend.name
    long_card = page.cards[0]
    assert long_card.model_label.shown_text().endswith(".gguf")
    assert "…" in long_card.model_label.shown_text()  # elided, the whole in its tooltip
    assert long_card.model_label.toolTip() == f"llamacpp · {PurePath(long_model).name}"


@pytest.mark.usefixtures("no_keyring")
def test_a_process_backend_speaks_of_its_process_a_docker_one_of_its_container(
        qtbot: QtBot, make_services: MakeServices) -> None:
    services = make_services()
    page = _page(qtbot, services)
    _shown_backends(qtbot, services, page,
                    [_listed("dock", "local"), _listed("proc", "processes")])
    dock, proc = _card(page, "dock"), _card(page, "proc")
    assert dock is not None
    assert proc is not None
    assert proc in page.panels["processes"].cards
    proc_texts = [proc.keep_action.text(), proc.logs_button.toolTip(),
                  proc.stop_button.toolTip()]
    assert not [t for t in proc_texts if "container" in t]
    assert proc.keep_action.text() == "Stop the process and keep its log"
    assert proc.logs_button.toolTip() == "Show the process's log below"
    assert dock.keep_action.text() == "Stop and keep the container (its log stays)"
    assert dock.stop_button.toolTip() == "Stop the container and remove it"
    proc.backend.set_state(BackendState.STOPPED)
    proc.update_view()
    assert proc.stop_button.toolTip() == "Forget the stopped process and delete its log"


def test_stop_asks_first_while_the_chat_streams_a_reply_from_that_backend(
        qtbot: QtBot, *, make_services: MakeServices, llama_server_binary: Path,
        gemma_gguf: Path, leak_guard: LeakGuard) -> None:
    services = make_services(f'llama_server_path = "{llama_server_binary}"\n')
    services.backends.start()
    page = _page(qtbot, services)
    # a reply that lasts: the Chat page asks up to 4,096 tokens, which the tiny model writes
    # in a second on a quiet machine; Gemma 3 270M takes most of a minute on two cores
    plan = LaunchPlan(model=str(gemma_gguf), name="talk", context=8192, threads=1,
                      port=leak_guard.free_port(), labels=leak_guard.labels,
                      extra_args=("--ignore-eos",))
    dialog = page.open_start_dialog(plan)
    dialog.host_combo.setCurrentText("processes")
    dialog.accept_button.click()
    card = _wait_state(qtbot, page, "talk", BackendState.READY)
    assert not services.chat.streaming_from(card.backend)

    chat = ChatPage(services)
    qtbot.add_widget(chat)
    chat.show()
    try:
        chat.set_endpoint("talk")
        qtbot.waitUntil(lambda: chat.status_label.text().startswith("Ready"), timeout=WAIT_MS)
        chat.send("Tell me a long story")
        qtbot.waitUntil(lambda: bool(chat.message_list.widgets[-1].answer.markdown),
                        timeout=WAIT_MS)
        card.stop_button.click()
        question = page.question
        assert question is not None
        assert question.isVisible()
        assert question.windowModality() == Qt.WindowModality.WindowModal
        assert question.text() == "A chat reply is streaming from talk. Stop it anyway?"
        question.button(QMessageBox.StandardButton.No).click()
        assert chat.controller.running  # No: the reply goes on, the backend runs
        for _ in range(2):
            with qtbot.waitSignal(services.backends.updated, timeout=WAIT_MS):
                pass
        card = _wait_state(qtbot, page, "talk", BackendState.READY)

        with qtbot.waitSignal(chat.controller.finished, timeout=WAIT_MS):
            card.keep_action.trigger()  # the menu's Stop asks too; Yes stops it
            question = page.question
            assert question is not None
            assert question.isVisible()
            question.button(QMessageBox.StandardButton.Yes).click()
        _wait_state(qtbot, page, "talk", BackendState.STOPPED)
        assert not services.chat.streaming_from(card.backend)
    finally:
        chat.stop()
    card = _wait_state(qtbot, page, "talk", BackendState.STOPPED)
    card.stop_button.click()  # Remove: nothing streams, nothing asked
    qtbot.waitUntil(lambda: _card(page, "talk") is None, timeout=WAIT_MS)


def test_a_context_beyond_the_trained_one_starts_with_its_yarn_flags(
        qtbot: QtBot, make_services: MakeServices) -> None:
    """Fit at 90,000 tokens on a model trained at 40,960 → Start: the plan carries the
    RoPE scaling flags the Fit page showed."""
    services = make_services()
    window = MainWindow(services)
    qtbot.add_widget(window)
    fit, backends = window.pages["fit"], window.pages["backends"]
    assert isinstance(fit, FitPage)
    assert isinstance(backends, BackendsPage)
    window.show_page("fit")
    session = fit.session
    session.choose_path(need(shared_data() / "gguf-headers" / "moe30.header.gguf"))
    qtbot.waitUntil(lambda: fit.estimate is not None, timeout=30_000)
    session.update_plan(ctx=90_000)
    advice = session.context_advice
    assert advice is not None
    assert advice.flags[:2] == ("--rope-scaling", "yarn")
    chosen = session.chosen()
    assert chosen is not None
    fit.plan_started.emit(chosen)
    dialog = backends.start_dialog
    assert dialog is not None
    assert dialog.plan().extra_args[-len(advice.flags):] == advice.flags
    assert "--yarn-orig-ctx" in dialog.more_label.text()
    dialog.reject()
