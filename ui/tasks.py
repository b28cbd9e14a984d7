"""One task runner for everything that blocks: Docker, disk, HTTP, NVML.

A job runs in a worker thread and never touches a widget; its result (or its error) is
delivered back on the GUI thread. Errors without their own handler go to the notifier,
so every failure reaches the user in one place.
"""

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any, NamedTuple, TypeVar

from PySide6.QtCore import QObject, Signal, Slot

from ui.notifier import Notifier

log = logging.getLogger(__name__)

T = TypeVar("T")


class _GuiThreadCall(QObject):
    """Carries a callable from a worker thread to the thread this object lives in."""

    call = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self.call.connect(self._on_call_call)

    @Slot(object)
    def _on_call_call(self, function: Callable[[], None]) -> None:
        function()


class _Callbacks(NamedTuple):
    description: str
    on_done: Callable[[Any], None] | None
    on_error: Callable[[BaseException], None] | None


class TaskRunner(QObject):
    """Runs blocking jobs in a small pool; `idle` is emitted when none are left."""

    idle = Signal()

    def __init__(self, notifier: Notifier, max_workers: int = 4) -> None:
        super().__init__()
        self._notifier = notifier
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="rigdeck-task")
        self._bridge = _GuiThreadCall()
        self._lock = threading.Lock()
        self._pending = 0
        self._next_id = 0
        # Callbacks stay here, on the GUI side: a worker thread never holds (and so never
        # frees) the last reference to a page captured by on_done/on_error.
        self._callbacks: dict[int, _Callbacks] = {}
        self._closed = False

    @property
    def pending(self) -> int:
        with self._lock:
            return self._pending

    def run(
        self,
        job: Callable[[], T],
        *,
        description: str,
        on_done: Callable[[T], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> "Future[T]":
        """Run `job` off the GUI thread; `on_done`/`on_error` run on the GUI thread.

        `description` names the work in an error message ("Scanning /models"). After
        shutdown nothing runs (a reply that lands while the app quits may ask for more):
        the future comes back cancelled.
        """
        if self._closed:
            log.debug("not running %r: the app is quitting", description)
            dropped: Future[T] = Future()
            dropped.cancel()
            return dropped
        with self._lock:
            self._pending += 1
            self._next_id += 1
            job_id = self._next_id
        self._callbacks[job_id] = _Callbacks(description, on_done, on_error)
        future = self._pool.submit(job)
        future.add_done_callback(partial(self._on_job_finished, job_id))
        return future

    def _on_job_finished(self, job_id: int, future: "Future[Any]") -> None:
        self._bridge.call.emit(partial(self._deliver, job_id, future))

    def _deliver(self, job_id: int, future: "Future[Any]") -> None:
        description, on_done, on_error = self._callbacks.pop(job_id)
        try:
            if future.cancelled():  # never ran: shutdown dropped it from the queue
                return
            error = future.exception()
            if error is None:
                if on_done is not None:
                    on_done(future.result())
            elif on_error is not None:
                on_error(error)
            else:
                self._notifier.error(description, error)
        finally:
            with self._lock:
                self._pending -= 1
                now_idle = self._pending == 0
            if now_idle:
                self.idle.emit()

    def shutdown(self) -> None:
        """Stop taking jobs and wait for running ones (called once at quit)."""
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)
