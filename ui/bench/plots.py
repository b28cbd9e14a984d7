"""The Bench page's plots (pyqtgraph): decode and prompt tokens/s per variant, perplexity
per variant, and memory bars (the engine's buffers by kind, the fit estimate beside)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

from app.bench.results import BenchRun, VariantResult

KIND_COLOURS = (("model", "#2563eb"), ("kv", "#16a34a"), ("compute", "#f59e0b"),
                ("output", "#9333ea"))


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else 0.0


class BenchPlotsWidget(pg.GraphicsLayoutWidget):  # type: ignore[misc]  # pyqtgraph ships no types
    """Three plots side by side over the variants of one run (x: variant number)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setBackground("w")
        self.setMinimumHeight(240)
        self.speed = self._plot(0, "tokens/s")
        self.speed.addLegend(offset=(-6, 6), labelTextColor="#111827", brush=(255, 255, 255, 210))
        self.ppl = self._plot(1, "perplexity")
        self.memory = self._plot(2, "MiB")
        self.memory.addLegend(offset=(-6, 6), labelTextColor="#111827", brush=(255, 255, 255, 210))
        self.labels: list[str] = []

    def _plot(self, col: int, unit: str) -> pg.PlotItem:
        plot: pg.PlotItem = self.addPlot(row=0, col=col)
        plot.setLabel("left", unit)
        plot.showGrid(y=True, alpha=0.25)
        plot.setMenuEnabled(False)
        plot.setMouseEnabled(x=False, y=False)
        return plot

    def data(self) -> dict[str, list[float]]:
        """What is drawn, by series name (for tests and screenshots)."""
        out: dict[str, list[float]] = {}
        for plot in (self.speed, self.ppl, self.memory):
            for item in plot.listDataItems() + [i for i in plot.items
                                                if isinstance(i, pg.BarGraphItem)]:
                name = item.opts.get("name") if hasattr(item, "opts") else None
                if isinstance(item, pg.BarGraphItem):
                    out[str(name)] = [float(v) for v in item.opts["height"]]
                elif name:
                    out[str(name)] = [float(v) for v in item.getData()[1]]
        return out

    def show_run(self, run: BenchRun | None) -> None:
        variants = [] if run is None else run.variants
        self.labels = [v.label for v in variants]
        for plot in (self.speed, self.ppl, self.memory):
            plot.clear()
        if not variants:
            return
        x = np.arange(len(variants), dtype=float)
        ticks = [[(i, f"{i + 1}") for i in range(len(variants))]]
        for plot in (self.speed, self.ppl, self.memory):
            plot.getAxis("bottom").setTicks(ticks)
            plot.setLabel("bottom", "variant")
        decode = [_median(v.decode_tps) for v in variants]
        prompt = [_median(v.prompt_tps) for v in variants]
        self.speed.addItem(pg.BarGraphItem(x=x - 0.2, height=decode, width=0.4,
                                           brush="#2563eb", name="decode"))
        self.speed.addItem(pg.BarGraphItem(x=x + 0.2, height=prompt, width=0.4,
                                           brush="#93c5fd", name="prompt"))
        self.ppl.addItem(pg.BarGraphItem(x=x, height=[v.perplexity or 0.0 for v in variants],
                                         width=0.6, brush="#dc2626", name="perplexity"))
        self._memory(x, variants)

    def _memory(self, x: np.ndarray, variants: list[VariantResult]) -> None:
        bottom = np.zeros(len(variants))
        for kind, colour in KIND_COLOURS:
            height = np.array([v.kinds().get(kind, 0.0) for v in variants])
            if not height.any():
                continue
            self.memory.addItem(pg.BarGraphItem(x=x, y0=bottom, height=height, width=0.6,
                                                brush=colour, name=kind))
            bottom = bottom + height
        known = [(i, v.estimate_mib) for i, v in enumerate(variants)
                 if v.estimate_mib is not None]
        if known:  # no NaN points: they crash the scatter's painting
            self.memory.plot([float(i) for i, _ in known], [e for _, e in known], pen=None,
                             symbol="d", symbolBrush="#111827", symbolSize=10,
                             name="estimate")
