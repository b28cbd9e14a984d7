"""Per backend, requests beyond its slots wait their turn, first come first served, in a
queue of bounded length, so a burst from an agent neither overruns llama.cpp's slots nor
grows without bound."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from app.gateway.wire import GatewayError


class SlotQueue:
    """`capacity` requests at once; up to `max_waiting` more wait in arrival order."""

    def __init__(self, capacity: int, max_waiting: int) -> None:
        self.capacity = max(1, capacity)
        self.max_waiting = max_waiting
        self._busy = 0
        self._waiting: deque[object] = deque()
        self._cond = threading.Condition()

    @property
    def busy(self) -> int:
        return self._busy

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @contextmanager
    def slot(self, name: str, timeout_s: float) -> Iterator[None]:
        """Hold a slot for the block.

        Raises:
            GatewayError: 429 when the queue is full, 503 when no slot came in time.
        """
        ticket = object()
        with self._cond:
            if self._busy >= self.capacity or self._waiting:
                if len(self._waiting) >= self.max_waiting:
                    raise GatewayError(429, f"{name} is busy: {self._busy} requests run and "
                                            f"{len(self._waiting)} wait (the queue holds "
                                            f"{self.max_waiting}); try again shortly",
                                       kind="rate_limit_error", code="queue_full")
                self._waiting.append(ticket)
                try:
                    ok = self._cond.wait_for(
                        lambda: self._waiting[0] is ticket and self._busy < self.capacity,
                        timeout_s)
                finally:
                    self._waiting.remove(ticket)
                    self._cond.notify_all()
                if not ok:
                    raise GatewayError(503, f"no slot of {name} came free within "
                                            f"{timeout_s:.0f} s", kind="server_error",
                                       code="queue_timeout")
            self._busy += 1
        try:
            yield
        finally:
            with self._cond:
                self._busy -= 1
                self._cond.notify_all()
