"""The Qt binding in use must survive a long run: signals must not leak references."""

import sys

from PySide6.QtCore import QObject, Signal
from pytestqt.qtbot import QtBot


class _Emitter(QObject):
    value = Signal(int)


def test_emitting_signals_keeps_reference_counts(qtbot: QtBot) -> None:
    # PySide6 6.12.0 dropped a reference to True on every emit and aborted after hours.
    emitter = _Emitter()
    received: list[int] = []
    emitter.value.connect(received.append)
    true_before, none_before = sys.getrefcount(True), sys.getrefcount(None)
    for number in range(2000):
        emitter.value.emit(number)
    assert len(received) == 2000
    assert abs(sys.getrefcount(True) - true_before) < 100
    assert abs(sys.getrefcount(None) - none_before) < 100
