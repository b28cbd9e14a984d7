"""FitSession: the Fit workflow in one Qt-free object — a model, an engine, GPUs and a plan,
and what each device will hold for them.

The Fit page drives it through its methods and follows its psygnal events; `rigdeck fit`
uses the same steps (`read_gguf`, `plan_fit`, `VllmPlan.on_gpus`). The session does every
read the workflow needs (the GGUF header or config.json, the calibration store, the
settings) and runs whatever may block through the `runner` it is given. In the app that is
the TaskRunner, which hands results back on the GUI thread, so every event fires there;
without one, work runs inline (scripts, tests).

An edit re-estimates at once: a llama.cpp estimate costs a few milliseconds and is cached
per plan. Once one takes longer than `sync_estimate_budget_ms` (a big model, a slow CPU),
the later ones go to the runner, one at a time, the newest plan winning. The planner (the
largest context that fits, and what would help) always goes to the runner, when the caller
asks for it (the page debounces slider moves); vLLM's estimate reads the model folder, so
it goes there too. A result that a later edit has overtaken is dropped.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from psygnal import Signal

from app.errors import UserError
from app.fit.calibration import (
    CPU_MODEL,
    CalibrationRecord,
    CalibrationStore,
    last_run_of_plan,
    plan_key,
)
from app.fit.capacities import Capacities, host_memory, parse_gpu_memory, seen_gpus
from app.fit.context_scaling import ContextAdvice, RopeScaling, context_advice, rope_scaling
from app.fit.llamacpp_estimate import estimate_llamacpp
from app.fit.loaded_model import LoadedModel, read_model
from app.fit.model_info import ModelInfo
from app.fit.plan import Estimate, FitPlan, HostMemory
from app.fit.planner import (
    DEFAULT_MARGIN_MIB,
    FitResult,
    Verdict,
    context_limits,
    fit_verdict,
    plan_fit,
)
from app.fit.vllm_estimate import VllmEstimate, VllmPlan, estimate_vllm
from app.library.entries import Entry
from app.settings import SettingsStore
from app.telemetry.snapshot import Snapshot

log = logging.getLogger(__name__)

ENGINES = (("llama.cpp", "llamacpp"), ("vLLM", "vllm"))
"""(title, key) of each engine the Fit workflow plans for."""
ENGINE_TITLES = {key: title for title, key in ENGINES}
MODEL_ENV = "RIGDECK_FIT_MODEL"
"""A model to open with (overrides the `fit_model_path` setting; screenshots)."""
GPU_MEMORY_ENV = "RIGDECK_FIT_GPU_MEMORY"
"""Memory per GPU to plan for, e.g. 98304 or 96G (overrides `fit_gpu_memory_mib`)."""
CONTEXT_ENV = "RIGDECK_FIT_CONTEXT"
EXPERTS_ENV = "RIGDECK_FIT_EXPERTS"
SYNC_ESTIMATE_BUDGET_MS = 30.0
"""An estimate slower than this moves later ones to the runner, so an edit on the GUI
thread never holds it past a frame or two."""
ESTIMATE_CACHE_SIZE = 256
DEFAULT_CONTEXT = FitPlan().ctx
DEFAULT_GPU_MEMORY_UTILIZATION = 0.9


class Runner(Protocol):
    """Runs `job` (maybe on another thread) and hands its result or its error to a callback
    on the caller's thread: `ui.tasks.TaskRunner.run` is one."""

    def __call__(
        self,
        job: Callable[[], Any],
        *,
        description: str,
        on_done: Callable[[Any], None],
        on_error: Callable[[BaseException], None],
    ) -> object: ...


def run_inline(
    job: Callable[[], Any],
    *,
    description: str,
    on_done: Callable[[Any], None],
    on_error: Callable[[BaseException], None],
) -> None:
    """The runner without threads: the job runs now, its callback before this returns."""
    try:
        result = job()
    except Exception as exc:  # handed on, as a threaded runner would
        on_error(exc)
        return
    on_done(result)


@dataclass(frozen=True)
class ChosenPlan:
    """What "Start with this plan" hands on: the model, the engine and its plan."""

    model_path: Path
    engine: str
    plan: FitPlan | VllmPlan
    margin_mib: float
    extra_args: tuple[str, ...] = ()
    """Engine flags the plan needs beyond its settings: the RoPE/YaRN scaling of a context
    longer than the trained one."""


class FitSession:
    """One Fit workflow: pick a model, an engine and GPUs; edit the plan; read the estimate.

    Events (all on the thread that called the method, or where the runner delivers):
    `model_chosen(Path)` a model is being read; `model_changed(LoadedModel | None)` it was
    read (None: it could not be, see `problem`); `engine_changed(str)`;
    `capacities_changed(Capacities)`; `plan_changed(FitPlan)`; `problem_changed(str)`
    ("" when solved); `estimate_changed(Estimate | None)` the estimate to show (None:
    none, see `problem`), also after a margin change; `planner_started(FitPlan)`;
    `planner_changed(FitResult | None)`; `planner_failed(str)`.
    """

    model_chosen = Signal(object)
    model_changed = Signal(object)
    engine_changed = Signal(str)
    capacities_changed = Signal(object)
    plan_changed = Signal(object)
    problem_changed = Signal(str)
    estimate_changed = Signal(object)
    planner_started = Signal(object)
    planner_changed = Signal(object)
    planner_failed = Signal(str)

    def __init__(
        self,
        *,
        runner: Runner = run_inline,
        settings: SettingsStore | None = None,
        data_dir: Path | None = None,
        host: str | None = None,
        environ: Mapping[str, str] | None = None,
        read_host_memory: Callable[[], HostMemory | None] = host_memory,
    ) -> None:
        """`settings` keep the model, GPU memory, context and experts for the next run
        (None: nothing is kept); `data_dir` holds the calibration store (None: no
        "measured last time"); `host` names this machine in it (default: its hostname);
        `read_host_memory` reads the host's RAM until the monitor's snapshots say it."""
        self._runner = runner
        self._settings = settings
        self._data_dir = data_dir
        self._host = host or socket.gethostname()
        self._environ = environ
        self.sync_estimate_budget_ms = SYNC_ESTIMATE_BUDGET_MS
        self._restored = False
        self._pending_experts = 0
        self._chosen: Path | None = None
        self._model: LoadedModel | None = None
        self._last_runs: list[CalibrationRecord] = []
        self._engine = "llamacpp"
        self._capacities = Capacities(host=read_host_memory())
        self._scaling: RopeScaling | None = None
        self._fields = FitPlan()
        self._margin = DEFAULT_MARGIN_MIB
        self._utilization = DEFAULT_GPU_MEMORY_UTILIZATION
        self._problem = ""
        self._estimate: Estimate | None = None
        self._vllm: VllmEstimate | None = None
        self._result: FitResult | None = None
        self._cache: dict[FitPlan, Estimate] = {}
        self._cache_lock = threading.Lock()
        self._estimate_in_background = False
        self._estimating = False
        self._wanted: FitPlan | None = None
        self._load_seq = 0
        self._planner_seq = 0
        self._vllm_seq = 0
        self._planning = False
        self._plan_again = False
        self._library: tuple[Entry, ...] = ()

    # ------------------------------------------------------------------ reading the state
    @property
    def chosen_path(self) -> Path | None:
        """The model last chosen, read or not."""
        return self._chosen

    @property
    def model(self) -> LoadedModel | None:
        return self._model

    @property
    def engine(self) -> str:
        return self._engine

    @property
    def capacities(self) -> Capacities:
        return self._capacities

    @property
    def plan(self) -> FitPlan:
        """The llama.cpp plan: the user's fields on the GPUs of `capacities` (none: CPU)."""
        caps = self._capacities.gpu_mib
        return replace(
            self._fields,
            device="cuda" if caps else "cpu",
            gpus=tuple(range(len(caps))),
            gpu_memory_mib=tuple(int(c) for c in caps),
        )

    @property
    def vllm_plan(self) -> VllmPlan:
        """The vLLM plan of the same fields (context, slots) and the utilisation.

        Raises:
            UserError: no GPU to plan for.
        """
        return VllmPlan.on_gpus(
            self._capacities.gpu_mib,
            utilization=self._utilization,
            max_model_len=self._fields.ctx,
            max_num_seqs=self._fields.n_slots,
        )

    @property
    def margin_mib(self) -> float:
        return self._margin

    @property
    def gpu_memory_utilization(self) -> float:
        return self._utilization

    @property
    def problem(self) -> str:
        """Why there is no estimate ("" when there is one, or no model yet)."""
        return self._problem

    @property
    def estimate(self) -> Estimate | None:
        return self._estimate

    @property
    def vllm(self) -> VllmEstimate | None:
        """vLLM's estimate (its KV cache and concurrency) when the engine is vLLM."""
        return self._vllm if self._engine == "vllm" else None

    @property
    def planner_result(self) -> FitResult | None:
        """The planner's last answer for this model and engine (its `estimate` says for
        which plan: an edit made since leaves it behind until the planner runs again)."""
        return self._result

    @property
    def verdict(self) -> Verdict | None:
        est = self._estimate
        if est is None:
            return None
        v = self.vllm
        if v is not None:
            return Verdict(v.fits, max((d.total_mib for d in est.devices), default=0.0))
        return fit_verdict(est, self._capacities.gpu_mib, self._margin, self._capacities.host)

    @property
    def context_scaling(self) -> RopeScaling | None:
        """The chosen GGUF's trained context and RoPE scaling (None: no GGUF read)."""
        return self._scaling

    @property
    def context_advice(self) -> ContextAdvice | None:
        """What the plan's context needs beyond the trained one: the scaling and the
        llama-server flags to add (None: within the trained context, or no GGUF)."""
        if self._scaling is None or self._engine != "llamacpp":
            return None
        return context_advice(self._scaling, self._fields.ctx)

    @property
    def last_run(self) -> CalibrationRecord | None:
        """What a backend of this plan really took last time on this host and GPU (or its
        CPU, for a CPU plan): the newest record of a started backend, None before one."""
        return self._run_of_plan(benched=False)

    @property
    def measured_speed(self) -> CalibrationRecord | None:
        """The newest run of this plan here whose speed the Bench measured (its
        `prompt_tps` and `decode_tps`), None before one was benched."""
        return self._run_of_plan(benched=True)

    def _run_of_plan(self, *, benched: bool) -> CalibrationRecord | None:
        chosen = self.chosen()
        if chosen is None:
            return None
        from app.fit.launch import launch_plan

        seen = self._capacities.seen
        on_gpu = not isinstance(chosen.plan, FitPlan) or chosen.plan.on_gpu
        gpu = (seen[0].name if seen else "GPU") if on_gpu else CPU_MODEL
        key = plan_key(launch_plan(chosen.model_path, chosen.plan))
        return last_run_of_plan(self._last_runs, gpu, self._engine, key, benched=benched)

    @staticmethod
    def models_among(entries: Iterable[Entry]) -> list[Entry]:
        """The library entries that can be planned: models that were read without error."""
        return [e for e in entries if e.kind == "model" and not e.error]

    def know_library(self, entries: Iterable[Entry]) -> None:
        """The Library's entries: the planner weighs the smaller quantisations of the chosen
        model among them (same architecture, layers and width, a smaller GGUF)."""
        self._library = tuple(self.models_among(entries))

    def smaller_quants(self) -> list[Path]:
        """The Library's smaller GGUFs of the chosen model, smallest last."""
        model = self._model
        if model is None or model.header is None:
            return []
        me = next((e for e in self._library if Path(e.path) == model.path), None)
        if me is None or me.size_bytes is None:
            return []
        same = [
            e for e in self._library
            if e.format == "gguf" and Path(e.path) != model.path and e.size_bytes is not None
            and e.size_bytes < me.size_bytes
            and (e.architecture, e.layers, e.hidden_size)
            == (me.architecture, me.layers, me.hidden_size)
        ]
        return [Path(e.path) for e in sorted(same, key=lambda e: -(e.size_bytes or 0))]

    def chosen(self) -> ChosenPlan | None:
        """The plan for "Start with this plan" (None until a model shows an estimate)."""
        if self._model is None or self._estimate is None:
            return None
        plan: FitPlan | VllmPlan = self.vllm_plan if self._engine == "vllm" else self.plan
        advice = self.context_advice
        return ChosenPlan(self._model.path, self._engine, plan, self._margin,
                          advice.flags if advice is not None else ())

    def estimate_for(self, plan: FitPlan) -> Estimate:
        """The llama.cpp estimate of any `plan` for the model chosen, cached; blocking (a
        few ms, more for a big model): call it off the GUI thread where that matters.

        Raises:
            UserError: no GGUF model is loaded, or the engine would refuse the plan.
        """
        model = self._model
        if model is None or model.header is None:
            raise UserError("pick a GGUF model first")
        est = self._cached(model, plan)
        if est is None:
            est = estimate_llamacpp(model.header, plan)
            self._remember(model, plan, est)
        return est

    # ------------------------------------------------------------------ the user's edits
    def restore(self) -> None:
        """Open with what was used last (settings; the RIGDECK_FIT_* environment over them):
        GPU memory, context, experts, and the model. Once per session; call it after
        `follow_snapshot`, so the calibration's GPU is known when the model is read."""
        if self._restored:
            return
        self._restored = True
        values = self._initial_values()
        if values["gpu_memory"]:
            self._set_gpu_text(values["gpu_memory"], from_monitor=False)
        if values["context"] and int(values["context"]) > 0:
            self._fields = replace(self._fields, ctx=int(values["context"]))
            self.plan_changed.emit(self.plan)
        self._pending_experts = int(values["experts"] or 0)
        self._refresh()
        if values["model"]:
            self.choose_path(Path(values["model"]).expanduser(), remember=False)

    def choose_path(self, path: Path, *, remember: bool = True) -> None:
        """Read the model at `path` (on the runner); `model_changed` follows.

        `remember` keeps it for the next run (the `fit_model_path` setting).
        """
        self._load_seq += 1
        seq = self._load_seq
        self._chosen = path
        if remember and self._settings is not None:
            self._settings.set("fit_model_path", str(path))
        self._set_problem("")
        self.model_chosen.emit(path)
        seen = self._capacities.seen
        gpu_model = seen[0].name if seen else "GPU"
        self._runner(
            partial(self._read, path, gpu_model),
            description=f"Reading {path}",
            on_done=partial(self._on_read, seq),
            on_error=partial(self._on_read_failed, seq, path),
        )

    def choose_entry(self, entry: Entry) -> None:
        """Read a model the library found."""
        self.choose_path(Path(entry.path))

    def choose_engine(self, engine: str) -> None:
        """Plan for "llamacpp" or "vllm".

        Raises:
            ValueError: another engine.
        """
        if engine not in ENGINE_TITLES:
            raise ValueError(f"unknown engine {engine!r}")
        if engine == self._engine:
            return
        self._engine = engine
        self._forget_results()
        self.engine_changed.emit(engine)
        self.planner_changed.emit(None)
        self._refresh()

    def set_gpu_memory(self, text: str) -> None:
        """The GPU memory the user entered, per GPU, comma-separated ("98304", "96G",
        "24G,24G": see `parse_gpu_memory`); empty: CPU only. Kept for the next run; the
        monitor no longer fills it in."""
        self._set_gpu_text(text, from_monitor=False)
        if self._settings is not None:
            self._settings.set("fit_gpu_memory_mib", text.strip())
        self._refresh()

    def set_gpu_capacities(self, mib: Sequence[float]) -> None:
        """`set_gpu_memory` from numbers: MiB per GPU (none: CPU only)."""
        self.set_gpu_memory(",".join(str(round(m)) for m in mib))

    def follow_snapshot(self, snapshot: Snapshot) -> None:
        """The monitor's GPUs and host RAM: they fill in the GPU memory unless the user
        entered their own."""
        seen = seen_gpus(snapshot)
        caps = self._capacities
        reading = snapshot.host
        host = caps.host
        if reading is not None and reading.ram_total_mib:
            total = float(reading.ram_total_mib)
            host = HostMemory(total, total - float(reading.ram_used_mib))
        changed = (seen, host) != (caps.seen, caps.host)
        self._capacities = caps = replace(caps, seen=seen, host=host)
        detected = ",".join(f"{g.memory_mib:.0f}" for g in seen)
        text = caps.gpu_memory_text
        if seen and (not text.strip() or caps.from_monitor) and text != detected:
            self._set_gpu_text(detected, from_monitor=True)
            self._refresh()
        elif changed:
            self.capacities_changed.emit(caps)

    def set_plan(
        self,
        plan: FitPlan,
        *,
        margin_mib: float | None = None,
        gpu_memory_utilization: float | None = None,
    ) -> None:
        """The user's plan fields (its GPUs come from `capacities`; experts and GPU layers
        equal to the model's own become None, "the model's"), and re-estimate."""
        self._fields = self._normal(plan)
        if margin_mib is not None:
            self._margin = float(margin_mib)
        if gpu_memory_utilization is not None:
            self._utilization = float(gpu_memory_utilization)
        self.plan_changed.emit(self.plan)
        self._refresh()

    def update_plan(self, **changes: Any) -> None:
        """Change some plan fields, e.g. `update_plan(ctx=32768, experts=4)`.

        Raises:
            TypeError: a name that is not a `FitPlan` field.
        """
        self.set_plan(replace(self._fields, **changes))

    def set_margin(self, mib: float) -> None:
        """MiB to keep free on each GPU."""
        self.set_plan(self._fields, margin_mib=mib)

    def run_planner(self) -> None:
        """Work out the largest context that fits and what would help, on the runner; one at
        a time, a request meanwhile runs once more after it (llama.cpp only)."""
        model, est = self._model, self._estimate
        if model is None or model.header is None or est is None or self._engine != "llamacpp":
            return
        if self._planning:
            self._plan_again = True
            return
        if self._capacities.problem:
            return
        plan, margin, header = self.plan, self._margin, model.header
        capacities = list(self._capacities.gpu_mib)
        host = self._capacities.host
        smaller = self.smaller_quants()
        self._remember_plan(plan, model.info)
        self._planner_seq += 1
        seq = self._planner_seq
        self._planning = True  # before the runner: an inline one answers inside the call
        self.planner_started.emit(plan)
        self._runner(
            lambda: plan_fit(header, plan, capacities, margin, smaller, host=host),
            description="Planning the fit",
            on_done=partial(self._on_planned, seq),
            on_error=partial(self._on_planner_failed, seq),
        )

    # ------------------------------------------------------------------ reading (runner)
    def _read(self, path: Path, gpu_model: str) -> tuple[LoadedModel, list[CalibrationRecord]]:
        """The model and this machine's measured runs, its GPU's and its CPU's (on the
        runner's thread)."""
        model = read_model(path)
        runs: list[CalibrationRecord] = []
        if self._data_dir is not None:
            runs = CalibrationStore(self._data_dir).runs(self._host, (gpu_model, CPU_MODEL))
        return model, runs

    def _on_read(self, seq: int, result: tuple[LoadedModel, list[CalibrationRecord]]) -> None:
        if seq != self._load_seq:
            return
        model, self._last_runs = result
        self._model = model
        self._scaling = rope_scaling(model.header) if model.header is not None else None
        self._forget_results()
        with self._cache_lock:
            self._cache.clear()
        self._estimate_in_background = False
        engine_changed = model.header is None and self._engine == "llamacpp"
        if engine_changed:  # a folder: vLLM is what serves it
            self._engine = "vllm"
        self._fields = self._fields_for(model.info)
        if engine_changed:
            self.engine_changed.emit(self._engine)
        self.model_changed.emit(model)
        self.plan_changed.emit(self.plan)
        self.planner_changed.emit(None)
        self._refresh()

    def _on_read_failed(self, seq: int, path: Path, exc: BaseException) -> None:
        if seq != self._load_seq:
            return
        if isinstance(exc, UserError):
            text = str(exc)
        else:
            log.error("reading %s failed", path, exc_info=exc)
            text = f"{path.name} could not be read: {exc or type(exc).__name__}"
        self._model = None
        self._scaling = None
        self._last_runs = []
        self._forget_results()
        self.model_changed.emit(None)
        self._fail(text)

    def _fields_for(self, info: ModelInfo | None) -> FitPlan:
        """The plan fields for a newly read model: its own experts, all layers on the GPU,
        no experts in RAM; the experts the session opened with, once."""
        fields = replace(self._fields, experts=None, gpu_layers=None, n_cpu_moe=0)
        lo, hi = context_limits(info, self._scaling)
        fields = replace(fields, ctx=min(max(fields.ctx, lo), hi))
        if self._pending_experts and info is not None and info.is_moe:
            fields = replace(fields, experts=min(self._pending_experts, info.n_expert))
        self._pending_experts = 0
        return self._normal(fields, info)

    def _normal(self, plan: FitPlan, info: ModelInfo | None = None) -> FitPlan:
        """Values equal to the model's own become None; MoE fields go for a dense model."""
        info = info if info is not None else (self._model.info if self._model else None)
        moe = info is not None and info.is_moe
        experts = plan.experts if moe else None
        if info is not None and experts == info.n_expert_used:
            experts = None
        gpu_layers = plan.gpu_layers
        if info is None or (gpu_layers is not None and gpu_layers > info.n_layer):
            gpu_layers = None
        return replace(
            plan, experts=experts, gpu_layers=gpu_layers, n_cpu_moe=plan.n_cpu_moe if moe else 0
        )

    # ------------------------------------------------------------------ estimating
    def _refresh(self) -> None:
        """Re-estimate the current plan: at once (cached, or cheap), else on the runner."""
        model = self._model
        if model is None:
            return
        try:
            if self._capacities.problem:
                raise UserError(self._capacities.problem)
            if self._engine == "vllm":
                self._refresh_vllm(model)
                return
            if model.header is None:
                raise UserError(
                    "llama.cpp runs GGUF files; this is a Hugging Face folder: "
                    "choose vLLM, or pick a GGUF file"
                )
            plan = self.plan
            est = self._cached(model, plan)
            if est is None and self._estimate_in_background:
                self._estimate_later(model, plan)
                return
            if est is None:
                started = time.perf_counter()
                est = estimate_llamacpp(model.header, plan)
                cost_ms = (time.perf_counter() - started) * 1000
                if cost_ms > self.sync_estimate_budget_ms:
                    log.info("estimates take %.0f ms for this model: now on the runner", cost_ms)
                    self._estimate_in_background = True
                self._remember(model, plan, est)
        except UserError as exc:
            self._fail(str(exc))
            return
        self._show(est)

    def _show(self, est: Estimate, vllm: VllmEstimate | None = None) -> None:
        self._set_problem("")
        self._estimate = est
        self._vllm = vllm
        self.estimate_changed.emit(est)

    def _fail(self, text: str) -> None:
        self._estimate = None
        self._vllm = None
        self._set_problem(text)
        self.estimate_changed.emit(None)

    def _set_problem(self, text: str) -> None:
        if text != self._problem:
            self._problem = text
            self.problem_changed.emit(text)

    def _cached(self, model: LoadedModel, plan: FitPlan) -> Estimate | None:
        with self._cache_lock:
            return self._cache.get(plan) if model is self._model else None

    def _remember(self, model: LoadedModel, plan: FitPlan, est: Estimate) -> None:
        with self._cache_lock:
            if model is not self._model:
                return
            if len(self._cache) >= ESTIMATE_CACHE_SIZE:
                self._cache.clear()
            self._cache[plan] = est

    def _estimate_later(self, model: LoadedModel, plan: FitPlan) -> None:
        """Estimate on the runner; one at a time: plans wanted meanwhile are not queued,
        the newest is estimated when the running one returns."""
        self._wanted = plan
        if self._estimating:
            return
        header = model.header
        assert header is not None
        self._estimating = True
        self._runner(
            lambda: estimate_llamacpp(header, plan),
            description="Estimating the plan",
            on_done=partial(self._on_estimated, model, plan),
            on_error=partial(self._on_estimate_failed, model, plan),
        )

    def _on_estimated(self, model: LoadedModel, plan: FitPlan, est: Estimate) -> None:
        self._estimating = False
        self._remember(model, plan, est)
        self._refresh()  # shows it if still wanted, else estimates the newest plan

    def _on_estimate_failed(self, model: LoadedModel, plan: FitPlan, exc: BaseException) -> None:
        self._estimating = False
        if model is not self._model or plan != self._wanted:
            self._refresh()
        elif isinstance(exc, UserError):
            self._fail(str(exc))
        else:
            log.error("estimating the plan failed", exc_info=exc)
            self._fail(f"The estimate failed: {exc or type(exc).__name__}")

    def _refresh_vllm(self, model: LoadedModel) -> None:
        if model.header is not None:
            raise UserError(
                "vLLM serves Hugging Face folders (config.json and safetensors); this is a "
                "GGUF file: pick a folder, or plan it for llama.cpp"
            )
        vplan = self.vllm_plan
        self._set_problem("")
        self._vllm_seq += 1
        seq = self._vllm_seq
        folder = model.path
        self._runner(
            lambda: estimate_vllm(folder, vplan),
            description=f"Estimating vLLM for {folder.name}",
            on_done=partial(self._on_vllm_done, seq),
            on_error=partial(self._on_vllm_failed, seq),
        )

    def _on_vllm_done(self, seq: int, v: VllmEstimate) -> None:
        if seq == self._vllm_seq and self._engine == "vllm":
            self._show(v.estimate, v)

    def _on_vllm_failed(self, seq: int, exc: BaseException) -> None:
        if seq == self._vllm_seq:
            self._fail(str(exc) if isinstance(exc, UserError) else f"vLLM estimate failed: {exc}")

    # ------------------------------------------------------------------ planning
    def _on_planned(self, seq: int, res: FitResult) -> None:
        self._planning = False
        if self._plan_again:
            self._plan_again = False
            self.run_planner()
            return
        if seq != self._planner_seq or self._estimate is None:
            return
        self._result = res
        self.planner_changed.emit(res)

    def _on_planner_failed(self, seq: int, exc: BaseException) -> None:
        self._planning = False
        if self._plan_again:
            self._plan_again = False
            self.run_planner()
            return
        if seq != self._planner_seq:
            return
        log.warning("plan_fit failed", exc_info=exc)
        self.planner_failed.emit(str(exc))

    def _remember_plan(self, plan: FitPlan, info: ModelInfo | None) -> None:
        """Keep the context and experts for the next run (settled plans only)."""
        if self._settings is None:
            return
        self._settings.set("fit_context", plan.ctx)
        if info is not None and info.is_moe:
            self._settings.set("fit_experts", plan.experts or 0)

    # ------------------------------------------------------------------ helpers
    def _forget_results(self) -> None:
        """A new model or engine: no result of the old one may still arrive and show."""
        self._result = None
        self._vllm = None
        self._planner_seq += 1
        self._vllm_seq += 1

    def _set_gpu_text(self, text: str, *, from_monitor: bool) -> None:
        before = self.plan
        try:
            mib, problem = tuple(parse_gpu_memory(text)), ""
        except UserError as exc:
            mib, problem = (), str(exc)
        self._capacities = replace(
            self._capacities,
            gpu_memory_text=text,
            gpu_mib=mib,
            problem=problem,
            from_monitor=from_monitor,
        )
        self.capacities_changed.emit(self._capacities)
        if self.plan != before:
            self.plan_changed.emit(self.plan)

    def _initial_values(self) -> dict[str, str]:
        """The environment (screenshots, demos) over the settings."""
        env = os.environ if self._environ is None else self._environ
        s = self._settings

        def setting(name: str) -> str:
            value = s.get(name) if s is not None else ""
            return str(value or "")

        values = {
            "model": env.get(MODEL_ENV) or setting("fit_model_path"),
            "gpu_memory": env.get(GPU_MEMORY_ENV) or setting("fit_gpu_memory_mib"),
            "context": env.get(CONTEXT_ENV) or setting("fit_context"),
            "experts": env.get(EXPERTS_ENV) or setting("fit_experts"),
        }
        values = {k: v.strip() for k, v in values.items()}
        for key in ("context", "experts"):
            if values[key] and not values[key].isdigit():
                log.warning("ignoring %s=%r: not a whole number", key, values[key])
                values[key] = ""
        return values
