"""Blocking work runs off the GUI thread; results and errors come back to it."""

import threading

from pytestqt.qtbot import QtBot

from app.errors import UserError
from ui.notifier import Level, Notice
from ui.services import Services


def test_result_is_delivered_on_the_gui_thread(qtbot: QtBot, services: Services) -> None:
    gui_thread = threading.get_ident()
    job_threads: list[int] = []
    results: list[tuple[int, int]] = []

    def job() -> int:
        job_threads.append(threading.get_ident())
        return 42

    with qtbot.wait_signal(services.tasks.idle, timeout=5000):
        services.tasks.run(
            job,
            description="answering",
            on_done=lambda value: results.append((value, threading.get_ident())),
        )

    assert len(job_threads) == 1
    assert job_threads[0] != gui_thread
    assert results == [(42, gui_thread)]


def test_errors_without_a_handler_reach_the_notifier(qtbot: QtBot, services: Services) -> None:
    def failing() -> None:
        raise UserError("port 8080 is already in use")

    with qtbot.wait_signal(services.notifier.posted, timeout=5000) as posted:
        services.tasks.run(failing, description="Starting qwen3")

    notice = posted.args[0]
    assert isinstance(notice, Notice)
    assert notice.level is Level.ERROR
    assert notice.text == "Starting qwen3: port 8080 is already in use"


def test_unexpected_errors_point_to_the_log(qtbot: QtBot, services: Services) -> None:
    def broken() -> None:
        raise ZeroDivisionError("division by zero")

    with qtbot.wait_signal(services.notifier.posted, timeout=5000) as posted:
        services.tasks.run(broken, description="Scanning /models")

    text = posted.args[0].text
    assert text.startswith("Scanning /models failed: division by zero")
    assert str(services.paths.log_file) in text


def test_jobs_dropped_at_shutdown_deliver_nothing(qtbot: QtBot) -> None:
    """Quit while jobs wait in the queue: they never ran, so nothing is delivered and no
    error (a CancelledError from the dropped future) reaches the event loop."""
    from ui.notifier import Notifier
    from ui.tasks import TaskRunner

    notifier = Notifier("log")
    runner = TaskRunner(notifier, max_workers=1)
    release = threading.Event()
    delivered: list[str] = []
    runner.run(release.wait, description="running", on_done=lambda _: delivered.append("ran"))
    runner.run(lambda: "queued", description="queued", on_done=delivered.append)
    threading.Timer(0.2, release.set).start()
    runner.shutdown()
    qtbot.waitUntil(lambda: runner.pending == 0, timeout=5000)

    assert delivered == ["ran"]
    assert notifier.history == []
