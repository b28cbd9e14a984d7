"""FitSession as the Fit page drives it, without Qt: real GGUF headers, real estimates.

Each test picks a model, edits the plan through the session's methods and checks the events
and the numbers a user would read; the expected numbers come from the estimator and the
planner themselves. Work that the app runs on its task runner runs inline here, or on a
queue the test releases job by job where the order of results is the point.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from app.errors import UserError
from app.fit.calibration import CalibrationKey, CalibrationStore, plan_key
from app.fit.launch import launch_plan
from app.fit.llamacpp_estimate import estimate_llamacpp
from app.fit.loaded_model import LoadedModel
from app.fit.plan import FitPlan, HostMemory
from app.fit.planner import plan_fit
from app.fit.session import CONTEXT_ENV, ChosenPlan, FitSession
from app.fit.vllm_estimate import VllmPlan, estimate_vllm
from app.library.gguf import GgufHeader, read_gguf_header
from app.library.gguf_entry import entry_from_gguf
from app.paths import AppPaths
from app.settings import SettingsStore
from app.telemetry.snapshot import GpuReading, HostReading, Snapshot
from tests.realparts.fixtures import TinyGgufFactory
from tests.realparts.gguf_factory import TinyModelSpec
from tests.unit.app.fit.reference import need, shared_data

GPU_96GB = 98304.0
H100 = "NVIDIA H100 80GB HBM3"
EVENTS = (
    "model_chosen",
    "model_changed",
    "engine_changed",
    "capacities_changed",
    "plan_changed",
    "problem_changed",
    "estimate_changed",
    "planner_started",
    "planner_changed",
    "planner_failed",
)


class Events:
    """Every event the session emits, in order, as (name, payload)."""

    def __init__(self, session: FitSession) -> None:
        self.seen: list[tuple[str, Any]] = []
        for name in EVENTS:
            getattr(session, name).connect(self._recorder(name))

    def _recorder(self, name: str) -> Callable[..., None]:
        def record(*args: Any) -> None:
            self.seen.append((name, args[0] if args else None))

        return record

    def names(self) -> list[str]:
        return [name for name, _ in self.seen]

    def last(self, name: str) -> Any:
        return next(payload for n, payload in reversed(self.seen) if n == name)

    def clear(self) -> None:
        self.seen.clear()


class QueueRunner:
    """A runner that holds each job until the test runs it (a worker that is slow)."""

    def __init__(self) -> None:
        self.jobs: list[tuple[str, Callable[[], Any], Callable[[Any], None],
                              Callable[[BaseException], None]]] = []

    def __call__(self, job: Callable[[], Any], *, description: str,
                 on_done: Callable[[Any], None],
                 on_error: Callable[[BaseException], None]) -> None:
        self.jobs.append((description, job, on_done, on_error))

    def run_next(self) -> str:
        description, job, on_done, on_error = self.jobs.pop(0)
        try:
            result = job()
        except Exception as exc:
            on_error(exc)
        else:
            on_done(result)
        return description

    def run_all(self) -> None:
        while self.jobs:
            self.run_next()


@pytest.fixture
def moe30() -> Path:
    """The Qwen3-30B-A3B-shaped reference header (4 layers) measured on the H100."""
    return need(shared_data() / "gguf-headers" / "moe30.header.gguf")


@pytest.fixture
def header(moe30: Path) -> GgufHeader:
    return read_gguf_header(moe30)


def _gpu_plan(ctx: int = 4096, mib: float = GPU_96GB, **changes: Any) -> FitPlan:
    return FitPlan(ctx=ctx, gpus=(0,), gpu_memory_mib=(int(mib),), **changes)


def _snapshot(
    *gpus: tuple[str, float], ram_mib: float = 257_000.0, ram_used_mib: float = 1000.0
) -> Snapshot:
    readings = tuple(
        GpuReading(vendor="nvidia", index=i, name=name, memory_total_mib=total)
        for i, (name, total) in enumerate(gpus)
    )
    host = HostReading(ram_used_mib=ram_used_mib, ram_total_mib=ram_mib, swap_used_mib=0.0,
                       swap_total_mib=0.0, cpu_pct=(1.0,))
    return Snapshot(t=1_700_000_000.0, gpus=readings, host=host)


def test_a_chosen_model_is_read_and_estimated_as_the_engine_would(
    moe30: Path, header: GgufHeader
) -> None:
    session = FitSession()
    events = Events(session)
    session.set_gpu_capacities([GPU_96GB])
    events.clear()

    session.choose_path(moe30)

    assert events.names()[:2] == ["model_chosen", "model_changed"]
    assert events.names()[-1] == "estimate_changed"
    model = events.last("model_changed")
    assert isinstance(model, LoadedModel)
    assert model.info is not None
    assert (model.info.arch, model.info.n_expert, model.info.n_expert_used) == ("qwen3moe", 128, 8)
    assert "128 experts, 8 per token" in model.description
    assert session.plan == _gpu_plan()
    expected = estimate_llamacpp(header, _gpu_plan())
    assert events.last("estimate_changed") == expected
    assert session.problem == ""
    verdict = session.verdict
    assert verdict is not None
    assert verdict.fits
    assert verdict.peak_mib == pytest.approx(expected.devices[0].total_mib)


def test_experts_per_token_change_compute_only_and_the_default_is_the_models(
    moe30: Path, header: GgufHeader
) -> None:
    session = FitSession()
    session.set_gpu_capacities([GPU_96GB])
    session.choose_path(moe30)
    default = session.estimate
    assert default is not None
    events = Events(session)

    session.update_plan(experts=4)

    assert session.plan.experts == 4
    assert events.names() == ["plan_changed", "estimate_changed"]
    fewer = events.last("estimate_changed")
    assert fewer == estimate_llamacpp(header, _gpu_plan(experts=4))
    assert fewer.devices[0].weights_mib == default.devices[0].weights_mib
    assert fewer.devices[0].kv_mib == default.devices[0].kv_mib
    assert fewer.devices[0].compute_mib != default.devices[0].compute_mib

    session.update_plan(experts=8)  # the model's own count: no override
    back = session.plan
    assert back.experts is None
    assert session.estimate == default


def test_a_dense_model_keeps_no_expert_fields(tiny_gguf: TinyGgufFactory) -> None:
    dense = tiny_gguf(arch="qwen3", layers=4)
    session = FitSession()
    session.set_gpu_capacities([24576.0])
    session.choose_path(dense)

    session.update_plan(experts=2, n_cpu_moe=1, gpu_layers=99)

    assert (session.plan.experts, session.plan.n_cpu_moe, session.plan.gpu_layers) == (
        None, 0, None)
    assert session.estimate == estimate_llamacpp(
        read_gguf_header(dense), FitPlan(gpus=(0,), gpu_memory_mib=(24576,)))


def test_a_plan_the_engine_refuses_is_a_problem_instead_of_an_estimate(moe30: Path) -> None:
    session = FitSession()
    session.set_gpu_capacities([GPU_96GB])
    session.choose_path(moe30)
    events = Events(session)

    session.update_plan(cache_type_v="q8_0", flash_attn=False)

    assert "quantised V cache needs flash attention" in session.problem
    assert events.last("estimate_changed") is None
    assert session.estimate is None
    assert session.chosen() is None

    session.update_plan(flash_attn=True)
    assert events.last("problem_changed") == ""
    assert session.estimate is not None


def test_the_planner_marks_the_largest_context_and_what_would_help(
    moe30: Path, header: GgufHeader, app_paths: AppPaths
) -> None:
    settings = SettingsStore(app_paths.settings_file)
    session = FitSession(settings=settings)
    session.set_gpu_capacities([7168.0])
    session.choose_path(moe30)
    events = Events(session)

    session.run_planner()

    assert events.names() == ["planner_started", "planner_changed"]
    expected = plan_fit(header, _gpu_plan(mib=7168), [7168.0], 512.0)
    res = events.last("planner_changed")
    assert res.max_ctx == expected.max_ctx
    assert res.max_ctx > 4096
    assert res.advice == expected.advice
    assert res.estimate == session.estimate
    assert settings.get("fit_context") == 4096  # a settled plan is kept for the next run

    session.update_plan(ctx=expected.max_ctx + 4096)
    verdict = session.verdict
    assert verdict is not None
    assert not verdict.fits
    assert verdict.worst == "GPU 0 (CUDA0)"
    assert verdict.over_mib > 0


def test_slow_estimates_go_to_the_runner_and_the_newest_plan_wins(
    moe30: Path, header: GgufHeader
) -> None:
    runner = QueueRunner()
    session = FitSession(runner=runner)
    session.sync_estimate_budget_ms = -1.0  # every estimate is too slow for the GUI thread
    session.set_gpu_capacities([GPU_96GB])
    session.choose_path(moe30)
    assert runner.run_next() == f"Reading {moe30}"
    assert session.estimate == estimate_llamacpp(header, _gpu_plan())  # the first, at once
    events = Events(session)

    for ctx in (8192, 12288, 16384):  # faster than the worker
        session.update_plan(ctx=ctx)
    assert [d for d, *_ in runner.jobs] == ["Estimating the plan"]  # one at a time
    runner.run_next()  # 8192's, overtaken: not shown, the newest is asked for
    assert "estimate_changed" not in events.names()
    assert len(runner.jobs) == 1
    runner.run_next()

    shown = [p for n, p in events.seen if n == "estimate_changed"]
    assert shown == [estimate_llamacpp(header, _gpu_plan(16384))]
    assert runner.jobs == []


def test_a_model_read_after_another_wins_whatever_the_order_of_answers(
    tiny_gguf: TinyGgufFactory,
) -> None:
    dense = tiny_gguf(arch="qwen3", layers=4)
    moe = tiny_gguf(arch="qwen3moe", layers=4, experts=16, experts_used=4)
    runner = QueueRunner()
    session = FitSession(runner=runner)
    events = Events(session)
    session.choose_path(dense)
    session.choose_path(moe)

    runner.run_all()

    read = [p for n, p in events.seen if n == "model_changed"]
    assert [m.path for m in read] == [moe]
    assert session.plan.device == "cpu"  # no GPU memory given: a CPU plan
    assert session.estimate == estimate_llamacpp(read_gguf_header(moe), FitPlan(
        device="cpu", gpus=()))


def test_a_file_that_is_not_a_model_says_why(tmp_path: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 40)
    session = FitSession()
    events = Events(session)

    session.choose_path(bad)

    assert events.last("model_changed") is None
    assert "broken.gguf is not a readable GGUF model" in session.problem
    assert session.chosen_path == bad

    session.choose_path(tmp_path / "missing.gguf")
    assert "no such file" in session.problem


def test_the_monitor_fills_in_the_gpus_unless_the_user_entered_their_own(moe30: Path) -> None:
    session = FitSession()
    events = Events(session)
    session.follow_snapshot(_snapshot((H100, 81559.0)))

    caps = events.last("capacities_changed")
    assert (caps.gpu_memory_text, caps.gpu_mib, caps.from_monitor) == ("81559", (81559.0,), True)
    assert [g.name for g in caps.seen] == [H100]
    assert caps.host_ram_mib == 257_000.0
    session.choose_path(moe30)
    assert session.plan.gpu_memory_mib == (81559,)

    session.set_gpu_memory("24576, 24576")
    session.follow_snapshot(_snapshot((H100, 81559.0)))
    assert session.capacities.gpu_mib == (24576.0, 24576.0)
    assert session.plan.gpus == (0, 1)
    est = session.estimate
    assert est is not None
    assert len(est.devices) == 2

    session.set_gpu_memory("lots")
    assert "GPU memory: 'lots' is not a memory size" in session.problem
    assert session.estimate is None


def test_the_last_run_measured_on_this_host_and_gpu_is_kept_with_the_model(
    moe30: Path, app_paths: AppPaths
) -> None:
    session = FitSession(data_dir=app_paths.data, host="rig")
    session.follow_snapshot(_snapshot((H100, 81559.0)))
    session.choose_path(moe30)
    assert [session.last_run] == [None]  # nothing measured yet
    key = plan_key(launch_plan(moe30, session.plan))  # what a backend started from it ran
    store = CalibrationStore(app_paths.data)
    store.record(CalibrationKey("rig", H100, "llamacpp", "b6000"), 6000, 6350, plan=key)
    store.record(CalibrationKey("another-host", H100, "llamacpp", "b6000"), 6000, 9000,
                 plan=key)

    session.choose_path(moe30)

    rec = session.last_run
    assert rec is not None
    assert rec.residual_mib == 350
    session.update_plan(ctx=session.plan.ctx * 2)
    assert [session.last_run] == [None]  # another plan: not measured yet
    session.update_plan(ctx=session.plan.ctx // 2)
    assert [session.last_run] == [rec]
    session.choose_engine("vllm")
    assert [session.last_run] == [None]


def test_it_opens_with_the_last_model_gpus_context_and_experts(
    moe30: Path, app_paths: AppPaths
) -> None:
    settings = SettingsStore(app_paths.settings_file)
    for name, value in (("fit_model_path", str(moe30)), ("fit_gpu_memory_mib", "24576"),
                        ("fit_context", 8192), ("fit_experts", 4)):
        settings.set(name, value)
    session = FitSession(settings=settings, environ={})

    session.restore()

    assert session.model is not None
    assert session.model.path == moe30
    assert session.plan == _gpu_plan(8192, 24576, experts=4)
    session.restore()  # once per session
    session.update_plan(ctx=4096)
    session.restore()
    assert session.plan.ctx == 4096

    from_env = FitSession(settings=settings, environ={CONTEXT_ENV: "16384"})
    from_env.restore()
    assert from_env.plan.ctx == 16384


def test_a_folder_is_planned_for_vllm(tmp_path: Path) -> None:
    folder = tmp_path / "hf-model"
    folder.mkdir()
    config = {"architectures": ["Qwen3ForCausalLM"], "hidden_size": 256,
              "num_hidden_layers": 4, "num_attention_heads": 8, "num_key_value_heads": 4,
              "head_dim": 32, "intermediate_size": 512, "vocab_size": 1000,
              "max_position_embeddings": 32768, "torch_dtype": "bfloat16"}
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    session = FitSession()
    events = Events(session)
    session.set_gpu_capacities([24576.0, 24576.0])

    session.choose_path(folder)

    assert events.last("engine_changed") == "vllm"
    assert session.model is not None
    assert session.model.description == "hf-model · Qwen3ForCausalLM · 4 layers"
    vplan = VllmPlan(tensor_parallel=2, gpu_memory_utilization=0.9, gpu_memory_mib=24576.0,
                     max_model_len=4096, max_num_seqs=1)
    assert session.vllm_plan == vplan
    expected = estimate_vllm(folder, vplan)
    assert session.vllm == expected
    assert events.last("estimate_changed") == expected.estimate
    verdict = session.verdict
    assert verdict is not None
    assert verdict.fits
    assert session.chosen() == ChosenPlan(folder, "vllm", vplan, 512.0)

    session.choose_engine("llamacpp")
    assert "llama.cpp runs GGUF files" in session.problem


def test_vllm_needs_a_folder_and_a_gpu(moe30: Path) -> None:
    session = FitSession()
    session.choose_path(moe30)
    session.choose_engine("vllm")
    assert "vLLM serves Hugging Face folders" in session.problem
    with pytest.raises(ValueError, match="unknown engine"):
        session.choose_engine("ollama")
    with pytest.raises(UserError, match="at least one GPU"):
        VllmPlan.on_gpus([], utilization=0.9, max_model_len=None, max_num_seqs=1)


def test_start_hands_on_the_plan_the_estimate_is_for(moe30: Path) -> None:
    session = FitSession()
    assert session.chosen() is None
    session.set_gpu_capacities([GPU_96GB])
    session.choose_path(moe30)
    session.update_plan(ctx=16384, cache_type_k="q8_0", cache_type_v="q8_0")
    session.set_margin(1024)

    assert session.chosen() == ChosenPlan(
        moe30, "llamacpp",
        _gpu_plan(16384, cache_type_k="q8_0", cache_type_v="q8_0"), 1024.0)


def test_any_plan_can_be_estimated_off_the_calling_thread(
    moe30: Path, header: GgufHeader
) -> None:
    session = FitSession()
    session.choose_path(moe30)
    plans = [replace(_gpu_plan(), experts=n) for n in (2, 4, 8)]

    with ThreadPoolExecutor(2) as pool:
        estimates = list(pool.map(session.estimate_for, plans))

    assert estimates == [estimate_llamacpp(header, p) for p in plans]


def test_the_verdict_counts_the_host_ram_the_monitor_reports(moe30: Path) -> None:
    session = FitSession(read_host_memory=lambda: None)
    session.choose_path(moe30)
    session.set_gpu_memory("24G")
    session.update_plan(ctx=32768, n_cpu_moe=4)  # every expert in RAM: about 6 GB on the host
    verdict = session.verdict
    assert verdict is not None
    assert verdict.fits  # the host's RAM is not known: nothing to hold it against
    est = session.estimate
    assert est is not None
    events = Events(session)
    # the monitor says the host has 8 GiB, 5 GiB of them in use
    session.follow_snapshot(_snapshot(ram_mib=8192.0, ram_used_mib=5120.0))
    assert events.last("capacities_changed").host == HostMemory(8192.0, 3072.0)
    verdict = session.verdict
    assert verdict is not None
    assert not verdict.fits
    assert verdict.gpus_fit
    assert verdict.headline(session.margin_mib) == (
        f"Does not fit: the host needs {est.host.total_mib:,.0f} MiB of 8,192 MiB RAM, "
        "3,072 MiB available now"
    )
    session.run_planner()  # the planner holds the plan against the same host
    res = session.planner_result
    assert res is not None
    assert not res.fits
    assert any(a.then_fits and "--n-cpu-moe 0" in a.change for a in res.advice)


def test_the_librarys_smaller_quantisation_of_the_model_is_advised(
    tiny_gguf: TinyGgufFactory,
) -> None:
    shape = TinyModelSpec(arch="qwen3", layers=2, hidden_size=256, ffn_size=512,
                          vocab_size=32000)
    big = tiny_gguf(shape, weight_type="f32")
    small = tiny_gguf(shape, weight_type="f16")
    other = tiny_gguf(arch="qwen3", layers=3, weight_type="f16")  # another model
    session = FitSession(read_host_memory=lambda: None)
    session.know_library([entry_from_gguf(p) for p in (big, small, other)])
    session.choose_path(big)
    assert session.smaller_quants() == [small]
    plan = session.plan
    small_peak = estimate_llamacpp(read_gguf_header(small), replace(
        plan, gpus=(0,), gpu_memory_mib=(1,), device="cuda")).devices[0].total_mib
    session.set_gpu_capacities([small_peak + session.margin_mib + 1])
    assert session.verdict is not None
    assert not session.verdict.fits
    session.run_planner()
    res = session.planner_result
    assert res is not None
    quants = [a for a in res.advice if "smaller quantisation" in a.change]
    assert [a.change for a in quants] == [f"a smaller quantisation: {small.name}"]
    assert quants[0].then_fits
