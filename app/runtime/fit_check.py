"""Before start: does the plan fit the chosen GPUs' free memory right now?

The fit planner (app.fit) estimates what llama.cpp will allocate; free memory comes
from NVML for the local host (other processes count). Where either is missing — no
GPUs chosen, a remote host, a vLLM plan, no driver — the check says so and lets the
start go on: it only ever asks for confirmation, it never blocks a start by itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from app.engines.plan import LaunchPlan
from app.fit.calibration import CalibrationStore
from app.runtime.hosts import Host

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitVerdict:
    fits: bool
    over_mib: float = 0.0
    message: str = ""
    checked: bool = False


def free_gpu_memory_mib(gpus: tuple[str, ...]) -> list[float] | None:
    """Free MiB of each chosen local GPU now (NVML), or None without a driver."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return None
    try:
        free: list[float] = []
        for gpu in gpus:
            handle = (pynvml.nvmlDeviceGetHandleByIndex(int(gpu)) if gpu.isdigit()
                      else pynvml.nvmlDeviceGetHandleByUUID(gpu))
            free.append(float(pynvml.nvmlDeviceGetMemoryInfo(handle).free) / 2**20)
        return free
    except pynvml.NVMLError as exc:
        log.info("NVML could not read the GPUs %s: %s", gpus, exc)
        return None
    finally:
        pynvml.nvmlShutdown()


def adapter_bytes(paths: tuple[str, ...]) -> int:
    """Bytes of the adapters a plan preloads (a file, or a PEFT folder's files)."""
    total = 0
    for raw in paths:
        path = Path(raw)
        files = [path] if path.is_file() else list(path.glob("*.safetensors"))
        total += sum(f.stat().st_size for f in files if f.is_file())
    return total


def _residual_mib(store: CalibrationStore | None, plan: LaunchPlan, host: Host) -> float:
    """What backends on this machine's GPU took beyond their estimates (0 before any)."""
    if store is None:
        return 0.0
    from app.runtime.calibrate import calibration_host, gpu_model

    name = gpu_model(plan.gpus) or "GPU"
    return store.machine_residual(calibration_host(host), name, plan.engine) or 0.0


def check_fit(plan: LaunchPlan, host: Host,
              calibration: CalibrationStore | None = None) -> FitVerdict:
    """The planner's verdict, or an unchecked "fits" when it cannot be checked here; the
    estimate corrected by `calibration`'s residual for this machine where it has one."""
    if not plan.gpus or plan.engine != "llamacpp" or host.is_remote:
        return FitVerdict(True)
    free = free_gpu_memory_mib(plan.gpus)
    if free is None:
        return FitVerdict(True, message="GPU memory could not be read (no NVIDIA driver)")
    residual = _residual_mib(calibration, plan, host)
    free = [f - residual for f in free]  # the engine takes `residual` more than estimated
    try:
        from app.fit.launch import fit_plan_of
        from app.fit.planner import plan_fit
        from app.library.gguf import read_gguf_header

        header = read_gguf_header(Path(plan.model))
        fit_plan = fit_plan_of(plan, adapter_bytes(plan.adapters))
        result = plan_fit(header, fit_plan, free)
    except Exception as exc:  # a planner gap must not block a start
        log.info("fit check skipped for %s: %s", plan.model, exc)
        return FitVerdict(True, message=f"fit not checked: {exc}")
    peak = max((d.total_mib - f for d, f in zip(result.estimate.devices, free, strict=False)),
               default=0.0)
    if result.fits:
        return FitVerdict(True, checked=True)
    return FitVerdict(False, over_mib=peak, checked=True,
                      message=f"the plan needs about {peak:.0f} MiB more than the chosen GPUs "
                              "have free right now; start anyway?")


def host_need_mib(plan: LaunchPlan) -> float | None:
    """What a CPU-only llama.cpp plan takes of the host's RAM by the fit planner (weights,
    KV, compute), or None where it cannot be estimated here (vLLM, a remote file)."""
    if plan.engine != "llamacpp" or not Path(plan.model).is_file():
        return None
    try:
        from app.fit.launch import fit_plan_of
        from app.fit.planner import plan_fit
        from app.library.gguf import read_gguf_header

        header = read_gguf_header(Path(plan.model))
        result = plan_fit(header, fit_plan_of(plan, adapter_bytes(plan.adapters)), [])
    except Exception as exc:  # a planner gap: not checked
        log.info("no host estimate for %s: %s", plan.model, exc)
        return None
    return float(result.estimate.host.total_mib)
