"""Stacked memory bars: what one device (a GPU or the host) will hold, against its capacity.

A bar is painted, not built from child widgets, so a slider move costs one repaint. The
numbers the user reads are also in the bar's labels (title, legend), which tests read.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from app.fit.plan import DeviceMemory
from app.fit.planner import HostNeed

log = logging.getLogger(__name__)

SEGMENTS: tuple[tuple[str, str, str], ...] = (
    ("weights_mib", "weights", "#3b82f6"),
    ("kv_mib", "KV cache", "#f59e0b"),
    ("compute_mib", "compute", "#a855f7"),
    ("output_mib", "output", "#14b8a6"),
    ("overhead_mib", "runtime", "#94a3b8"),
)
"""(DeviceMemory attribute, legend name, colour) in the order they are stacked."""
OVERFLOW_COLOUR = "#dc2626"
MARGIN_COLOUR = "#fca5a5"


def mib(value: float) -> str:
    """MiB with thousands separators, the unit the engines print."""
    return f"{value:,.0f} MiB"


class StackedBarWidget(QWidget):
    """The painted bar: coloured segments, the margin before capacity, overflow in red."""

    def __init__(self) -> None:
        super().__init__()
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumWidth(200)
        self._parts: list[tuple[float, str]] = []
        self._capacity: float | None = None
        self._margin = 0.0

    def sizeHint(self) -> QSize:
        return QSize(400, 22)

    def minimumSizeHint(self) -> QSize:
        return QSize(200, 22)

    def set_values(
        self, parts: list[tuple[float, str]], capacity: float | None, margin: float
    ) -> None:
        self._parts = parts
        self._capacity = capacity
        self._margin = margin
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        rect = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        total = sum(v for v, _ in self._parts)
        scale_max = max(self._capacity or 0.0, total, 1.0)
        width = rect.width()
        painter.fillRect(rect, self.palette().color(QPalette.ColorRole.Base))
        x = rect.left()
        for value, colour in self._parts:
            w = width * value / scale_max
            if w > 0:
                painter.fillRect(QRectF(x, rect.top(), max(w, 1.0), rect.height()), QColor(colour))
            x += w
        if self._capacity:
            cap_x = rect.left() + width * self._capacity / scale_max
            if self._margin > 0:
                m_x = rect.left() + width * max(self._capacity - self._margin, 0) / scale_max
                if m_x < cap_x:
                    painter.fillRect(
                        QRectF(m_x, rect.top(), cap_x - m_x, rect.height()),
                        QColor(MARGIN_COLOUR),
                    )
            if total > self._capacity:
                painter.fillRect(
                    QRectF(cap_x, rect.top(), rect.right() - cap_x, rect.height()),
                    QColor(OVERFLOW_COLOUR),
                )
            painter.setPen(QPen(self.palette().color(QPalette.ColorRole.Text), 2))
            painter.drawLine(int(cap_x), int(rect.top()), int(cap_x), int(rect.bottom()))
        painter.setPen(self.palette().color(QPalette.ColorRole.Mid))
        painter.drawRect(rect)
        painter.end()


class DeviceBarWidget(QWidget):
    """One device: a title with its total against capacity, the bar, and the legend in MiB.

    `capacity` None means the device has no limit the plan must respect (shown as use only).
    """

    def __init__(self, name: str, fixed_title: bool = False) -> None:
        super().__init__()
        self._title = name if fixed_title else None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 4)
        layout.setSpacing(3)
        head = QHBoxLayout()
        self.title_label = QLabel(name)
        font = self.title_label.font()
        font.setBold(True)
        self.title_label.setFont(font)
        self.status_label = QLabel()
        self.status_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        head.addWidget(self.title_label)
        head.addStretch(1)
        head.addWidget(self.status_label)
        layout.addLayout(head)
        self.bar = StackedBarWidget()
        layout.addWidget(self.bar)
        self.legend_label = QLabel()
        self.legend_label.setTextFormat(Qt.TextFormat.RichText)
        self.legend_label.setWordWrap(True)
        layout.addWidget(self.legend_label)
        self.device: DeviceMemory | None = None
        self.capacity: float | None = None
        self.margin = 0.0

    @property
    def free_mib(self) -> float | None:
        """Capacity less use (negative: over); None without a capacity."""
        if self.device is None or self.capacity is None:
            return None
        return self.capacity - self.device.total_mib

    def show_device(
        self, device: DeviceMemory, capacity: float | None, margin: float = 0.0
    ) -> None:
        self.device, self.capacity, self.margin = device, capacity, margin
        if self._title is None:
            self.title_label.setText(device.name)
        parts = [(float(getattr(device, attr)), colour) for attr, _, colour in SEGMENTS]
        self.bar.set_values(parts, capacity, margin)
        total = device.total_mib
        if capacity is None:
            self.status_label.setText(mib(total))
            self.status_label.setStyleSheet("")
        else:
            free = capacity - total
            if free >= margin:
                text, colour = f"{mib(total)} of {mib(capacity)} · {mib(free)} free", "#15803d"
            elif free >= 0:
                text = f"{mib(total)} of {mib(capacity)} · only {mib(free)} free"
                text += f" (margin {mib(margin)})"
                colour = "#b45309"
            else:
                text, colour = f"{mib(total)} of {mib(capacity)} · over by {mib(-free)}", "#b91c1c"
            self.status_label.setText(text)
            self.status_label.setStyleSheet(f"color: {colour}; font-weight: bold;")
        self.legend_label.setText(
            " &nbsp; ".join(
                f'<span style="color:{colour}">■</span> {name} {getattr(device, attr):,.0f}'
                for attr, name, colour in SEGMENTS
                if getattr(device, attr) > 0 or attr == "weights_mib"
            )
        )

    def show_host(self, device: DeviceMemory, need: HostNeed | None) -> None:
        """The host: what the plan needs of its RAM against the total and what is available
        now (the part in use by others drawn as the margin), and what it holds by kind."""
        ram = need.ram if need is not None else None
        if ram is None:
            self.show_device(device, None)
        else:
            self.show_device(device, ram.total_mib, ram.total_mib - ram.room_mib)
            total, room = device.total_mib, ram.room_mib
            if need is not None and need.fits:
                text = f"{mib(total)} of {mib(ram.total_mib)} · {mib(room - total)} to spare"
                colour = "#15803d"
            else:
                text = f"needs {mib(total)} of {mib(ram.total_mib)}"
                colour = "#b91c1c"
            if ram.available_mib is not None:
                text += f" ({mib(ram.available_mib)} available now)"
            self.status_label.setText(text)
            self.status_label.setStyleSheet(f"color: {colour}; font-weight: bold;")
        if need is not None:
            lines = need.lines()
            shown = [f'<span style="color:#b91c1c">{t}</span>' if "from disk" in t else t
                     for t in lines]
            self.legend_label.setText(f"{self.legend_label.text()}<br>{' · '.join(shown)}")
            self.legend_label.setToolTip("\n".join(lines))

    def legend_values(self) -> dict[str, float]:
        """The MiB of each segment as the legend shows them, for tests and tooltips."""
        if self.device is None:
            return {}
        return {name: round(float(getattr(self.device, attr))) for attr, name, _ in SEGMENTS}
