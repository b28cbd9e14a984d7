"""Workaround: PySide6 6.12.0 loses references to `True` and `None` from Python code.

Every `Signal.emit()` drops a reference to `True`, and every Python override of a
virtual that returns nothing (a `paint`, an `itemChange`) drops one to `None`. On
CPython 3.11 these are ordinary objects: after a few thousand emits or paints the count
reaches zero and the interpreter aborts ("bool_dealloc" / "none_dealloc"). pyqtgraph
emits and paints on every redraw, so a monitor left running would crash in minutes.

The guard measures both leaks once and, where they exist, pins the reference counts of
`True`, `False` and `None` very high, which is what CPython 3.12+ does for them anyway
(immortal objects). The real fix is a PySide6 release without the leak.
"""

from __future__ import annotations

import ctypes
import logging
import sys
from typing import Any

from PySide6.QtCore import QObject, QRectF, Signal
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QGraphicsItem, QGraphicsObject, QStyleOptionGraphicsItem, QWidget

log = logging.getLogger(__name__)

PINNED = 1 << 40
PROBES = 50
_guarded = False


class _SignalProbe(QObject):
    fired = Signal()


class _ItemProbe(QGraphicsObject):
    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, 1, 1)

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        pass

    def itemChange(self, change: QGraphicsItem.GraphicsItemChange, value: Any) -> Any:
        return super().itemChange(change, value)


def _loss(value: object, action: Any) -> int:
    before = sys.getrefcount(value)
    for _ in range(PROBES):
        action()
    return before - sys.getrefcount(value)


def refcount_leaks() -> dict[str, int]:
    """References lost per `PROBES` emits (to True) and overridden virtual calls (to None)."""
    signal = _SignalProbe()
    item = _ItemProbe()
    return {
        "True": _loss(True, signal.fired.emit),
        "None": _loss(None, lambda: item.setPos(1.0, 1.0)),
    }


def guard_bool_refcounts() -> bool:
    """Apply the workaround where needed (idempotent); True when it is in place."""
    global _guarded  # noqa: PLW0603  (a process-wide, once-only patch)
    if _guarded:
        return True
    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12):
        return False  # these objects are immortal there
    leaks = refcount_leaks()
    if max(leaks.values()) < PROBES // 2:
        return False
    for value in (True, False, None):
        ctypes.c_ssize_t.from_address(id(value)).value += PINNED
    _guarded = True
    log.warning(
        "this PySide6 loses references to True/None (%s per %d calls); their counts are "
        "pinned to keep Rigdeck running. Install a PySide6 without the leak to fix it.",
        leaks,
        PROBES,
    )
    return True
