"""The Fit page: will this model and plan fit these GPUs, how much each holds, what would help.

The page is a view of the app's `FitSession` (services.fit): it shows the session's state,
follows its events (`_on_session_<event>`) and hands every user edit back to it. The
session does the reading and estimating, at once where that is cheap and on the task
runner where not; the page only debounces slider moves before asking for the planner
(the largest context that fits, and advice).
"""

from __future__ import annotations

import functools
import logging
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from psygnal import SignalInstance
from PySide6.QtCore import QMetaMethod, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.fit.capacities import Capacities
from app.fit.loaded_model import LoadedModel
from app.fit.plan import Estimate, FitPlan
from app.fit.planner import FitResult
from app.fit.session import ENGINE_TITLES, ENGINES, ChosenPlan, FitSession
from app.fit.vllm_estimate import VllmEstimate
from app.library.entries import Entry
from app.telemetry.snapshot import Snapshot
from ui.fit_bars import DeviceBarWidget, mib
from ui.fit_controls import PlanControlsPanel
from ui.fit_explainer import ModelSettingsTable
from ui.services import Services

log = logging.getLogger(__name__)

__all__ = ["ChosenPlan", "FitPage", "fit_page"]

PLAN_DEBOUNCE_MS = 150
"""Slider moves closer together than this ask the planner once."""


class _LibraryBridge(QObject):
    """Hops the library's scan events (from its thread) to the GUI thread."""

    scanned = Signal(object)


def _unsubscribe(links: list[tuple[SignalInstance, weakref.WeakMethod[Any]]]) -> None:
    """Drop a deleted page's session handlers (its Python wrapper may outlive it)."""
    for signal, ref in links:
        slot = ref()
        if slot is not None:
            signal.disconnect(slot)


class FitPage(QWidget):
    """Pick a model, an engine and GPUs; move the plan; read what each device will hold."""

    plan_started = Signal(object)
    """A `ChosenPlan`, when the user presses "Start with this plan" (the Backends page)."""

    def __init__(self, services: Services, library: Any | None = None) -> None:
        super().__init__()
        self._services = services
        self.session: FitSession = services.fit
        self._build()
        self._plan_timer = QTimer(self)
        self._plan_timer.setSingleShot(True)
        self._plan_timer.setInterval(PLAN_DEBOUNCE_MS)
        self._plan_timer.timeout.connect(self._on_plan_timer_timeout)
        self.controls.changed.connect(self._on_controls_changed)
        self._subscribe()
        self._show_session()

        services.monitor.snapshot_ready.connect(self._on_monitor_snapshot_ready)
        if services.monitor.latest is not None:
            self._on_monitor_snapshot_ready(services.monitor.latest)
        if library is not None:
            self._bridge = _LibraryBridge(self)
            self._bridge.scanned.connect(self._on_library_scanned)
            library.scanned.connect(self._bridge.scanned.emit)
            self._fill_library(library.entries)
        self.session.restore()

    def _subscribe(self) -> None:
        """Follow the session's events while this page lives."""
        s = self.session
        links: list[tuple[SignalInstance, Callable[..., None]]] = [
            (s.model_chosen, self._on_session_model_chosen),
            (s.model_changed, self._on_session_model_changed),
            (s.engine_changed, self._on_session_engine_changed),
            (s.capacities_changed, self._on_session_capacities_changed),
            (s.plan_changed, self._on_session_plan_changed),
            (s.problem_changed, self._on_session_problem_changed),
            (s.estimate_changed, self._on_session_estimate_changed),
            (s.planner_started, self._on_session_planner_started),
            (s.planner_changed, self._on_session_planner_changed),
            (s.planner_failed, self._on_session_planner_failed),
        ]
        for signal, slot in links:
            signal.connect(slot)
        weak = [(signal, weakref.WeakMethod(slot)) for signal, slot in links]
        self.destroyed.connect(functools.partial(_unsubscribe, weak))

    def _show_session(self) -> None:
        """Show the session as it stands (another page may have driven it already)."""
        s = self.session
        self._on_session_engine_changed(s.engine)
        self._on_session_capacities_changed(s.capacities)
        self._on_session_model_changed(s.model)
        self._on_session_problem_changed(s.problem)
        self._on_session_estimate_changed(s.estimate)
        if s.estimate is not None and s.planner_result is not None:
            self._on_session_planner_changed(s.planner_result)

    # ------------------------------------------------------------------ building
    def _build(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(12, 8, 12, 8)
        outer.addLayout(self._build_picker())
        # what is wrong with the GPU memory typed, under the field (the estimate waits)
        self.gpu_problem_label = QLabel()
        self.gpu_problem_label.setWordWrap(True)
        self.gpu_problem_label.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.gpu_problem_label.setStyleSheet("color: #b91c1c;")
        self.gpu_problem_label.hide()
        outer.addWidget(self.gpu_problem_label)
        self.model_label = QLabel()
        self.model_label.setWordWrap(True)
        self.model_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        outer.addWidget(self.model_label)
        self.gpu_hint_label = QLabel()
        self.gpu_hint_label.setEnabled(False)
        outer.addWidget(self.gpu_hint_label)
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet(
            "QLabel { background: #fee2e2; color: #7f1d1d; border-radius: 4px; padding: 6px; }"
        )
        self.error_label.hide()
        outer.addWidget(self.error_label)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(self._build_controls())
        splitter.addWidget(self._build_results())
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([470, 700])
        outer.addWidget(splitter, 1)

    def _build_picker(self) -> QHBoxLayout:
        pick = QHBoxLayout()
        pick.addWidget(QLabel("Model"))
        self.library_box = QComboBox()
        self.library_box.setMinimumContentsLength(18)
        self.library_box.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.library_box.setToolTip("Models found by the Library")
        self.library_box.hide()
        self.library_box.activated.connect(self._on_library_box_activated)
        pick.addWidget(self.library_box)
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("a GGUF file (llama.cpp) or a Hugging Face folder (vLLM)")
        self.path_edit.returnPressed.connect(self._on_path_edit_return_pressed)
        pick.addWidget(self.path_edit, 1)
        self.browse_button = QPushButton("Browse…")
        self.browse_button.clicked.connect(self._on_browse_button_clicked)
        pick.addWidget(self.browse_button)
        pick.addSpacing(12)
        pick.addWidget(QLabel("Engine"))
        self.engine_box = QComboBox()
        for title, key in ENGINES:
            self.engine_box.addItem(title, key)
        self.engine_box.currentIndexChanged.connect(self._on_engine_box_current_index_changed)
        pick.addWidget(self.engine_box)
        pick.addSpacing(12)
        pick.addWidget(QLabel("GPU memory"))
        self.gpu_edit = QLineEdit()
        self.gpu_edit.setPlaceholderText("per GPU, e.g. 96G")
        self.gpu_edit.setToolTip(
            "Memory per GPU: 96G, 96 GB or 98304 (MiB); comma-separated for several "
            "(24G,24G); empty: CPU only"
        )
        self.gpu_edit.setMaximumWidth(150)
        self.gpu_edit.editingFinished.connect(self._on_gpu_edit_editing_finished)
        pick.addWidget(self.gpu_edit)
        return pick

    def _build_controls(self) -> QWidget:
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 8, 0)
        self.controls = PlanControlsPanel()
        left_layout.addWidget(self.controls)
        left_layout.addStretch(1)
        self.start_button = QPushButton("Start with this plan")
        self.start_button.setToolTip("Hand this plan to the Backends page")
        self.start_button.clicked.connect(self._on_start_button_clicked)
        left_layout.addWidget(self.start_button)
        scroll = QScrollArea()
        scroll.setWidget(left)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setMinimumWidth(420)
        return scroll

    def _build_results(self) -> QWidget:
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(8, 0, 0, 0)
        self.fit_label = QLabel()
        font = self.fit_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        self.fit_label.setFont(font)
        self.fit_label.setWordWrap(True)
        right_layout.addWidget(self.fit_label)
        self.bars_layout = QVBoxLayout()
        self.bars_layout.setSpacing(2)
        right_layout.addLayout(self.bars_layout)
        self.gpu_bars: list[DeviceBarWidget] = []
        self.host_bar = DeviceBarWidget("Host RAM", fixed_title=True)
        right_layout.addWidget(self.host_bar)
        self.measure_label = QLabel()
        self.measure_label.setWordWrap(True)
        right_layout.addWidget(self.measure_label)
        self.max_context_label = QLabel()
        self.max_context_label.setWordWrap(True)
        right_layout.addWidget(self.max_context_label)
        # beyond the trained context: the RoPE scaling it needs and the flags to add
        self.context_note_label = QLabel()
        self.context_note_label.setWordWrap(True)
        self.context_note_label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
        )
        self.context_note_label.setStyleSheet("color: #b45309;")
        self.context_note_label.hide()
        right_layout.addWidget(self.context_note_label)
        self.advice_title = QLabel(
            "<b>What would help</b> (the change in MiB on each GPU and the host)"
        )
        right_layout.addWidget(self.advice_title)
        self.advice_list = QListWidget()
        self.advice_list.setSelectionMode(QListWidget.SelectionMode.NoSelection)
        self.advice_list.setMaximumHeight(118)
        self.advice_list.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        right_layout.addWidget(self.advice_list)
        right_layout.addWidget(QLabel("<b>The model's settings</b> (hover a row for its meaning)"))
        self.settings_table = ModelSettingsTable()
        right_layout.addWidget(self.settings_table, 1)
        return right

    # ------------------------------------------------------------------ reading the session
    @property
    def engine(self) -> str:
        return self.session.engine

    @property
    def model(self) -> LoadedModel | None:
        return self.session.model

    @property
    def estimate(self) -> Estimate | None:
        return self.session.estimate

    @property
    def result(self) -> FitResult | None:
        """The planner's last answer (largest context, advice)."""
        return self.session.planner_result

    @property
    def vllm(self) -> VllmEstimate | None:
        return self.session.vllm

    def current_plan(self) -> FitPlan:
        """The llama.cpp plan the controls and the GPU field describe."""
        return self.session.plan

    def load_model(self, path: Path) -> None:
        """Show the model at `path` (the Library page's "Fit"); read off the GUI thread."""
        self.session.choose_path(path)

    @property
    def error_text(self) -> str:
        """The problem the page shows, or "" (for tests and the status line)."""
        return self.error_label.text() if not self.error_label.isHidden() else ""

    # ------------------------------------------------------------------ session events
    def _on_session_model_chosen(self, path: Path) -> None:
        self._show_path(path)
        self.model_label.setText(f"Reading {path.name}…")

    def _on_session_model_changed(self, model: LoadedModel | None) -> None:
        chosen = self.session.chosen_path
        if chosen is not None:
            self._show_path(chosen)
        if model is None:
            self.settings_table.show_settings([])
            if chosen is None:
                self.model_label.setText(
                    "Pick a model: a GGUF file for llama.cpp, or a Hugging Face folder for vLLM."
                )
            else:
                self.model_label.setText(str(chosen))
            return
        self.model_label.setText(model.description)
        self.settings_table.show_settings(model.settings)
        self._show_controls()

    def _on_session_engine_changed(self, engine: str) -> None:
        index = self.engine_box.findData(engine)
        if index != self.engine_box.currentIndex():
            self.engine_box.blockSignals(True)
            self.engine_box.setCurrentIndex(index)
            self.engine_box.blockSignals(False)
        self._show_controls()

    def _on_session_capacities_changed(self, caps: Capacities) -> None:
        if self.gpu_edit.text() != caps.gpu_memory_text:
            self.gpu_edit.setText(caps.gpu_memory_text)
        self.gpu_problem_label.setText(caps.problem)
        self.gpu_problem_label.setVisible(bool(caps.problem))
        self.gpu_edit.setStyleSheet("QLineEdit { border: 1px solid #b91c1c; }"
                                    if caps.problem else "")
        if caps.seen:
            self.gpu_hint_label.setText(
                "GPUs seen by the monitor: "
                + "; ".join(f"GPU {g.index} {g.name}, {g.memory_mib:,.0f} MiB" for g in caps.seen)
            )
        est = self.session.estimate
        if est is not None and self.session.vllm is None:
            self._show_verdict(est)
        elif est is not None:
            self.host_bar.show_device(est.host, caps.host_ram_mib)

    def _on_session_plan_changed(self, plan: FitPlan) -> None:
        s = self.session
        self.controls.show_plan(plan, s.margin_mib, s.gpu_memory_utilization)
        self._show_context_note()

    def _on_session_problem_changed(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.setVisible(bool(text))

    def _on_session_estimate_changed(self, est: Estimate | None) -> None:
        if est is None:
            self._clear_results()
            return
        self.host_bar.show()
        self._show_estimate(est)
        v = self.session.vllm
        if v is not None:
            self._show_vllm(v)
        else:
            self._plan_timer.start()

    def _on_session_planner_started(self, plan: FitPlan) -> None:
        self.max_context_label.setText("Working out the largest context and what would help…")

    def _on_session_planner_changed(self, res: FitResult | None) -> None:
        self.advice_list.clear()
        if res is None:
            self.max_context_label.setText("")
            self.controls.set_max_context(None)
            return
        n_gpus = len(res.estimate.devices)
        where = ("the host's RAM" if not n_gpus
                 else f"the GPU{'s' if n_gpus > 1 else ''} and the host")
        if res.max_ctx:
            self.controls.set_max_context(res.max_ctx)
            usable = (" — the most this model can use (RoPE scaling included)"
                      if res.max_ctx >= res.usable_ctx > 0 else "")
            self.max_context_label.setText(
                f"<b>Largest context that fits:</b> {res.max_ctx:,} tokens in {where} with "
                f"these settings{usable} (green under the context slider)"
            )
        elif res.verdict is not None and (res.estimate.devices or res.verdict.host is not None):
            self.controls.set_max_context(0)
            self.max_context_label.setText(
                f"<b>No context fits</b> in {where} with these settings: see what would help "
                "below."
            )
        else:
            self.controls.set_max_context(None)
            self.max_context_label.setText("CPU only: the host's RAM is not known here.")
        for a in res.advice:
            self.advice_list.addItem(a.text())
        if not res.advice:
            self.advice_list.addItem("Nothing to suggest: no change saves memory here.")

    def _on_session_planner_failed(self, text: str) -> None:
        self.max_context_label.setText(f"The planner failed: {text}")

    # ------------------------------------------------------------------ showing
    def _show_path(self, path: Path) -> None:
        if self.path_edit.text() != str(path):
            self.path_edit.setText(str(path))

    def _show_controls(self) -> None:
        """The controls for the model and engine, holding the session's plan."""
        s = self.session
        self.controls.configure(s.model.info if s.model else None, s.engine, s.context_scaling)
        self.controls.show_plan(s.plan, s.margin_mib, s.gpu_memory_utilization)

    def _show_estimate(self, est: Estimate) -> None:
        s = self.session
        caps, margin = s.capacities, s.margin_mib
        self._ensure_gpu_bars(len(est.devices))
        for bar, dev, cap in zip(self.gpu_bars, est.devices, caps.gpu_mib, strict=False):
            bar.show_device(dev, cap, margin)
        self.host_bar.show_device(est.host, caps.host_ram_mib)
        if s.vllm is None:
            self._show_verdict(est)
        else:
            self._show_measured(max((d.total_mib for d in est.devices), default=0.0))
        self._show_context_note()

    def _show_verdict(self, est: Estimate) -> None:
        """The headline (naming each device that does not fit) and the host's bar."""
        verdict = self.session.verdict
        assert verdict is not None
        self.host_bar.show_host(est.host, verdict.host)
        text = verdict.headline(self.session.margin_mib)
        self._set_fit(verdict.fits, f"CPU only. {text}" if verdict.cpu_only else text)
        self._show_measured(verdict.peak_mib, cpu_only=verdict.cpu_only)

    def _show_context_note(self) -> None:
        advice = self.session.context_advice
        self.context_note_label.setText(advice.note if advice is not None else "")
        self.context_note_label.setVisible(advice is not None)

    def _show_vllm(self, v: VllmEstimate) -> None:
        fits = bool(self.session.verdict and self.session.verdict.fits)
        self._set_fit(
            fits,
            f"{'Fits' if fits else 'Does not fit'}: KV cache for {v.kv_cache_tokens:,} tokens, "
            f"{v.max_concurrency:.2f} requests of {v.max_model_len:,} at once",
        )
        self.controls.set_max_context(v.kv_cache_tokens)
        self.max_context_label.setText("<br>".join(v.estimate.notes))
        self.advice_list.clear()

    def _show_measured(self, peak: float, *, cpu_only: bool = False) -> None:
        text = (f"<b>Estimated</b> {mib(peak)} of host RAM (the engine's buffers)."
                if cpu_only else
                f"<b>Estimated</b> {mib(peak)} on the fullest GPU (the engine's buffers and "
                "the CUDA runtime).")
        rec = self.session.last_run
        if rec is not None:
            residual = rec.residual_mib
            text += (
                f"<br><b>Measured last time</b> for this plan on this {rec.key.gpu_model} with "
                f"{ENGINE_TITLES.get(rec.key.engine, rec.key.engine)} {rec.key.engine_version}: "
                f"{mib(rec.measured_mib)} against {mib(rec.estimated_mib)} estimated "
                f"({residual:+,.0f} MiB); this plan so corrected: about {mib(peak + residual)}."
            )
        else:
            text += " Not yet measured for this plan here: a started backend records it."
        speed = self.session.measured_speed
        if speed is not None and speed.decode_tps is not None:
            prompt = (f", prompt {speed.prompt_tps:,.1f} tokens/s"
                      if speed.prompt_tps is not None else "")
            text += (f"<br><b>Measured tokens/s</b> (Bench, this {speed.key.gpu_model}): "
                     f"decode {speed.decode_tps:,.1f} tokens/s{prompt}.")
        self.measure_label.setText(text)

    def _set_fit(self, fits: bool, text: str) -> None:
        self.fit_label.setText(text)
        self.fit_label.setStyleSheet(f"color: {'#15803d' if fits else '#b91c1c'};")

    def _ensure_gpu_bars(self, n: int) -> None:
        while len(self.gpu_bars) < n:
            bar = DeviceBarWidget(f"GPU {len(self.gpu_bars)}")
            self.bars_layout.addWidget(bar)
            self.gpu_bars.append(bar)
        while len(self.gpu_bars) > n:
            bar = self.gpu_bars.pop()
            self.bars_layout.removeWidget(bar)
            bar.deleteLater()

    def _clear_results(self) -> None:
        self._ensure_gpu_bars(0)
        self.host_bar.hide()
        self.fit_label.setText("")
        self.measure_label.setText("")
        self.max_context_label.setText("")
        self.context_note_label.hide()
        self.advice_list.clear()
        self.controls.set_max_context(None)

    # ------------------------------------------------------------------ library and GPUs
    def _fill_library(self, entries: list[Entry]) -> None:
        self.session.know_library(entries)
        models = FitSession.models_among(entries)
        self.library_box.clear()
        self.library_box.addItem("Library…", None)
        for e in models:
            self.library_box.addItem(e.name or Path(e.path).name, e)
        self.library_box.setVisible(bool(models))

    def _on_library_scanned(self, report: Any) -> None:
        self._fill_library(list(report.entries))

    def _on_library_box_activated(self, index: int) -> None:
        entry = self.library_box.itemData(index)
        if isinstance(entry, Entry):
            self.session.choose_entry(entry)

    def _on_monitor_snapshot_ready(self, snapshot: Snapshot) -> None:
        self.session.follow_snapshot(snapshot)

    # ------------------------------------------------------------------ user actions
    def _on_path_edit_return_pressed(self) -> None:
        text = self.path_edit.text().strip()
        if text:
            self.session.choose_path(Path(text).expanduser())

    def _on_browse_button_clicked(self) -> None:
        text = self.path_edit.text()
        start = str(Path(text).expanduser().parent) if text else ""
        path, _ = QFileDialog.getOpenFileName(
            self, "Pick a model", start, "GGUF models (*.gguf);;All files (*)"
        )
        if path:
            self.session.choose_path(Path(path))

    def _on_engine_box_current_index_changed(self, index: int) -> None:
        self.session.choose_engine(str(self.engine_box.itemData(index)))

    def _on_gpu_edit_editing_finished(self) -> None:
        self.session.set_gpu_memory(self.gpu_edit.text())

    def _on_controls_changed(self) -> None:
        c = self.controls
        self.session.set_plan(
            c.plan(), margin_mib=c.margin_mib, gpu_memory_utilization=c.gpu_memory_utilization
        )

    def _on_plan_timer_timeout(self) -> None:
        self.session.run_planner()

    def _on_start_button_clicked(self) -> None:
        chosen = self.session.chosen()
        if chosen is None:
            self._services.notifier.warning("Pick a model whose estimate shows first.")
            return
        receivers = self.isSignalConnected(QMetaMethod.fromSignal(self.plan_started))
        self.plan_started.emit(chosen)
        if not receivers:
            self._services.notifier.info(
                f"The {ENGINE_TITLES[chosen.engine]} plan for {chosen.model_path.name} "
                "was handed to Backends; the Backends page will start it once it is there."
            )


def fit_page(services: Services, open_settings: Callable[[], None]) -> QWidget:
    """The registry's factory: the Library service is used when the services carry one."""
    return FitPage(services, getattr(services, "library", None))
