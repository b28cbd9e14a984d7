"""The Monitor page's panels: one per GPU (VRAM by backend, temperature, power, utilisation)
and one for the host (RAM, CPU). Each panel redraws from the history with `setData`.

Panels never read a device: they take a `Window` of the history and the latest
snapshot. Values are drawn as lines; a decimated range (1 h, 24 h) adds a faint band
from the bucket minimum to maximum, so peaks stay visible.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QFrame, QLabel, QSizePolicy, QVBoxLayout, QWidget

from app.telemetry.attribution import OTHER
from app.telemetry.history import History, Window
from app.telemetry.metrics import gpu_key, host_key, vram_key
from app.telemetry.snapshot import GpuReading, HostReading, Snapshot

GIB = 1024.0
INVISIBLE = pg.mkPen(0, 0, 0, 0)
LAYER_COLOURS = ("#3b82f6", "#10b981", "#f59e0b", "#a855f7", "#ef4444", "#14b8a6", "#ec4899")
OTHER_COLOUR = "#94a3b8"
LINE = {
    "temp": "#f97316",
    "power": "#eab308",
    "gpu": "#3b82f6",
    "mem": "#a855f7",
    "ram": "#10b981",
    "swap": "#ef4444",
    "cpu": "#3b82f6",
    "cpu_max": "#94a3b8",
}


def _nanmax(values: npt.NDArray[np.float32]) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.max()) if finite.size else None


def _last(values: npt.NDArray[np.float32]) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite[-1]) if finite.size else None


def _fmt(value: float | None, unit: str, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f} {unit}"


class BandCurve:
    """A line with an optional min-max band (shown for decimated ranges)."""

    def __init__(self, plot: pg.PlotItem, colour: str, name: str | None = None) -> None:
        self.line = plot.plot(pen=pg.mkPen(colour, width=1.6), name=name, connect="finite")
        # an invisible pen, not None: a curve without a pen keeps no path to fill between
        self.low = pg.PlotDataItem(pen=INVISIBLE)
        self.high = pg.PlotDataItem(pen=INVISIBLE)
        band = QColor(colour)
        band.setAlpha(50)
        self.band = pg.FillBetweenItem(self.low, self.high, brush=pg.mkBrush(band))
        plot.addItem(self.band)
        for item in (self.line, self.low, self.high):
            item.setDownsampling(auto=True, method="peak")
            item.setClipToView(True)

    def set_data(
        self,
        t: npt.NDArray[np.float64],
        mean: npt.NDArray[np.float32],
        low: npt.NDArray[np.float32],
        high: npt.NDArray[np.float32],
        decimated: bool,
    ) -> None:
        self.line.setData(t, mean)
        self.band.setVisible(decimated)
        if decimated:
            self.low.setData(t, np.nan_to_num(low, nan=0.0))
            self.high.setData(t, np.nan_to_num(high, nan=0.0))

    def values(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """What is drawn (for the hover readout and for tests)."""
        x, y = self.line.getData()
        if x is None or y is None:
            return np.zeros(0), np.zeros(0)
        return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600)


class AgoAxis(pg.AxisItem):  # type: ignore[misc]  # pyqtgraph ships no type information
    """A time axis in seconds before now ("-30 s", "-10 min", "-6 h").

    The plots keep a fixed x range ending at 0 and move the data instead, so the axes
    never change while the graphs scroll: no tick regeneration or axis repaint per
    sample (shifting a date axis every second cost several times the whole redraw).
    """

    def tickSpacing(
        self, min_value: float, max_value: float, size: float
    ) -> list[tuple[float, float]]:
        span = max_value - min_value
        wanted = max(2.0, size / 90.0)
        step = next((s for s in TICK_STEPS if span / s <= wanted), TICK_STEPS[-1])
        return [(float(step), 0.0)]

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        return [_ago(v, spacing) for v in values]


def _ago(value: float, spacing: float) -> str:
    if abs(value) < 1e-6:
        return "now"
    if spacing >= 3600:
        return f"{value / 3600:.0f} h"
    if spacing >= 60:
        return f"{value / 60:.0f} min"
    return f"{value:.0f} s"


def _set_y(plot: pg.PlotItem, low: float, high: float) -> None:
    """Change a plot's y range only when it differs (each change repaints the axis)."""
    wanted = (round(low, 3), round(high, 3))
    if getattr(plot, "_rigdeck_y", None) != wanted:
        plot._rigdeck_y = wanted
        plot.setYRange(low, high, padding=0)


def _styled_plot(layout: pg.GraphicsLayout, row: int, col: int, unit: str) -> pg.PlotItem:
    # no axis grid: pyqtgraph redraws it on every paint, the largest cost of a redraw
    plot = layout.addPlot(row=row, col=col, axisItems={"bottom": AgoAxis("bottom")})
    plot.setMenuEnabled(False)
    plot.setMouseEnabled(x=False, y=False)
    plot.hideButtons()
    plot.getAxis("left").setLabel(units=None, text=unit)
    plot.getAxis("left").setWidth(46)
    plot.vb.disableAutoRange()
    return plot


def _place(line: pg.InfiniteLine, value: float, text: str) -> None:
    """Move a threshold line to `value` and label it (the label updates only when shown)."""
    line.setVisible(True)
    line.label.setFormat(text)
    line.setPos(value)
    line.label.valueChanged()


def _threshold_line(plot: pg.PlotItem, colour: str) -> pg.InfiniteLine:
    line = pg.InfiniteLine(
        angle=0,
        pen=pg.mkPen(colour, width=1.2, style=Qt.PenStyle.DashLine),
        label="",
        labelOpts={"position": 0.02, "color": colour, "anchors": [(0, 0), (0, 0)]},
    )
    line.setVisible(False)
    plot.addItem(line)
    return line


@dataclass
class PlotTitle:
    """A plot's title kept as text, set on the plot only when it changes."""

    plot: pg.PlotItem
    text: str = ""

    def set(self, text: str) -> None:
        if text != self.text:
            self.text = text
            self.plot.setTitle(text, size="9pt")


class PanelBase(QFrame):
    """A titled frame holding a pyqtgraph layout and a hover readout line."""

    def __init__(self, title: str) -> None:
        super().__init__()
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        self.title_label = QLabel(title)
        font = QFont(self.title_label.font())
        font.setBold(True)
        self.title_label.setFont(font)
        layout.addWidget(self.title_label)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground(None)
        self.graphics.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        layout.addWidget(self.graphics, 1)
        self.readout_label = QLabel(" ")
        self.readout_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.readout_label)
        self.plots: list[pg.PlotItem] = []
        self.cursors: list[pg.InfiniteLine] = []
        self.end = 0.0
        """The time at x = 0 (the newest sample); the plots' x is seconds before it."""
        self._span = -1.0
        self.graphics.scene().sigMouseMoved.connect(self._on_scene_mouse_moved)

    def _add_plot(self, row: int, col: int, unit: str) -> pg.PlotItem:
        plot = _styled_plot(self.graphics.ci, row, col, unit)
        cursor = pg.InfiniteLine(angle=90, pen=pg.mkPen("#64748b", width=1))
        cursor.setVisible(False)
        plot.addItem(cursor, ignoreBounds=True)
        self.plots.append(plot)
        self.cursors.append(cursor)
        return plot

    def set_range(self, start: float, end: float) -> None:
        """Show `start`..`end` (call before `update_from`, which places data against `end`)."""
        self.end = end
        if end - start != self._span:
            self._span = end - start
            for plot in self.plots:
                plot.setXRange(start - end, 0.0, padding=0)

    def _on_scene_mouse_moved(self, position: QPointF) -> None:
        for plot in self.plots:
            if plot.sceneBoundingRect().contains(position):
                self.show_readout_at(self.end + float(plot.vb.mapSceneToView(position).x()))
                return

    def show_readout_at(self, t: float) -> None:
        """Write the values at time `t` under the plots and mark `t` on each plot."""
        text = self.readout_at(t)
        for cursor in self.cursors:
            cursor.setPos(t - self.end)
            cursor.setVisible(bool(text))
        self.readout_label.setText(text or " ")

    def readout_at(self, t: float) -> str:
        raise NotImplementedError


def _nearest(x: npt.NDArray[np.float64], t: float) -> int | None:
    if x.size == 0 or t < x[0] - 1e-9 or t > x[-1] + 1e-9:
        return None
    index = int(np.searchsorted(x, t))
    if index >= x.size or (index > 0 and t - x[index - 1] < x[index] - t):
        index -= 1
    return index


def _at(curve: BandCurve, x_at: float) -> float | None:
    x, y = curve.values()
    index = _nearest(x, x_at)
    if index is None or not math.isfinite(y[index]):
        return None
    return float(y[index])


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


class GpuPanel(PanelBase):
    """One GPU: VRAM stacked by backend against total, temperature, power, utilisation."""

    def __init__(self, gpu: GpuReading) -> None:
        super().__init__(f"GPU {gpu.index} · {gpu.name}")
        self.key = gpu.key
        self.vram_plot = self._add_plot(0, 0, "GiB")
        self.temp_plot = self._add_plot(0, 1, "°C")
        self.power_plot = self._add_plot(1, 0, "W")
        self.util_plot = self._add_plot(1, 1, "%")
        self.titles = {
            name: PlotTitle(plot)
            for name, plot in (
                ("vram", self.vram_plot),
                ("temp", self.temp_plot),
                ("power", self.power_plot),
                ("util", self.util_plot),
            )
        }
        self.util_plot.addLegend(offset=(-4, 4), labelTextSize="8pt")
        self.vram_plot.addLegend(offset=(-4, 4), labelTextSize="8pt")
        self.vram_layers: dict[str, pg.PlotDataItem] = {}
        self.vram_total = _threshold_line(self.vram_plot, "#64748b")
        self.temp = BandCurve(self.temp_plot, LINE["temp"])
        self.slowdown = _threshold_line(self.temp_plot, "#ef4444")
        self.power = BandCurve(self.power_plot, LINE["power"])
        self.power_limit = _threshold_line(self.power_plot, "#ef4444")
        self.gpu_util = BandCurve(self.util_plot, LINE["gpu"], "GPU")
        self.mem_util = BandCurve(self.util_plot, LINE["mem"], "memory")
        _set_y(self.util_plot, -2, 102)
        self.lost = False
        self._last_t = np.zeros(0)

    def metric_names(self, history: History) -> list[str]:
        """The history metrics this panel draws (backend layers as they appear)."""
        prefix = f"{self.key}.vram."
        self._layer_keys = sorted(
            (k for k in history.names() if k.startswith(prefix)),
            key=lambda k: (k.endswith(f".{OTHER}"), k),
        )
        fields = (
            "memory_used_mib",
            "memory_total_mib",
            "temperature_c",
            "slowdown_c",
            "power_w",
            "power_limit_w",
            "gpu_util_pct",
            "memory_util_pct",
        )
        # (SM clock, fan and throttle reasons are shown as current values, not graphed)
        return [gpu_key(self.key, f) for f in fields] + self._layer_keys

    def _layer(self, key: str, index: int) -> pg.PlotDataItem:
        """The cumulative curve of one backend, filled down to zero.

        Stacking by drawing each running total filled from zero, the larger totals
        behind the smaller, keeps the layers exact without pairing paths.
        """
        found = self.vram_layers.get(key)
        if found is None:
            name = key.rsplit(".", 1)[-1]
            colour = OTHER_COLOUR if name == OTHER else LAYER_COLOURS[index % len(LAYER_COLOURS)]
            fill = QColor(colour).lighter(135)
            found = pg.PlotDataItem(
                pen=pg.mkPen(colour, width=1.2), fillLevel=0.0, brush=pg.mkBrush(fill), name=name
            )
            found.setDownsampling(auto=True, method="peak")
            found.setClipToView(True)
            self.vram_plot.addItem(found)
            self.vram_layers[key] = found
        found.setZValue(-index)
        return found

    def update_from(self, window: Window, gpu: GpuReading | None) -> None:
        """Redraw from `window` (columns in the order of `metric_names()`)."""
        t = window.t
        self._last_t = t
        x = t - self.end
        mean, low, high = window.mean, window.low, window.high
        col = {
            name: i
            for i, name in enumerate(
                ("used", "total", "temp", "slowdown", "power", "limit", "gpu", "mem")
            )
        }
        total = _last(mean[:, col["total"]])
        self.lost = gpu is not None and gpu.lost

        # VRAM stacked by backend, in GiB
        stack = np.zeros(t.size, dtype=np.float64)
        for index, key in enumerate(self._layer_keys):
            values = np.nan_to_num(mean[:, 8 + index], nan=0.0) / GIB
            stack = stack + values
            self._layer(key, index).setData(x, stack.copy())
        if total:
            _place(self.vram_total, total / GIB, f"total {total / GIB:.1f} GiB")
            _set_y(self.vram_plot, 0, total / GIB * 1.04)
        used_peak = _nanmax(high[:, col["used"]])
        used_now = _last(mean[:, col["used"]])
        shares = ", ".join(
            f"{k.rsplit('.', 1)[-1]} {v / GIB:.1f}"
            for k, v in ((k, _last(mean[:, 8 + i])) for i, k in enumerate(self._layer_keys))
            if v is not None
        )
        self.titles["vram"].set(
            f"VRAM {_fmt(None if used_now is None else used_now / GIB, 'GiB', 1)}"
            f" of {_fmt(None if total is None else total / GIB, 'GiB', 1)}"
            f" · peak {_fmt(None if used_peak is None else used_peak / GIB, 'GiB', 2)}"
            + (f" ({shares})" if shares else "")
        )

        # temperature against the slowdown threshold
        self.temp.set_data(
            x, mean[:, col["temp"]], low[:, col["temp"]], high[:, col["temp"]], window.decimated
        )
        slowdown = _last(mean[:, col["slowdown"]])
        temp_peak = _nanmax(high[:, col["temp"]])
        if slowdown is not None:
            _place(self.slowdown, slowdown, f"slowdown {slowdown:.0f} °C")
        top = max(slowdown or 0.0, temp_peak or 0.0) + 6
        _set_y(self.temp_plot, 20, max(top, 50))
        self.titles["temp"].set(
            f"Temperature {_fmt(_last(mean[:, col['temp']]), '°C')}"
            f" · peak {_fmt(temp_peak, '°C')}"
            + (f" · slowdown {slowdown:.0f} °C" if slowdown is not None else "")
            + (f" · fan {gpu.fan_pct:.0f} %" if gpu is not None and gpu.fan_pct is not None else "")
        )

        # power against the limit
        self.power.set_data(
            x, mean[:, col["power"]], low[:, col["power"]], high[:, col["power"]], window.decimated
        )
        limit = _last(mean[:, col["limit"]])
        power_peak = _nanmax(high[:, col["power"]])
        if limit is not None:
            _place(self.power_limit, limit, f"limit {limit:.0f} W")
        _set_y(self.power_plot, 0, max(limit or 0.0, power_peak or 0.0, 50.0) * 1.08)
        self.titles["power"].set(
            f"Power {_fmt(_last(mean[:, col['power']]), 'W')} · peak {_fmt(power_peak, 'W', 1)}"
            + (f" · limit {limit:.0f} W" if limit is not None else "")
        )

        # utilisation
        for curve, name in ((self.gpu_util, "gpu"), (self.mem_util, "mem")):
            curve.set_data(
                x, mean[:, col[name]], low[:, col[name]], high[:, col[name]], window.decimated
            )
        self.titles["util"].set(
            f"Utilisation GPU {_fmt(_last(mean[:, col['gpu']]), '%')}"
            f" · memory {_fmt(_last(mean[:, col['mem']]), '%')}"
            + (f" · SM {gpu.sm_clock_mhz:.0f} MHz" if gpu and gpu.sm_clock_mhz is not None else "")
        )
        status = " — LOST (fell off the bus)" if self.lost else ""
        reasons = [r for r in (gpu.throttle_reasons or ()) if r != "gpu_idle"] if gpu else []
        if reasons and not self.lost:
            status = " — clocks held back: " + ", ".join(r.replace("_", " ") for r in reasons)
        name = self.title_label.text().split(" — ")[0]
        self.title_label.setText(name + status)
        self.title_label.setStyleSheet("color: #dc2626;" if self.lost or reasons else "")

    def readout_at(self, t: float) -> str:
        index = _nearest(self._last_t, t)
        if index is None:
            return ""
        parts = [_clock(float(self._last_t[index]))]
        layers = []
        previous = 0.0
        for key in self._layer_keys:
            upper = self.vram_layers.get(key)
            if upper is None:
                continue
            _x, y = upper.getData()
            if y is None or index >= len(y):
                continue
            layers.append(f"{key.rsplit('.', 1)[-1]} {float(y[index]) - previous:.2f}")
            previous = float(y[index])
        parts.append(f"VRAM {previous:.2f} GiB" + (f" ({', '.join(layers)})" if layers else ""))
        x = t - self.end
        parts.append(_fmt(_at(self.temp, x), "°C"))
        parts.append(_fmt(_at(self.power, x), "W", 1))
        parts.append(f"GPU {_fmt(_at(self.gpu_util, x), '%')}")
        parts.append(f"memory {_fmt(_at(self.mem_util, x), '%')}")
        return " · ".join(parts)


class HostPanel(PanelBase):
    """The host: RAM and swap against total, CPU mean and busiest core."""

    KEYS = ("ram_used_mib", "ram_total_mib", "swap_used_mib", "cpu_pct", "cpu_max_pct")

    def __init__(self) -> None:
        super().__init__("Host")
        self.ram_plot = self._add_plot(0, 0, "GiB")
        self.cpu_plot = self._add_plot(0, 1, "%")
        self.titles = {"ram": PlotTitle(self.ram_plot), "cpu": PlotTitle(self.cpu_plot)}
        self.ram_plot.addLegend(offset=(-4, 4), labelTextSize="8pt")
        self.cpu_plot.addLegend(offset=(-4, 4), labelTextSize="8pt")
        self.ram = BandCurve(self.ram_plot, LINE["ram"], "RAM")
        self.swap = BandCurve(self.ram_plot, LINE["swap"], "swap")
        self.ram_total = _threshold_line(self.ram_plot, "#64748b")
        self.cpu = BandCurve(self.cpu_plot, LINE["cpu"], "mean")
        self.cpu_max = BandCurve(self.cpu_plot, LINE["cpu_max"], "busiest core")
        _set_y(self.cpu_plot, -2, 102)
        self._last_t = np.zeros(0)

    def metric_names(self, history: History) -> list[str]:
        return [host_key(k) for k in self.KEYS]

    def update_from(self, window: Window, host: HostReading | None) -> None:
        t = window.t
        self._last_t = t
        x = t - self.end
        mean, low, high = window.mean, window.low, window.high
        ram_total = _last(mean[:, 1])
        for curve, i in ((self.ram, 0), (self.swap, 2)):
            curve.set_data(x, mean[:, i] / GIB, low[:, i] / GIB, high[:, i] / GIB, window.decimated)
        if ram_total:
            _place(self.ram_total, ram_total / GIB, f"total {ram_total / GIB:.1f} GiB")
            _set_y(self.ram_plot, 0, ram_total / GIB * 1.04)
        ram_now, swap_now = _last(mean[:, 0]), _last(mean[:, 2])
        self.titles["ram"].set(
            f"RAM {_fmt(None if ram_now is None else ram_now / GIB, 'GiB', 1)}"
            f" of {_fmt(None if ram_total is None else ram_total / GIB, 'GiB', 1)}"
            f" · swap {_fmt(None if swap_now is None else swap_now / GIB, 'GiB', 1)}"
        )
        self.cpu.set_data(x, mean[:, 3], low[:, 3], high[:, 3], window.decimated)
        self.cpu_max.set_data(x, mean[:, 4], low[:, 4], high[:, 4], window.decimated)
        cores = f" · {len(host.cpu_pct)} cores" if host is not None else ""
        self.titles["cpu"].set(f"CPU {_fmt(_last(mean[:, 3]), '%')}{cores}")
        disks = host.disks if host is not None else ()
        self.title_label.setText(
            "Host" + "".join(f" · {d.path}: {d.free_mib / GIB:.0f} GiB free" for d in disks[:4])
        )

    def readout_at(self, t: float) -> str:
        index = _nearest(self._last_t, t)
        if index is None:
            return ""
        x = t - self.end
        return " · ".join(
            [
                _clock(float(self._last_t[index])),
                f"RAM {_fmt(_at(self.ram, x), 'GiB', 1)}",
                f"swap {_fmt(_at(self.swap, x), 'GiB', 1)}",
                f"CPU {_fmt(_at(self.cpu, x), '%')}"
                f" (busiest core {_fmt(_at(self.cpu_max, x), '%')})",
            ]
        )


def gpu_by_key(snapshot: Snapshot | None, key: str) -> GpuReading | None:
    if snapshot is None:
        return None
    return next((g for g in snapshot.gpus if g.key == key), None)


def panel_visible(widget: QWidget) -> bool:
    """Whether any part of `widget` is on screen (panels scrolled away are not redrawn)."""
    return widget.isVisible() and not widget.visibleRegion().isEmpty()


def vram_layer_names(keys: Sequence[str], gpu: str) -> list[str]:
    prefix = vram_key(gpu, "")
    return [k[len(prefix) :] for k in keys if k.startswith(prefix)]
