"""The Fit page: will this model and plan fit these GPUs, how much each holds, what would help.

The bars follow every slider move: `estimate_llamacpp` costs a few milliseconds, so it runs
on the GUI thread, cached per plan. What costs more (reading the header, `plan_fit`'s
bisection for the largest context and its advice, vLLM's folder reads) runs on the task
runner, debounced, and a result that an edit has overtaken is dropped.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import shiboken6
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

from app.errors import UserError
from app.fit.calibration import CalibrationRecord, CalibrationStore
from app.fit.explainer import Setting, explain
from app.fit.llamacpp_estimate import estimate_llamacpp
from app.fit.model_info import ModelInfo, model_info
from app.fit.plan import Estimate, FitPlan
from app.fit.planner import FitResult, plan_fit
from app.fit.vllm_estimate import VllmEstimate, VllmPlan, estimate_vllm
from app.library.gguf import GgufError, GgufHeader, read_gguf_header
from app.telemetry.snapshot import Snapshot
from ui.fit_bars import DeviceBarWidget, mib
from ui.fit_controls import DEFAULT_CONTEXT, PlanControlsPanel
from ui.fit_explainer import ModelSettingsTable
from ui.services import Services

log = logging.getLogger(__name__)

MODEL_ENV = "RIGDECK_FIT_MODEL"
"""A model to open the page with (overrides the `fit_model_path` setting; screenshots)."""
GPU_MEMORY_ENV = "RIGDECK_FIT_GPU_MEMORY"
"""MiB per GPU to plan for, e.g. 98304 (overrides `fit_gpu_memory_mib`)."""
CONTEXT_ENV = "RIGDECK_FIT_CONTEXT"
EXPERTS_ENV = "RIGDECK_FIT_EXPERTS"
PLAN_DEBOUNCE_MS = 150
ENGINES = (("llama.cpp", "llamacpp"), ("vLLM", "vllm"))
ENGINE_TITLES = {key: title for title, key in ENGINES}
ESTIMATE_CACHE_SIZE = 256
SYNC_ESTIMATE_BUDGET_MS = 30.0
"""An estimate slower than this (a big model on a slow CPU) moves later ones to a worker,
so a slider move never holds the GUI thread past a frame or two."""


@dataclass(frozen=True)
class ChosenPlan:
    """What "Start with this plan" hands on: the model, the engine and its plan."""

    model_path: Path
    engine: str
    plan: FitPlan | VllmPlan
    margin_mib: float


@dataclass(frozen=True)
class LoadedModel:
    """A model read off the GUI thread: a GGUF header, or a Hugging Face folder for vLLM."""

    path: Path
    header: GgufHeader | None = None
    info: ModelInfo | None = None
    settings: list[Setting] = field(default_factory=list)
    description: str = ""
    last_runs: dict[str, CalibrationRecord] = field(default_factory=dict)


def parse_gpu_memory(text: str) -> list[float]:
    """MiB per GPU from "98304" or "24576, 24576"; empty: no GPU (a CPU-only plan).

    Raises:
        UserError: a value that is not a positive number.
    """
    out = []
    for raw in text.replace(";", ",").split(","):
        part = raw.strip().lower().removesuffix("mib").strip()
        if not part:
            continue
        try:
            value = float(part)
        except ValueError:
            raise UserError(
                f"GPU memory must be MiB per GPU, e.g. 98304 or 24576,24576; not {part!r}"
            ) from None
        if value <= 0:
            raise UserError("GPU memory must be a positive number of MiB")
        out.append(value)
    return out


def _read_model(path: Path, data_dir: Path, gpu_model: str) -> LoadedModel:
    """Read what the page needs from `path` (worker thread).

    Raises:
        UserError: the path is missing or not a model the planners can read.
    """
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    store = CalibrationStore(data_dir)
    host = socket.gethostname()
    last_runs = {
        engine: rec
        for _, engine in ENGINES
        if (rec := store.last_run(host, gpu_model, engine)) is not None
    }
    if path.is_dir():
        cfg = path / "config.json"
        if not cfg.is_file():
            raise UserError(f"{path} is a folder without config.json: not a Hugging Face model")
        try:
            config = json.loads(cfg.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UserError(f"{cfg}: unreadable ({exc})") from None
        arch = ", ".join(config.get("architectures") or []) or config.get("model_type", "?")
        layers = config.get("num_hidden_layers", "?")
        return LoadedModel(
            path, description=f"{path.name} · {arch} · {layers} layers", last_runs=last_runs
        )
    try:
        header = read_gguf_header(path)
    except (GgufError, OSError) as exc:
        raise UserError(f"{path.name} is not a readable GGUF model ({exc})") from None
    info = model_info(header)
    return LoadedModel(path, header, info, explain(info), _describe(header, info), last_runs)


def _describe(header: GgufHeader, info: ModelInfo) -> str:
    """One line on the model: its name, shape and, where it matters, that it is incomplete."""
    name = header.get("general.name")
    parts = [str(name) if name else header.path.name, info.arch, f"{info.n_layer} layers"]
    if info.is_moe:
        parts.append(f"{info.n_expert} experts, {info.n_expert_used} per token")
    if info.n_ctx_train:
        parts.append(f"trained context {info.n_ctx_train:,}")
    parts.append(f"{header.tensor_data_bytes / 2**30:,.1f} GiB of weights")
    text = " · ".join(parts)
    if not header.complete:
        text += " · header only: the file holds no tensor data"
    return f"{text}\n{header.path}"


def _weakly(slot: Callable[..., None], *bound: Any) -> Callable[[Any], None]:
    """`slot(*bound, value)` if its page is still alive, holding the page only weakly.

    The task runner's future keeps its callbacks until the worker thread lets go of it;
    a page held there could be freed on that thread, which PySide 6.12 cannot do safely
    (a crash in BindingManager::runDeletionInMainThread). A page gone meanwhile (closed,
    C++ side deleted) just drops the result.
    """
    ref = weakref.WeakMethod(slot)

    def call(value: Any) -> None:
        method = ref()
        if method is not None and shiboken6.isValid(getattr(method, "__self__", None)):
            method(*bound, value)

    return call


class _LibraryBridge(QObject):
    """Hops the library's scan events (from its thread) to the GUI thread."""

    scanned = Signal(object)


class FitPage(QWidget):
    """Pick a model, an engine and GPUs; move the plan; read what each device will hold."""

    plan_started = Signal(object)
    """A `ChosenPlan`, when the user presses "Start with this plan" (the Backends page)."""

    def __init__(self, services: Services, library: Any | None = None) -> None:
        super().__init__()
        self._services = services
        self._settings = services.settings
        self.model: LoadedModel | None = None
        self.estimate: Estimate | None = None
        self.result: FitResult | None = None
        self.vllm: VllmEstimate | None = None
        self.last_update_ms = 0.0
        self._cache: dict[FitPlan, Estimate] = {}
        self._estimate_in_background = False
        self._estimating = False
        self._wanted: FitPlan | None = None
        self._load_seq = 0
        self._plan_seq = 0
        self._plan_running = False
        self._plan_dirty = False
        self._initial = _initial_values(services)
        self._gpu_names: list[str] = []
        self._gpu_field_from_monitor = False
        self._library = library

        self._build()
        self._plan_timer = QTimer(self)
        self._plan_timer.setSingleShot(True)
        self._plan_timer.setInterval(PLAN_DEBOUNCE_MS)
        self._plan_timer.timeout.connect(self._on_plan_timer_timeout)

        self.controls.changed.connect(self._on_controls_changed)
        services.monitor.snapshot_ready.connect(self._on_monitor_snapshot_ready)
        if services.monitor.latest is not None:
            self._on_monitor_snapshot_ready(services.monitor.latest)
        if library is not None:
            self._bridge = _LibraryBridge(self)
            self._bridge.scanned.connect(self._on_library_scanned)
            library.scanned.connect(self._bridge.scanned.emit)
            self._fill_library(library.entries)
        if self._initial["model"]:
            self.path_edit.setText(self._initial["model"])
            self.load_model(Path(self._initial["model"]).expanduser())
        else:
            self._show_empty()

    # ------------------------------------------------------------------ building
    def _build(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(12, 8, 12, 8)
        outer.addLayout(self._build_picker())
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
        self.gpu_edit = QLineEdit(self._initial["gpu_memory"])
        self.gpu_edit.setPlaceholderText("MiB per GPU, e.g. 98304")
        self.gpu_edit.setToolTip(
            "MiB per GPU, comma-separated for several (e.g. 24576,24576); empty: CPU only"
        )
        self.gpu_edit.setMaximumWidth(150)
        self.gpu_edit.editingFinished.connect(self._on_gpu_edit_editing_finished)
        pick.addWidget(self.gpu_edit)
        pick.addWidget(QLabel("MiB"))
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
        self.advice_title = QLabel("<b>What would help</b> (MiB saved on the fullest GPU)")
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

    # ------------------------------------------------------------------ model
    @property
    def engine(self) -> str:
        return str(self.engine_box.currentData())

    def load_model(self, path: Path) -> None:
        """Read `path` off the GUI thread; the page shows it (or why not) when done."""
        self._load_seq += 1
        seq = self._load_seq
        self.model_label.setText(f"Reading {path.name}…")
        self._hide_error()
        data_dir = self._services.paths.data
        gpu_model = self._gpu_names[0] if self._gpu_names else ""
        self._services.tasks.run(
            lambda: _read_model(path, data_dir, gpu_model),
            description=f"Reading {path}",
            on_done=_weakly(self._on_model_read, seq),
            on_error=_weakly(self._on_model_failed, seq, path),
        )

    def _on_model_read(self, seq: int, loaded: LoadedModel) -> None:
        if seq != self._load_seq:
            return
        self.model = loaded
        self._cache.clear()
        self._estimate_in_background = False
        self.result = None
        self.vllm = None
        self.model_label.setText(loaded.description)
        self.settings_table.show_settings(loaded.settings)
        if loaded.header is None and self.engine == "llamacpp":
            self.engine_box.setCurrentIndex(1)  # a folder: vLLM is what serves it
        self.controls.configure(loaded.info, self.engine)
        self._apply_initial_plan(loaded.info)
        self._refresh()

    def _on_model_failed(self, seq: int, path: Path, exc: BaseException) -> None:
        if seq != self._load_seq:
            return
        if isinstance(exc, UserError):
            text = str(exc)
        else:
            log.error("reading %s failed", path, exc_info=exc)
            text = f"{path.name} could not be read: {exc or type(exc).__name__}"
        self.model = None
        self.estimate = None
        self.settings_table.show_settings([])
        self.model_label.setText(str(path))
        self._show_error(text)
        self._clear_results()

    def _apply_initial_plan(self, info: ModelInfo | None) -> None:
        """The context and experts the page was opened with, once (settings or environment)."""
        if "context" not in self._initial:
            return
        ctx, experts = self._initial.pop("context"), self._initial.pop("experts", "")
        controls = self.controls
        controls.blockSignals(True)
        controls.context.setValue(int(ctx) if ctx and int(ctx) > 0 else DEFAULT_CONTEXT)
        if info is not None and info.is_moe and experts and int(experts) > 0:
            controls.experts.setValue(min(int(experts), info.n_expert))
        controls.blockSignals(False)

    # ------------------------------------------------------------------ estimating
    def _capacities(self) -> list[float]:
        return parse_gpu_memory(self.gpu_edit.text())

    def current_plan(self) -> FitPlan:
        """The llama.cpp plan the controls and the GPU field describe.

        Raises:
            UserError: the GPU memory field cannot be read.
        """
        return self.controls.plan(self._capacities())

    def _refresh(self) -> None:
        """Re-estimate for the current controls: bars now, max context and advice later."""
        if self.model is None:
            return
        started = time.perf_counter()
        try:
            capacities = self._capacities()
            if self.engine == "vllm":
                self._refresh_vllm(capacities)
                return
            if self.model.header is None:
                raise UserError(
                    "llama.cpp runs GGUF files; this is a Hugging Face folder: "
                    "choose vLLM, or pick a GGUF file"
                )
            plan = self.controls.plan(capacities)
            est = self._cache.get(plan)
            if est is None and self._estimate_in_background:
                self._estimate_later(self.model.header, plan)
                return
            if est is None:
                before = time.perf_counter()
                est = estimate_llamacpp(self.model.header, plan)
                cost_ms = (time.perf_counter() - before) * 1000
                if cost_ms > SYNC_ESTIMATE_BUDGET_MS:
                    log.info(
                        "estimates take %.0f ms for this model: now off the GUI thread", cost_ms
                    )
                    self._estimate_in_background = True
                self._remember_estimate(plan, est)
        except UserError as exc:
            self._show_error(str(exc))
            self._clear_results()
            return
        self._hide_error()
        self.estimate = est
        self._show_estimate(est, capacities)
        self.last_update_ms = (time.perf_counter() - started) * 1000
        log.debug("fit estimate shown in %.1f ms", self.last_update_ms)
        self._plan_timer.start()

    def _remember_estimate(self, plan: FitPlan, est: Estimate) -> None:
        if len(self._cache) >= ESTIMATE_CACHE_SIZE:
            self._cache.clear()
        self._cache[plan] = est

    def _estimate_later(self, header: GgufHeader, plan: FitPlan) -> None:
        """Estimate on the task runner (a model too big to estimate within a frame).

        One at a time: moves made meanwhile are not queued; when the running one returns,
        `_refresh` shows it if still current, or estimates the newest plan next.
        """
        self._wanted = plan
        if self._estimating:
            return
        self._estimating = True
        self._services.tasks.run(
            lambda: estimate_llamacpp(header, plan),
            description="Estimating the plan",
            on_done=_weakly(self._on_estimated, header, plan),
            on_error=_weakly(self._on_estimate_failed, header, plan),
        )

    def _on_estimated(self, header: GgufHeader, plan: FitPlan, est: Estimate) -> None:
        self._estimating = False
        if self.model is None or self.model.header is not header:
            return
        self._remember_estimate(plan, est)
        self._refresh()

    def _on_estimate_failed(self, header: GgufHeader, plan: FitPlan, exc: BaseException) -> None:
        self._estimating = False
        if self.model is None or self.model.header is not header:
            return
        if plan != self._wanted:
            self._refresh()
        elif isinstance(exc, UserError):
            self._show_error(str(exc))
            self._clear_results()
        else:
            log.error("estimating the plan failed", exc_info=exc)
            self._show_error(f"The estimate failed: {exc or type(exc).__name__}")
            self._clear_results()

    def _show_estimate(self, est: Estimate, capacities: list[float]) -> None:
        margin = self.controls.margin_mib
        self._ensure_gpu_bars(len(est.devices))
        for bar, dev, cap in zip(self.gpu_bars, est.devices, capacities, strict=False):
            bar.show_device(dev, cap, margin)
        self.host_bar.show_device(est.host, _host_ram_mib(self._services))
        over = [
            (dev, dev.total_mib - (cap - margin))
            for dev, cap in zip(est.devices, capacities, strict=False)
            if dev.total_mib > cap - margin
        ]
        if not est.devices:
            self._set_fit(True, f"CPU only: {mib(est.host.total_mib)} of host RAM")
        elif over:
            dev, by = max(over, key=lambda x: x[1])
            self._set_fit(False, f"Does not fit: {dev.name} is {mib(by)} over (with the margin)")
        else:
            peak = max(d.total_mib for d in est.devices)
            self._set_fit(True, f"Fits: {mib(peak)} on the fullest GPU, margin {mib(margin)} kept")
        self._show_measured(est)

    def _show_measured(self, est: Estimate) -> None:
        peak = max((d.total_mib for d in est.devices), default=est.host.total_mib)
        text = f"<b>Estimated</b> {mib(peak)} per GPU (the engine's buffers and the CUDA runtime)."
        rec = self.model.last_runs.get(self.engine) if self.model else None
        if rec is not None:
            residual = rec.residual_mib
            text += (
                f"<br><b>Measured last time</b> on this {rec.key.gpu_model or 'machine'} with "
                f"{ENGINE_TITLES.get(rec.key.engine, rec.key.engine)} {rec.key.engine_version}: "
                f"{mib(rec.measured_mib)} against {mib(rec.estimated_mib)} estimated "
                f"({residual:+,.0f} MiB); this plan so corrected: about {mib(peak + residual)}."
            )
        else:
            text += " Not yet measured on this machine: a started backend records it."
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
        self.estimate = None
        self._ensure_gpu_bars(0)
        self.host_bar.hide()
        self.fit_label.setText("")
        self.measure_label.setText("")
        self.max_context_label.setText("")
        self.advice_list.clear()
        self.controls.set_max_context(None)

    def _show_empty(self) -> None:
        self.model_label.setText(
            "Pick a model: a GGUF file for llama.cpp, or a Hugging Face folder for vLLM."
        )
        self._clear_results()

    # ------------------------------------------------------------------ planning (worker)
    def _run_plan(self) -> None:
        """plan_fit for the current plan on the task runner; one at a time, the latest wins."""
        model, est = self.model, self.estimate
        if model is None or model.header is None or est is None or self.engine != "llamacpp":
            return
        if self._plan_running:
            self._plan_dirty = True
            return
        try:
            capacities = self._capacities()
        except UserError:
            return
        plan, margin, header = (
            self.controls.plan(capacities),
            self.controls.margin_mib,
            model.header,
        )
        self._remember_plan(plan)
        self._plan_seq += 1
        seq = self._plan_seq
        self._plan_running = True
        self.max_context_label.setText("Working out the largest context and what would help…")
        self._services.tasks.run(
            lambda: plan_fit(header, plan, capacities if plan.on_gpu else [], margin),
            description="Planning the fit",
            on_done=_weakly(self._on_plan_done, seq, plan),
            on_error=_weakly(self._on_plan_failed, seq),
        )

    def _on_plan_done(self, seq: int, plan: FitPlan, res: FitResult) -> None:
        self._plan_running = False
        if self._plan_dirty:
            self._plan_dirty = False
            self._run_plan()
            return
        if seq != self._plan_seq or self.estimate is None:
            return
        self.result = res
        fits_now = all(
            d.total_mib <= cap - self.controls.margin_mib
            for d, cap in zip(self.estimate.devices, plan.gpu_memory_mib, strict=False)
        )
        if plan.on_gpu:
            self.controls.set_max_context(res.max_ctx)
            if res.max_ctx:
                self.max_context_label.setText(
                    f"<b>Largest context that fits:</b> {res.max_ctx:,} tokens "
                    "with these settings and the margin (green under the context slider)"
                )
            else:
                self.max_context_label.setText(
                    "<b>No context fits</b> with these settings: see what would help below."
                )
        else:
            self.controls.set_max_context(None)
            self.max_context_label.setText("CPU only: the context is bounded by host RAM.")
        self.advice_list.clear()
        for a in res.advice:
            then = " — then fits" if a.fits and not fits_now else ""
            self.advice_list.addItem(f"{a.change}: saves {a.saves_mib:,.0f} MiB{then}")
        if not res.advice:
            self.advice_list.addItem("Nothing to suggest: no change saves memory here.")

    def _on_plan_failed(self, seq: int, exc: BaseException) -> None:
        self._plan_running = False
        if seq != self._plan_seq:
            return
        log.warning("plan_fit failed", exc_info=exc)
        self.max_context_label.setText(f"The planner failed: {exc}")

    def _remember_plan(self, plan: FitPlan) -> None:
        info = self.model.info if self.model else None
        self._settings.set("fit_context", plan.ctx)
        if info is not None and info.is_moe:
            self._settings.set("fit_experts", plan.experts or 0)

    # ------------------------------------------------------------------ vLLM (worker)
    def _refresh_vllm(self, capacities: list[float]) -> None:
        model = self.model
        assert model is not None
        if model.header is not None:
            raise UserError(
                "vLLM serves Hugging Face folders (config.json and safetensors); this is a "
                "GGUF file: pick a folder, or plan it for llama.cpp"
            )
        if not capacities:
            raise UserError("vLLM needs at least one GPU: enter its memory in MiB")
        self._hide_error()
        vplan = self._vllm_plan(capacities)
        self._plan_seq += 1
        seq = self._plan_seq
        folder = model.path
        self._services.tasks.run(
            lambda: estimate_vllm(folder, vplan),
            description=f"Estimating vLLM for {folder.name}",
            on_done=_weakly(self._on_vllm_done, seq, capacities),
            on_error=_weakly(self._on_vllm_failed, seq),
        )

    def _vllm_plan(self, capacities: list[float]) -> VllmPlan:
        c = self.controls
        return VllmPlan(
            tensor_parallel=len(capacities),
            gpu_memory_utilization=c.gpu_memory_utilization,
            gpu_memory_mib=min(capacities),
            max_model_len=c.context.value(),
            max_num_seqs=c.parallel.value(),
        )

    def _on_vllm_done(self, seq: int, capacities: list[float], v: VllmEstimate) -> None:
        if seq != self._plan_seq or self.engine != "vllm":
            return
        self.vllm = v
        self.estimate = v.estimate
        self._show_estimate(v.estimate, capacities)
        fits = v.kv_cache_tokens >= v.max_model_len
        self._set_fit(
            fits,
            f"{'Fits' if fits else 'Does not fit'}: KV cache for {v.kv_cache_tokens:,} tokens, "
            f"{v.max_concurrency:.2f} requests of {v.max_model_len:,} at once",
        )
        self.controls.set_max_context(v.kv_cache_tokens)
        self.max_context_label.setText("<br>".join(v.estimate.notes))
        self.advice_list.clear()

    def _on_vllm_failed(self, seq: int, exc: BaseException) -> None:
        if seq != self._plan_seq:
            return
        self._show_error(str(exc) if isinstance(exc, UserError) else f"vLLM estimate failed: {exc}")
        self._clear_results()

    # ------------------------------------------------------------------ messages
    def _show_error(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.show()

    def _hide_error(self) -> None:
        self.error_label.hide()
        self.host_bar.show()

    @property
    def error_text(self) -> str:
        """The problem the page shows, or "" (for tests and the status line)."""
        return self.error_label.text() if not self.error_label.isHidden() else ""

    # ------------------------------------------------------------------ library and GPUs
    def _fill_library(self, entries: list[Any]) -> None:
        models = [
            e
            for e in entries
            if getattr(e, "kind", "") == "model" and not getattr(e, "error", None)
        ]
        self.library_box.clear()
        self.library_box.addItem("Library…", None)
        for e in models:
            self.library_box.addItem(e.name or Path(e.path).name, str(e.path))
        self.library_box.setVisible(bool(models))

    def _on_library_scanned(self, report: Any) -> None:
        self._fill_library(list(report.entries))

    def _on_library_box_activated(self, index: int) -> None:
        path = self.library_box.itemData(index)
        if path:
            self._pick(Path(path))

    def _on_monitor_snapshot_ready(self, snapshot: Snapshot) -> None:
        gpus = [g for g in snapshot.gpus if not g.lost and g.memory_total_mib]
        self._gpu_names = [g.name for g in gpus]
        if not gpus:
            return
        self.gpu_hint_label.setText(
            "GPUs seen by the monitor: "
            + "; ".join(f"GPU {g.index} {g.name}, {g.memory_total_mib:,.0f} MiB" for g in gpus)
        )
        detected = ",".join(f"{g.memory_total_mib:.0f}" for g in gpus)
        if (not self.gpu_edit.text().strip() or self._gpu_field_from_monitor) and (
            self.gpu_edit.text() != detected
        ):
            self._gpu_field_from_monitor = True
            self.gpu_edit.setText(detected)
            self._refresh()

    # ------------------------------------------------------------------ user actions
    def _pick(self, path: Path) -> None:
        self.path_edit.setText(str(path))
        self._settings.set("fit_model_path", str(path))
        self.load_model(path)

    def _on_path_edit_return_pressed(self) -> None:
        text = self.path_edit.text().strip()
        if text:
            self._pick(Path(text).expanduser())

    def _on_browse_button_clicked(self) -> None:
        text = self.path_edit.text()
        start = str(Path(text).expanduser().parent) if text else ""
        path, _ = QFileDialog.getOpenFileName(
            self, "Pick a model", start, "GGUF models (*.gguf);;All files (*)"
        )
        if path:
            self._pick(Path(path))

    def _on_engine_box_current_index_changed(self, index: int) -> None:
        self.controls.configure(self.model.info if self.model else None, self.engine)
        self.result = None
        self._refresh()

    def _on_gpu_edit_editing_finished(self) -> None:
        self._gpu_field_from_monitor = False
        self._settings.set("fit_gpu_memory_mib", self.gpu_edit.text().strip())
        self._refresh()

    def _on_controls_changed(self) -> None:
        self._refresh()

    def _on_plan_timer_timeout(self) -> None:
        self._run_plan()

    def _on_start_button_clicked(self) -> None:
        if self.model is None or self.estimate is None:
            self._services.notifier.warning("Pick a model whose estimate shows first.")
            return
        capacities = self._capacities()
        plan: FitPlan | VllmPlan = (
            self._vllm_plan(capacities) if self.engine == "vllm" else self.controls.plan(capacities)
        )
        chosen = ChosenPlan(self.model.path, self.engine, plan, self.controls.margin_mib)
        receivers = self.isSignalConnected(QMetaMethod.fromSignal(self.plan_started))
        self.plan_started.emit(chosen)
        if not receivers:
            self._services.notifier.info(
                f"The {ENGINE_TITLES[self.engine]} plan for {self.model.path.name} "
                "was handed to Backends; the Backends page will start it once it is there."
            )


def _host_ram_mib(services: Services) -> float | None:
    """The host's RAM, from the monitor's last reading, else psutil (None if unknown)."""
    latest = services.monitor.latest
    if latest is not None and latest.host is not None:
        return float(latest.host.ram_total_mib)
    try:
        import psutil

        return float(psutil.virtual_memory().total) / 2**20
    except Exception:  # a host reading is a nicety; the page works without it
        return None


def _initial_values(services: Services) -> dict[str, str]:
    """What the page opens with: the environment (screenshots, demos) over the settings."""
    s = services.settings
    values = {
        "model": os.environ.get(MODEL_ENV) or s.get("fit_model_path"),
        "gpu_memory": os.environ.get(GPU_MEMORY_ENV) or s.get("fit_gpu_memory_mib"),
        "context": os.environ.get(CONTEXT_ENV) or str(s.get("fit_context") or ""),
        "experts": os.environ.get(EXPERTS_ENV) or str(s.get("fit_experts") or ""),
    }
    for key in ("context", "experts"):
        if values[key] and not values[key].strip().isdigit():
            log.warning("ignoring %s=%r: not a whole number", key, values[key])
            values[key] = ""
    return {k: str(v).strip() for k, v in values.items()}


def fit_page(services: Services, open_settings: Callable[[], None]) -> QWidget:
    """The registry's factory: the Library service is used when the services carry one."""
    return FitPage(services, getattr(services, "library", None))
