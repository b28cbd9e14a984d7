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
    """Four plots side by side over the variants of one run (x: variant number, as in the
    Variants list and the table's rows): decode and prompt tokens/s apart (their scales
    differ a hundredfold), perplexity, memory. The memory legend sits under its plot, never
    on the bars."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setBackground("w")
        self.setMinimumHeight(260)
        self.decode = self._plot(0, "decode", "tokens/s")
        self.prompt = self._plot(1, "prompt", "tokens/s")
        self.ppl = self._plot(2, "perplexity", "")
        self.memory = self._plot(3, "memory", "MiB")
        self.legend = pg.LegendItem(colCount=len(KIND_COLOURS) + 1, labelTextColor="#111827")
        self.addItem(self.legend, row=1, col=3)
        self.labels: list[str] = []

    @property
    def plots(self) -> tuple[pg.PlotItem, ...]:
        return (self.decode, self.prompt, self.ppl, self.memory)

    def _plot(self, col: int, title: str, unit: str) -> pg.PlotItem:
        plot: pg.PlotItem = self.addPlot(row=0, col=col)
        plot.setTitle(title, color="#111827", size="10pt")
        if unit:
            plot.setLabel("left", unit)
        plot.showGrid(y=True, alpha=0.25)
        plot.setMenuEnabled(False)
        plot.setMouseEnabled(x=False, y=False)
        return plot

    def data(self) -> dict[str, list[float]]:
        """What is drawn, by series name (for tests and screenshots)."""
        out: dict[str, list[float]] = {}
        for plot in self.plots:
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
        for plot in self.plots:
            plot.clear()
        self.legend.clear()
        if not variants:
            return
        x = np.arange(len(variants), dtype=float)
        ticks = [[(i, f"{i + 1}") for i in range(len(variants))]]
        for plot in self.plots:
            plot.getAxis("bottom").setTicks(ticks)
            plot.setLabel("bottom", "variant")
            plot.setXRange(-0.6, len(variants) - 0.4, padding=0)
        self.decode.addItem(pg.BarGraphItem(x=x, height=[_median(v.decode_tps) for v in variants],
                                            width=0.6, brush="#2563eb", name="decode"))
        self.prompt.addItem(pg.BarGraphItem(x=x, height=[_median(v.prompt_tps) for v in variants],
                                            width=0.6, brush="#93c5fd", name="prompt"))
        self.ppl.addItem(pg.BarGraphItem(x=x, height=[v.perplexity or 0.0 for v in variants],
                                         width=0.6, brush="#dc2626", name="perplexity"))
        self._memory(x, variants)

    def _memory(self, x: np.ndarray, variants: list[VariantResult]) -> None:
        bottom = np.zeros(len(variants))
        for kind, colour in KIND_COLOURS:
            height = np.array([v.kinds().get(kind, 0.0) for v in variants])
            if not height.any():
                continue
            bars = pg.BarGraphItem(x=x, y0=bottom, height=height, width=0.6, brush=colour,
                                   name=kind)
            self.memory.addItem(bars)
            self.legend.addItem(bars, kind)
            bottom = bottom + height
        known = [(i, v.estimate_mib) for i, v in enumerate(variants)
                 if v.estimate_mib is not None]
        if known:  # no NaN points: they crash the scatter's painting
            marks = self.memory.plot([float(i) for i, _ in known], [e for _, e in known],
                                     pen=None, symbol="d", symbolBrush="#111827",
                                     symbolSize=10, name="estimate")
            self.legend.addItem(marks, "fit estimate")
