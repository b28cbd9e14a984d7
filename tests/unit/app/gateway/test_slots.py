"""A backend's slots: requests beyond them wait in arrival order; past the queue's length
they are refused with 429."""

from __future__ import annotations

import threading
import time

import pytest

from app.gateway.slots import SlotQueue
from app.gateway.wire import GatewayError


def test_waiting_requests_get_their_slot_in_the_order_they_came() -> None:
    queue = SlotQueue(1, max_waiting=5)
    order: list[int] = []
    release = threading.Event()

    def holder() -> None:
        with queue.slot("qwen", 10):
            release.wait(10)

    def waiter(number: int) -> None:
        with queue.slot("qwen", 10):
            order.append(number)

    first = threading.Thread(target=holder)
    first.start()
    while queue.busy == 0:
        time.sleep(0.001)
    waiters = []
    for number in range(4):
        thread = threading.Thread(target=waiter, args=(number,))
        thread.start()
        waiters.append(thread)
        while queue.waiting < number + 1:
            time.sleep(0.001)
    release.set()
    for thread in [first, *waiters]:
        thread.join(10)
    assert order == [0, 1, 2, 3]


def test_a_full_queue_answers_429_and_a_long_wait_503() -> None:
    queue = SlotQueue(1, max_waiting=0)
    with queue.slot("qwen", 1), pytest.raises(GatewayError) as full, queue.slot("qwen", 1):
        pass
    assert full.value.status == 429
    assert "qwen is busy" in full.value.message
    patient = SlotQueue(1, max_waiting=1)
    with patient.slot("qwen", 1), pytest.raises(GatewayError) as late, \
            patient.slot("qwen", 0.05):
        pass
    assert late.value.status == 503
    assert patient.waiting == 0
