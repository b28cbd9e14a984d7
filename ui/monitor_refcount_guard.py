"""Workaround: PySide6 6.12.0 drops a reference to `True` on every `Signal.emit()`.

On CPython 3.11 `True` is an ordinary object, so after a few thousand emits its count
reaches zero and the interpreter aborts ("bool_dealloc: deallocating True or False").
The monitor emits per sample and pyqtgraph emits per redraw, so a long run would crash
within minutes. The guard measures the leak once and, if it is there, pins the counts
of `True` and `False` very high (what CPython 3.12+ does for every bool: immortal).
The real fix is a PySide6 release without the leak; see the report of issue 6.
"""

from __future__ import annotations

import ctypes
import logging
import sys

from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)

PINNED = 1 << 40
_guarded = False


class _Probe(QObject):
    fired = Signal()


def emit_leaks_true() -> bool:
    """Whether emitting a Qt signal from Python loses references to `True`."""
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(50):
        probe.fired.emit()
    return sys.getrefcount(True) < before - 25


def guard_bool_refcounts() -> bool:
    """Apply the workaround where needed (idempotent); True when it was applied."""
    global _guarded  # noqa: PLW0603  (a process-wide, once-only patch)
    if _guarded:
        return True
    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12):
        return False  # bools are immortal there
    if not emit_leaks_true():
        return False
    for value in (True, False):
        count = ctypes.c_ssize_t.from_address(id(value))
        count.value += PINNED
    _guarded = True
    log.warning(
        "this PySide6 leaks a reference to True on every signal; bool counts pinned "
        "to keep the app running (upgrade or downgrade PySide6 to fix it properly)"
    )
    return True
