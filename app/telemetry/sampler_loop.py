"""One worker samples on a drift-free schedule (`next += interval`); the latest snapshot wins.

The loop never queues: if a step overran its slot, the missed slots are skipped rather
than run back to back. `stop()` wakes the worker at once and joins it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)


class Stopper(Protocol):
    """What the schedule needs of a `threading.Event`."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


def run_schedule(
    step: Callable[[float], None],
    interval: Callable[[], float],
    stop: Stopper,
    *,
    clock: Callable[[], float] = time.monotonic,
    deadline: float | None = None,
) -> None:
    """Call `step(now)` every `interval()` seconds until `stop` is set or `deadline` passes.

    `interval` is read on every turn, so a settings change applies from the next sample.
    """
    next_at = clock()
    while not stop.is_set():
        now = clock()
        if deadline is not None and now >= deadline:
            return
        step(now)
        period = max(interval(), 0.01)
        next_at += period
        now = clock()
        if next_at < now:  # overran: skip the slots already missed, keep the phase
            missed = int((now - next_at) / period) + 1
            next_at += missed * period
            log.debug("sampling fell behind; skipped %d slot(s)", missed)
        wait = next_at - now
        if deadline is not None:
            wait = min(wait, max(0.0, deadline - now))
        stop.wait(wait)


class SamplerLoop:
    """The sampling thread around `run_schedule`; start once, stop once."""

    def __init__(
        self,
        step: Callable[[float], None],
        interval_s: float,
        name: str,
        *,
        before: Callable[[], None] | None = None,
        after: Callable[[], None] | None = None,
    ) -> None:
        self._step = step
        self._before = before
        self._after = after
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        """`before` and `after` run in this thread too (NVML starts and stops here)."""
        try:
            if self._before is not None:
                self._before()
            run_schedule(self._step, lambda: self.interval_s, self._stop)
        except Exception:  # the app must keep running without a monitor
            log.exception("the sampling loop stopped on an error")
        finally:
            if self._after is not None:
                try:
                    self._after()
                except Exception:
                    log.exception("the sampling loop could not clean up")

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the worker to finish its current step and wait for it."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("the sampling thread did not stop within %.0f s", timeout)
