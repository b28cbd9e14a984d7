"""The Fit page's plan controls: one slider or toggle per plan field, for llama.cpp and vLLM.

The panel owns no numbers of its own beyond the widgets: `plan()` reads them into a
`FitPlan` (the session adds the GPUs and settles the defaults), `show_plan()` writes one
back, and `changed` fires on every edit so the page can hand it to the session at once.
"""

from __future__ import annotations

import logging
from typing import cast

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPalette, QValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QWidget,
)

from app.fit.context_scaling import DEFAULT_YARN_FACTOR, RopeScaling
from app.fit.model_info import ModelInfo
from app.fit.plan import FitPlan
from app.fit.planner import DEFAULT_MARGIN_MIB, context_limits
from app.fit.session import DEFAULT_CONTEXT, DEFAULT_GPU_MEMORY_UTILIZATION

log = logging.getLogger(__name__)

KV_CACHE_TYPES = ("f16", "bf16", "q8_0", "q5_1", "q5_0", "q4_1", "q4_0", "iq4_nl")
BATCH_SIZES = (128, 256, 512, 1024, 2048, 4096, 8192)
UBATCH_SIZES = (32, 64, 128, 256, 512, 1024, 2048, 4096)


class CappedSpinBox(QSpinBox):
    """A spin box that takes a number over its maximum and turns it into the maximum,
    emitting `capped(typed)`, so the page can say why. A plain QSpinBox drops the keystroke
    that goes over: 200000 typed into a box whose maximum is 131072 read 20000."""

    capped = Signal(int)

    def validate(self, text: str, pos: int) -> tuple[QValidator.State, str, int]:
        state, text, pos = super().validate(text, pos)
        if state == QValidator.State.Invalid and self._over_maximum(text) is not None:
            state = QValidator.State.Intermediate  # fixed up on Enter or leaving the box
        return state, text, pos

    def fixup(self, text: str) -> str:
        typed = self._over_maximum(text)
        if typed is None:
            return str(super().fixup(text))
        self.capped.emit(typed)
        return str(self.maximum())

    def _over_maximum(self, text: str) -> int | None:
        digits = text.removeprefix(self.prefix()).removesuffix(self.suffix()).strip()
        digits = digits.replace(",", "").replace(" ", "")
        if digits.isdigit() and int(digits) > self.maximum():
            return int(digits)
        return None


class SliderSpinWidget(QWidget):
    """A slider with a spin box beside it (drag, or type an exact value); one `valueChanged`."""

    valueChanged = Signal(int)  # noqa: N815 - named like Qt's own signal, which it mirrors

    def __init__(
        self,
        lo: int,
        hi: int,
        value: int,
        step: int = 1,
        page: int = 0,
        *,
        below: QWidget | None = None,
    ) -> None:
        super().__init__()
        layout = QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setVerticalSpacing(0)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.spin = CappedSpinBox()
        self.spin.setKeyboardTracking(False)
        self.spin.setMinimumWidth(86)
        self.spin.setAlignment(Qt.AlignmentFlag.AlignRight)
        for w in (self.slider, self.spin):
            w.setRange(lo, hi)
            w.setSingleStep(step)
            w.setValue(value)
        self._page = page
        self.slider.setPageStep(page or max(step, (hi - lo) // 10))
        layout.addWidget(self.slider, 0, 0)
        layout.addWidget(self.spin, 0, 1)
        layout.setColumnStretch(0, 1)
        if below is not None:  # e.g. the fitting range, drawn exactly under the slider
            layout.addWidget(below, 1, 0)
        self.slider.valueChanged.connect(self._on_slider_value_changed)
        self.spin.valueChanged.connect(self._on_spin_value_changed)

    def value(self) -> int:
        return self.spin.value()

    def setValue(self, value: int) -> None:
        self.spin.setValue(value)

    def setRange(self, lo: int, hi: int) -> None:
        for w in (self.slider, self.spin):
            w.blockSignals(True)
            w.setRange(lo, hi)
            w.blockSignals(False)
        self.slider.setPageStep(self._page or max(self.slider.singleStep(), (hi - lo) // 10))

    def _on_slider_value_changed(self, value: int) -> None:
        step = self.slider.singleStep()
        if step > 1:  # a drag lands anywhere; keep to the step (context pads to 256 anyway)
            value = max(
                self.slider.minimum(), min(round(value / step) * step, self.slider.maximum())
            )
        if value != self.spin.value():
            self.spin.setValue(value)

    def _on_spin_value_changed(self, value: int) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(value)
        self.slider.blockSignals(False)
        self.valueChanged.emit(value)


class ContextRangeWidget(QWidget):
    """A strip under the context slider: green where the context fits, red beyond the largest."""

    def __init__(self) -> None:
        super().__init__()
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.lo, self.hi = context_limits(None)
        self.max_fit: int | None = None

    def sizeHint(self) -> QSize:
        return QSize(200, 10)

    def set_range(self, lo: int, hi: int) -> None:
        self.lo, self.hi = lo, max(hi, lo + 1)
        self.update()

    def set_max_fit(self, value: int | None) -> None:
        self.max_fit = value
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        rect = QRectF(self.rect())
        # the slider's groove starts and ends about half a handle in from its edges
        inset = 6.0
        groove = rect.adjusted(inset, 2, -inset, -2)
        if self.max_fit is None:
            painter.fillRect(groove, self.palette().color(QPalette.ColorRole.Mid))
        else:
            frac = min(max((self.max_fit - self.lo) / (self.hi - self.lo), 0.0), 1.0)
            split = groove.left() + groove.width() * frac
            painter.fillRect(
                QRectF(groove.left(), groove.top(), split - groove.left(), groove.height()),
                QColor("#22c55e"),
            )
            painter.fillRect(
                QRectF(split, groove.top(), groove.right() - split, groove.height()),
                QColor("#ef4444"),
            )
            if frac < 1.0:  # the largest context that fits, as a tick across the strip
                painter.fillRect(
                    QRectF(split - 1.5, rect.top(), 3, rect.height()),
                    self.palette().color(QPalette.ColorRole.Text),
                )
        painter.end()


class PlanControlsPanel(QWidget):
    """Every plan field as a control; rows that do not apply (MoE-only, engine-only) hide."""

    changed = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.info: ModelInfo | None = None
        self.scaling: RopeScaling | None = None
        self.engine = "llamacpp"
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setColumnStretch(1, 1)
        grid.setVerticalSpacing(6)
        self._grid = grid
        self._rows: dict[str, tuple[QLabel, QWidget, QLabel]] = {}
        self._build_rows()
        self._connect()
        self.configure(None, "llamacpp")

    def _build_rows(self) -> None:
        self.context_range = ContextRangeWidget()
        self.context = SliderSpinWidget(
            *context_limits(None), DEFAULT_CONTEXT, 256, 4096, below=self.context_range
        )
        self.context_max_label = self._small_label_under(self.context)
        self.context_hint = QLabel()
        self._add("context", "Context (tokens)", self.context, self.context_hint)
        self.context_cap_label = self._note_row()
        self.parallel = SliderSpinWidget(1, 32, 1)
        self._add("parallel", "Parallel slots", self.parallel)
        self.cache_k = self._combo(KV_CACHE_TYPES, "f16")
        self.cache_v = self._combo(KV_CACHE_TYPES, "f16")
        kv = QWidget()
        kv_layout = QHBoxLayout(kv)
        kv_layout.setContentsMargins(0, 0, 0, 0)
        kv_layout.addWidget(QLabel("K"))
        kv_layout.addWidget(self.cache_k, 1)
        kv_layout.addWidget(QLabel("V"))
        kv_layout.addWidget(self.cache_v, 1)
        self._add("kv_type", "KV cache type", kv)
        self.flash_attn = QCheckBox("on (-fa on)")
        self.flash_attn.setChecked(True)
        self._add("flash_attn", "Flash attention", self.flash_attn)
        self.batch = self._combo(tuple(str(b) for b in BATCH_SIZES), "2048")
        self.ubatch = self._combo(tuple(str(b) for b in UBATCH_SIZES), "512")
        batches = QWidget()
        b_layout = QHBoxLayout(batches)
        b_layout.setContentsMargins(0, 0, 0, 0)
        b_layout.addWidget(QLabel("batch"))
        b_layout.addWidget(self.batch, 1)
        b_layout.addWidget(QLabel("micro"))
        b_layout.addWidget(self.ubatch, 1)
        self._add("batch", "Batch / micro-batch", batches)
        self.experts = SliderSpinWidget(1, 8, 8)
        self.experts_hint = QLabel()
        self._add("experts", "Experts per token", self.experts, self.experts_hint)
        self.n_cpu_moe = SliderSpinWidget(0, 1, 0)
        self.n_cpu_moe_hint = QLabel()
        self._add("n_cpu_moe", "Experts in RAM", self.n_cpu_moe, self.n_cpu_moe_hint)
        self._rows["n_cpu_moe"][0].setToolTip(
            "--n-cpu-moe N: the expert weights of the first N layers stay in host RAM"
        )
        self.gpu_layers = SliderSpinWidget(0, 1, 1)
        self.gpu_layers.spin.setSpecialValueText("")
        self.gpu_layers_hint = QLabel("all")
        self._add("gpu_layers", "GPU layers (-ngl)", self.gpu_layers, self.gpu_layers_hint)
        self.margin = SliderSpinWidget(0, 8192, int(DEFAULT_MARGIN_MIB), 128, 512)
        self.margin.spin.setSuffix(" MiB")
        self._add("margin", "Safety margin", self.margin)
        self.utilization = SliderSpinWidget(30, 98, round(DEFAULT_GPU_MEMORY_UTILIZATION * 100))
        self.utilization.spin.setSuffix(" %")
        self._add("utilization", "GPU memory utilisation", self.utilization)

    def _connect(self) -> None:
        self.context.spin.capped.connect(self._on_context_spin_capped)
        self.context.valueChanged.connect(self._on_context_value_changed)
        for w in (self.context, self.parallel, self.experts, self.n_cpu_moe, self.margin):
            w.valueChanged.connect(self._on_control_changed)
        self.gpu_layers.valueChanged.connect(self._on_gpu_layers_value_changed)
        self.utilization.valueChanged.connect(self._on_control_changed)
        for c in (self.cache_k, self.cache_v, self.batch, self.ubatch):
            c.currentIndexChanged.connect(self._on_control_changed)
        self.flash_attn.toggled.connect(self._on_control_changed)
        self.experts.valueChanged.connect(self._on_experts_value_changed)

    # ------------------------------------------------------------------ building
    @staticmethod
    def _small_label_under(row: SliderSpinWidget) -> QLabel:
        """A small green label under a row's spin box (the largest context that fits)."""
        label = QLabel()
        label.setAlignment(Qt.AlignmentFlag.AlignRight)
        small = label.font()
        small.setPointSizeF(small.pointSizeF() * 0.85)
        label.setFont(small)
        label.setStyleSheet("color: #15803d;")
        cast(QGridLayout, row.layout()).addWidget(label, 1, 1)
        return label

    def _note_row(self) -> QLabel:
        """A row of its own under the last one, for why a value was changed (hidden)."""
        label = QLabel()
        label.setWordWrap(True)
        label.setStyleSheet("color: #b45309;")
        label.hide()
        self._grid.addWidget(label, self._grid.rowCount(), 1, 1, 2)
        return label

    @staticmethod
    def _combo(items: tuple[str, ...], current: str) -> QComboBox:
        combo = QComboBox()
        combo.addItems(list(items))
        combo.setCurrentText(current)
        return combo

    def _add(self, key: str, title: str, control: QWidget, hint: QLabel | None = None) -> None:
        row = self._grid.rowCount()
        label = QLabel(title)
        hint = hint or QLabel()
        hint.setMinimumWidth(80)
        self._grid.addWidget(label, row, 0)
        self._grid.addWidget(control, row, 1)
        self._grid.addWidget(hint, row, 2)
        self._rows[key] = (label, control, hint)

    def row_visible(self, key: str) -> bool:
        """Whether row `key` is shown (not hidden as not applying to this model/engine)."""
        return not self._rows[key][1].isHidden()

    def _show_row(self, key: str, shown: bool) -> None:
        for w in self._rows[key]:
            w.setVisible(shown)

    # ------------------------------------------------------------------ state
    def configure(
        self, info: ModelInfo | None, engine: str, scaling: RopeScaling | None = None
    ) -> None:
        """Set the ranges for a model (the context up to what it can use with its RoPE
        scaling) and show the rows that apply to it and the engine."""
        self.info, self.engine, self.scaling = info, engine, scaling
        llama = engine == "llamacpp"
        moe = bool(info and info.is_moe)
        widgets: list[QWidget] = [self.context, self.gpu_layers, self.experts, self.n_cpu_moe]
        for w in widgets:
            w.blockSignals(True)
        if info is not None:
            lo, hi = context_limits(info, scaling)
            self.context.setRange(lo, hi)
            self.context_range.set_range(lo, hi)
            self.context_hint.setText(f"trained {info.n_ctx_train:,}" if info.n_ctx_train else "")
            self.gpu_layers.setRange(0, info.n_layer + 1)
            if moe:
                self.experts.setRange(1, info.n_expert)
                self.n_cpu_moe.setRange(0, info.n_layer)
        for w in widgets:
            w.blockSignals(False)
        self.context_cap_label.hide()  # a new range: an older cap's reason no longer holds
        self._update_hints()
        for key in ("kv_type", "flash_attn", "batch", "gpu_layers"):
            self._show_row(key, llama)
        self._show_row("experts", llama and moe)
        self._show_row("n_cpu_moe", llama and moe)
        self._show_row("utilization", not llama)
        self._rows["context"][0].setText("Context (tokens)" if llama else "--max-model-len")
        self._rows["parallel"][0].setText("Parallel slots" if llama else "--max-num-seqs")

    def show_plan(self, plan: FitPlan, margin_mib: float, utilization: float) -> None:
        """Show `plan` (None fields as the model's own) without emitting `changed`."""
        info = self.info
        self.blockSignals(True)
        try:
            self.context.setValue(plan.ctx)
            self.parallel.setValue(plan.n_slots)
            self.cache_k.setCurrentText(plan.cache_type_k)
            self.cache_v.setCurrentText(plan.cache_type_v)
            self.flash_attn.setChecked(plan.flash_attn)
            self.batch.setCurrentText(str(plan.batch))
            self.ubatch.setCurrentText(str(plan.ubatch))
            if info is not None:
                self.gpu_layers.setValue(
                    info.n_layer + 1 if plan.gpu_layers is None else plan.gpu_layers
                )
                if info.is_moe:
                    self.experts.setValue(plan.experts or info.n_expert_used)
                    self.n_cpu_moe.setValue(plan.n_cpu_moe)
            self.margin.setValue(round(margin_mib))
            self.utilization.setValue(round(utilization * 100))
        finally:
            self.blockSignals(False)
        self._update_hints()

    def set_max_context(self, value: int | None) -> None:
        """Mark the largest context that fits (None: not known yet)."""
        self.context_range.set_max_fit(value)
        self.context_max_label.setText("" if value is None else f"≤ {value:,} fits")
        tip = "" if value is None else f"Largest context that fits: {value:,} tokens"
        self.context.setToolTip(tip)
        self.context_range.setToolTip(tip)

    def _update_hints(self) -> None:
        info = self.info
        if info is not None and info.is_moe:
            default = info.n_expert_used
            value = self.experts.value()
            self.experts_hint.setText(
                f"= default {default}" if value == default else f"default {default}"
            )
            self.experts_hint.setStyleSheet("font-weight: bold;" if value == default else "")
        if info is not None:
            self.n_cpu_moe_hint.setText(f"of {info.n_layer} layers")
            n = self.gpu_layers.value()
            self.gpu_layers_hint.setText("all" if n > info.n_layer else f"of {info.n_layer + 1}")

    def plan(self) -> FitPlan:
        """The plan fields the controls show; GPUs and defaults are the session's to settle
        (MoE fields are left out for a dense model, GPU layers until a model is known)."""
        info = self.info
        moe = info is not None and info.is_moe
        return FitPlan(
            ctx=self.context.value(),
            parallel=self.parallel.value(),
            flash_attn=self.flash_attn.isChecked(),
            cache_type_k=self.cache_k.currentText(),
            cache_type_v=self.cache_v.currentText(),
            batch=int(self.batch.currentText()),
            ubatch=int(self.ubatch.currentText()),
            experts=self.experts.value() if moe else None,
            gpu_layers=self.gpu_layers.value() if info is not None else None,
            n_cpu_moe=self.n_cpu_moe.value() if moe else 0,
        )

    @property
    def margin_mib(self) -> float:
        return float(self.margin.value())

    @property
    def gpu_memory_utilization(self) -> float:
        return self.utilization.value() / 100.0

    # ------------------------------------------------------------------ slots
    def _on_control_changed(self) -> None:
        self.changed.emit()

    def _on_context_spin_capped(self, typed: int) -> None:
        """More than the range was typed: the box holds the maximum; say why beside it."""
        self.context_cap_label.setText(f"{typed:,} capped at {self.context.spin.maximum():,}: "
                                       f"{self._context_cap_reason()}")
        self.context_cap_label.show()

    def _context_cap_reason(self) -> str:
        info = self.info
        hi = self.context.spin.maximum()
        if info is None:
            return "the most Fit plans before a model is chosen; pick one to plan longer"
        scaling = self.scaling
        if scaling is not None and scaling.declared:
            return (f"the most this model can use: its trained {scaling.trained:,} with the "
                    f"{scaling.kind} scaling x{scaling.factor:g} its file names")
        trained = info.n_ctx_train
        if trained and hi == int(trained * DEFAULT_YARN_FACTOR):
            return (f"the most this model can use: its trained {trained:,} with YaRN "
                    f"x{DEFAULT_YARN_FACTOR:g}")
        return (f"the most Fit plans for this model (trained on {trained:,})" if trained
                else "the most Fit plans for a model that names no trained context")

    def _on_context_value_changed(self, value: int) -> None:
        if value < self.context.spin.maximum():
            self.context_cap_label.hide()

    def _on_experts_value_changed(self, value: int) -> None:
        self._update_hints()

    def _on_gpu_layers_value_changed(self, value: int) -> None:
        self._update_hints()
        self.changed.emit()
