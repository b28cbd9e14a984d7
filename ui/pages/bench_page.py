"""The Bench page: a model, a matrix of variations, a progress bar per variant (with
Cancel), the table and the plots of a run; kept runs to reopen, export and compare.

The page holds layout and handlers only: runs go through `BenchFeed` (the task runner),
whose Qt signals arrive on the GUI thread; it touches no docker, HTTP or files itself.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.bench.export import table
from app.bench.matrix import AXES
from app.bench.results import BenchRun, BenchSettings, VariantResult
from app.bench.service import Bench, BenchRequest, bench_defaults
from app.engines.plan import LaunchPlan
from app.errors import UserError
from app.runtime.hosts import LOCAL
from ui.bench.feed import BenchFeed
from ui.bench.plots import BenchPlotsWidget
from ui.services import Services

log = logging.getLogger(__name__)

MATRIX_HINT = "One variation a line, KEY=V1,V2 — keys: " + ", ".join(a.key for a in AXES)


class BenchPage(QWidget):
    """Set up a matrix, run it, read the table and plots; reopen, export, compare runs."""

    def __init__(self, feed: BenchFeed, *, models: list[str] | None = None,
                 hosts: list[str] | None = None, defaults: BenchSettings | None = None) -> None:
        super().__init__()
        self.feed = feed
        self.defaults = defaults or BenchSettings()
        self.run: BenchRun | None = None
        self.bars: list[QProgressBar] = []
        layout = QVBoxLayout(self)
        layout.addWidget(self._setup_box(models or [], hosts or [LOCAL]))
        splitter = QSplitter(Qt.Orientation.Vertical)
        self.progress_box = QGroupBox("Variants")
        self.progress_grid = QGridLayout(self.progress_box)
        splitter.addWidget(self.progress_box)
        results = QWidget()
        results_layout = QVBoxLayout(results)
        results_layout.setContentsMargins(0, 0, 0, 0)
        results_layout.addLayout(self._runs_row())
        self.table = QTableWidget(0, 0)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        results_layout.addWidget(self.table, 1)
        self.plots = BenchPlotsWidget()
        results_layout.addWidget(self.plots, 1)
        splitter.addWidget(results)
        splitter.setStretchFactor(1, 4)
        layout.addWidget(splitter, 1)
        feed.started.connect(self._on_feed_started)
        feed.progress.connect(self._on_feed_progress)
        feed.variant_finished.connect(self._on_feed_variant_finished)
        feed.finished.connect(self._on_feed_finished)
        feed.failed.connect(self._on_feed_failed)
        self._on_matrix_changed()
        self._fill_runs()
        self._on_runs_activated(0)  # the newest kept run, as the Run box says

    # ------------------------------------------------------------------ layout
    def _setup_box(self, models: list[str], hosts: list[str]) -> QGroupBox:
        box = QGroupBox("Bench a model")
        grid = QHBoxLayout(box)
        form = QFormLayout()
        model_row = QHBoxLayout()
        self.model_combo = QComboBox()
        self.model_combo.setEditable(True)
        self.model_combo.addItems(models)
        self.model_combo.setMinimumWidth(360)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._on_browse_clicked)
        model_row.addWidget(self.model_combo, 1)
        model_row.addWidget(browse)
        form.addRow("Model", model_row)
        self.host_combo = QComboBox()
        self.host_combo.addItems(hosts)
        form.addRow("Host", self.host_combo)
        self.ctx_spin = self._spin(256, 1_048_576, 4096)
        form.addRow("Context", self.ctx_spin)
        self.text_edit = QLineEdit(self.defaults.text)
        self.text_edit.setPlaceholderText("the shipped public-domain text")
        form.addRow("Perplexity text", self.text_edit)
        grid.addLayout(form, 3)
        matrix = QVBoxLayout()
        self.matrix_edit = QPlainTextEdit("experts=2,8\nkv=f16,q8_0")
        self.matrix_edit.setPlaceholderText(MATRIX_HINT)
        self.matrix_edit.setToolTip(MATRIX_HINT)
        self.matrix_edit.setMaximumHeight(90)
        self.matrix_edit.textChanged.connect(self._on_matrix_changed)
        matrix.addWidget(QLabel("Matrix"))
        matrix.addWidget(self.matrix_edit)
        self.matrix_label = QLabel()
        self.matrix_label.setWordWrap(True)
        matrix.addWidget(self.matrix_label)
        grid.addLayout(matrix, 3)
        grid.addLayout(self._knobs(), 2)
        return box

    def _knobs(self) -> QFormLayout:
        knobs = QFormLayout()
        self.reps_spin = self._spin(1, 50, self.defaults.repetitions)
        self.prompt_spin = self._spin(1, 32768, self.defaults.prompt_tokens)
        self.answer_spin = self._spin(1, 8192, self.defaults.answer_tokens)
        knobs.addRow("Repetitions", self.reps_spin)
        knobs.addRow("Prompt tokens", self.prompt_spin)
        knobs.addRow("Answer tokens", self.answer_spin)
        self.ppl_check = QCheckBox("Perplexity")
        self.ppl_check.setChecked(True)
        knobs.addRow(self.ppl_check)
        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start")
        self.start_button.clicked.connect(self._on_start_clicked)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self._on_cancel_clicked)
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        knobs.addRow(buttons)
        return knobs

    @staticmethod
    def _spin(low: int, high: int, value: int) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(low, high)
        spin.setValue(value)
        return spin

    def _runs_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addWidget(QLabel("Run"))
        self.runs_combo = QComboBox()
        self.runs_combo.setMinimumWidth(320)
        self.runs_combo.activated.connect(self._on_runs_activated)
        row.addWidget(self.runs_combo, 1)
        self.compare_combo = QComboBox()
        self.compare_combo.setMinimumWidth(200)
        row.addWidget(QLabel("compare with"))
        row.addWidget(self.compare_combo)
        self.compare_button = QPushButton("Compare")
        self.compare_button.clicked.connect(self._on_compare_clicked)
        row.addWidget(self.compare_button)
        for fmt in ("csv", "json"):
            button = QPushButton(f"Export {fmt.upper()}…")
            button.clicked.connect(partial(self._on_export_clicked, fmt))
            row.addWidget(button)
        self.status_label = QLabel()
        row.addWidget(self.status_label)
        return row

    # ------------------------------------------------------------------ the matrix
    def request(self) -> BenchRequest:
        """The run the controls describe.

        Raises:
            UserError: no model chosen, or a matrix line that cannot be read.
        """
        model = self.model_combo.currentText().strip()
        if not model:
            raise UserError("choose a model to bench")
        lines = [ln.strip() for ln in self.matrix_edit.toPlainText().splitlines() if ln.strip()]
        variants = Bench.plan(lines)
        base = LaunchPlan(model=str(Path(model).expanduser().absolute()),
                          context=self.ctx_spin.value())
        settings = BenchSettings(repetitions=self.reps_spin.value(),
                                 prompt_tokens=self.prompt_spin.value(),
                                 answer_tokens=self.answer_spin.value(),
                                 perplexity=self.ppl_check.isChecked(),
                                 text=self.text_edit.text().strip())
        return BenchRequest(base, tuple(variants), self.host_combo.currentText(), settings)

    def _on_matrix_changed(self) -> None:
        lines = [ln.strip() for ln in self.matrix_edit.toPlainText().splitlines() if ln.strip()]
        try:
            count = len(Bench.plan(lines))
        except UserError as exc:
            self.matrix_label.setText(f"<span style='color:#b91c1c'>{exc}</span>")
            self.start_button.setEnabled(False)
            return
        self.matrix_label.setText(f"{count} variant{'s' if count != 1 else ''}")
        self.start_button.setEnabled(not self.feed.running)

    def _on_browse_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model to bench", "", "GGUF (*.gguf)")
        if path:
            self.model_combo.setEditText(path)

    # ------------------------------------------------------------------ running
    def _on_start_clicked(self) -> None:
        try:
            request = self.request()
        except UserError as exc:
            self.status_label.setText(str(exc))
            return
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.status_label.setText("starting…")
        self.feed.start(request)

    def _on_cancel_clicked(self) -> None:
        self.cancel_button.setEnabled(False)
        self.status_label.setText("cancelling…")
        self.feed.cancel()

    def _on_feed_started(self, run: BenchRun) -> None:
        self.run = run
        while self.progress_grid.count():
            item = self.progress_grid.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        self.bars = []
        for row, variant in enumerate(run.variants):
            self.progress_grid.addWidget(QLabel(f"{row + 1}. {variant.label}"), row, 0)
            bar = QProgressBar()
            bar.setRange(0, 100)
            bar.setFormat(variant.state if variant.state == "skipped" else "waiting")
            self.progress_grid.addWidget(bar, row, 1)
            self.bars.append(bar)
        self._show_run(run)

    def _on_feed_progress(self, index: int, phase: str, fraction: float) -> None:
        if 0 <= index < len(self.bars):
            self.bars[index].setValue(round(fraction * 100))
            self.bars[index].setFormat(f"{phase} (%p%)")
        self.status_label.setText(f"variant {index + 1}/{len(self.bars)}: {phase}")

    def _on_feed_variant_finished(self, result: VariantResult) -> None:
        if 0 <= result.index < len(self.bars):
            bar = self.bars[result.index]
            bar.setValue(100 if result.state == "done" else bar.value())
            bar.setFormat(result.state if not result.error else f"{result.state}: "
                          f"{result.error[:80]}")
        if self.run is not None:
            self._show_run(self.run)

    def _on_feed_finished(self, run: BenchRun) -> None:
        self.run = run
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.status_label.setText(f"run #{run.id} {run.state}")
        self._show_run(run)
        self._fill_runs(select=run.id)

    def _on_feed_failed(self, message: str) -> None:
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.status_label.setText(message)

    # ------------------------------------------------------------------ results
    def _show_run(self, run: BenchRun) -> None:
        headers, rows = table(run)
        self._fill_table(headers, rows)
        self.plots.show_run(run)

    def _fill_table(self, headers: list[str], rows: list[list[str]]) -> None:
        self.table.clear()
        self.table.setColumnCount(len(headers))
        self.table.setRowCount(len(rows))
        self.table.setHorizontalHeaderLabels(headers)
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(text))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)

    def _fill_runs(self, select: int | None = None) -> None:
        runs = self.feed.runs()
        for combo in (self.runs_combo, self.compare_combo):
            combo.clear()
            for summary in runs:
                name = summary.model.rstrip("/").rsplit("/", 1)[-1]
                combo.addItem(f"#{summary.id} {name} ({summary.variants} variants, "
                              f"{summary.state})", summary.id)
        if select is not None:
            self.runs_combo.setCurrentIndex(max(0, self.runs_combo.findData(select)))
        self._pick_compare()

    def _pick_compare(self) -> None:
        """Compare with another run than the one shown: the newest other one (runs are
        listed newest first); Compare is off while there is no other."""
        shown = self.runs_combo.currentData()
        current = self.compare_combo.currentData()
        if current is not None and current != shown:
            return
        others = [i for i in range(self.compare_combo.count())
                  if self.compare_combo.itemData(i) != shown]
        self.compare_combo.setCurrentIndex(others[0] if others else -1)
        self.compare_button.setEnabled(bool(others))

    def _on_runs_activated(self, _index: int) -> None:
        run_id = self.runs_combo.currentData()
        if isinstance(run_id, int):
            self.run = self.feed.load(run_id)
            self._show_run(self.run)
        self._pick_compare()

    def _on_compare_clicked(self) -> None:
        a, b = self.runs_combo.currentData(), self.compare_combo.currentData()
        if isinstance(a, int) and isinstance(b, int):
            self._fill_table(*self.feed.compare(a, b))

    def _on_export_clicked(self, fmt: str, _checked: bool = False) -> None:
        run_id = self.runs_combo.currentData()
        if not isinstance(run_id, int):
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export the run", f"bench-{run_id}.{fmt}")
        if path:
            try:
                self.feed.export(run_id, Path(path))
                self.status_label.setText(f"exported to {path}")
            except UserError as exc:
                self.status_label.setText(str(exc))


def bench_page(services: Services, _open_settings: object) -> QWidget:
    """The registry's factory: the library's models to choose from, the settings' text
    and repetitions to start with."""
    services.library.start()
    models = sorted(e.path for e in services.library.entries
                    if e.kind == "model" and not e.error and str(e.path).endswith(".gguf"))
    return BenchPage(services.bench, models=[str(m) for m in models],
                     hosts=services.bench.hosts(), defaults=bench_defaults(services.settings))
