"""Runs a reply's stream in a worker and paints it at screen rate.

The worker (the task runner's pool) iterates the HTTP stream and stores each piece; the
GUI thread never waits on it. A QTimer at about 60 Hz reads the totals the stream keeps
and repaints once per frame, however many tokens came in between, so 2,000 tokens at full
speed are 30 or so repaints, not 2,000.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, QTimer, Signal

from app.chat.session import ReplyRun, TurnResult
from ui.tasks import TaskRunner

log = logging.getLogger(__name__)

FRAME_MS = 16


class ReplyStreamController(QObject):
    """One reply at a time: `frame(answer, reasoning, reasoning_tokens)` while it streams,
    then `finished(TurnResult)` (or `failed(str)` for a bug, not a server error)."""

    frame = Signal(str, str, int)
    finished = Signal(object)
    failed = Signal(str)

    def __init__(self, tasks: TaskRunner) -> None:
        super().__init__()
        self._tasks = tasks
        self._run: ReplyRun | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(FRAME_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._painted: tuple[int, int] = (0, 0)

    @property
    def running(self) -> bool:
        return self._run is not None

    def start(self, run: ReplyRun) -> None:
        if self._run is not None:
            raise RuntimeError("a reply is already streaming")
        self._run = run
        self._painted = (0, 0)
        self._timer.start()
        self._tasks.run(run.run, description="Streaming the reply",
                        on_done=self._on_run_done, on_error=self._on_run_error)

    def stop(self) -> None:
        """Ask the stream to end; `finished` follows with the reply marked stopped."""
        if self._run is not None:
            self._run.cancel()

    def _on_timer_timeout(self) -> None:
        run = self._run
        if run is None:
            return
        text = run.stream.text
        answer, reasoning = text.answer, text.reasoning
        if (len(answer), len(reasoning)) == self._painted:
            return
        self._painted = (len(answer), len(reasoning))
        self.frame.emit(answer, reasoning, run.stream.reply.reasoning_tokens)

    def _on_run_done(self, result: TurnResult) -> None:
        self._timer.stop()
        self._run = None
        self.finished.emit(result)

    def _on_run_error(self, error: BaseException) -> None:
        self._timer.stop()
        self._run = None
        log.error("the reply stream failed", exc_info=error)
        self.failed.emit(f"{type(error).__name__}: {error}")
