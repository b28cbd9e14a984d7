"""The tray icon as a gauge: a ring filled to the fullest GPU's VRAM use, coloured by the
worst state (grey: no reading, green: fine, amber: close to a limit, red: an alert).

Icons are cached by (state, twentieths of VRAM), so a steady machine never repaints.
"""

from __future__ import annotations

from functools import lru_cache

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPen, QPixmap

from app.telemetry.alerts import Severity

SIZE = 64
COLOURS = {
    Severity.UNKNOWN: "#94a3b8",
    Severity.OK: "#22c55e",
    Severity.WARN: "#f59e0b",
    Severity.ALERT: "#ef4444",
}


def gauge_steps(fraction: float | None) -> int:
    """VRAM use in twentieths (the gauge's resolution); -1 when unknown."""
    if fraction is None:
        return -1
    return max(0, min(20, round(fraction * 20)))


@lru_cache(maxsize=128)
def gauge_icon(severity: Severity, steps: int) -> QIcon:
    """The icon for `severity` with the ring filled `steps`/20 (an empty ring for -1)."""
    pixmap = QPixmap(SIZE, SIZE)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    colour = QColor(COLOURS[severity])
    ring = QRectF(6, 6, SIZE - 12, SIZE - 12)
    track = QColor(colour)
    track.setAlpha(70)
    painter.setPen(QPen(track, 9))
    painter.drawEllipse(ring)
    if steps > 0:
        pen = QPen(colour, 9)
        pen.setCapStyle(Qt.PenCapStyle.FlatCap)
        painter.setPen(pen)
        painter.drawArc(ring, 90 * 16, -int(360 * 16 * steps / 20))
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(colour)
    painter.drawEllipse(QRectF(SIZE / 2 - 9, SIZE / 2 - 9, 18, 18))
    painter.end()
    return QIcon(pixmap)
