"""When a backend becomes ready: what it really took, beside what the fit planner said.

The engine's own buffer lines (llama-server logs them at `-lv 4`, which its recipe
passes) say what it allocated on each device; on a local GPU, NVML adds the process's
whole memory (the CUDA runtime's own included). The record goes to the calibration
store, keyed by host, GPU model (or "CPU"), engine and engine version, so the Fit page
can show "measured last time" and the next estimate on this machine is corrected by
the residual. Blocking (reads the log, the GGUF header, NVML): the service runs it on
its worker threads.
"""

from __future__ import annotations

import logging
import re
import socket
from dataclasses import dataclass
from pathlib import Path

from app.engines.llamacpp_log import BufferReport, parse_llama_log
from app.engines.plan import LaunchPlan
from app.fit.calibration import CPU_MODEL, CalibrationKey, CalibrationStore, plan_key
from app.runtime.backend import Backend
from app.runtime.hosts import Host

log = logging.getLogger(__name__)

LOG_LINES = 100_000
"""How much of the log is read back: all of a load's lines, even with many tensors."""
_BUILD = re.compile(r"\bbuild:? (?P<number>\d+) \((?P<commit>[^)]*)\)")
_HOST_BUFFERS = ("CPU",)
"""Buffer types that live in host memory start so (CPU, CPU_Mapped, CPU_REPACK)."""


@dataclass(frozen=True)
class Measurement:
    """One ready backend's memory: on its GPUs (the fullest one), or on the host."""

    on_gpu: bool
    estimated_mib: float
    measured_mib: float
    source: str
    """"nvml" (the process's GPU memory) or "engine" (its buffers, summed)."""
    host_buffers_mib: float
    report: BufferReport
    key: CalibrationKey
    plan: str


def engine_version(log_text: str) -> str:
    """llama-server's build as its log's first lines say it ("6532 (a1b2c3d)"), or ""."""
    found = _BUILD.search(log_text)
    return f"{found.group('number')} ({found.group('commit')})" if found else ""


def calibration_host(host: Host) -> str:
    """The machine a host's backends run on, as the Fit page names this one."""
    return host.name if host.is_remote else socket.gethostname()


def _is_host_buffer(buft: str) -> bool:
    return buft.startswith(_HOST_BUFFERS)


def _gpu_buffers(report: BufferReport) -> dict[str, float]:
    """MiB per GPU buffer type (CUDA0, CUDA1, …) over every kind."""
    per: dict[str, float] = {}
    for kind in ("model", "kv", "compute", "output"):
        for buft, mib in report.by_kind(kind).items():
            if not _is_host_buffer(buft):
                per[buft] = per.get(buft, 0.0) + mib
    return per


def _host_buffers(report: BufferReport) -> float:
    return sum(mib for kind in ("model", "kv", "compute", "output")
               for buft, mib in report.by_kind(kind).items() if _is_host_buffer(buft))


def _nvml_process(pid: int, gpus: tuple[str, ...]) -> tuple[str, float] | None:
    """(GPU model, MiB on the fullest GPU) that process `pid` holds on `gpus`, or None
    where NVML does not answer (no driver, no such process)."""
    from app.telemetry.nvml import NvmlSampler

    sampler = NvmlSampler()
    try:
        reading = sampler.sample()
    finally:
        sampler.close()
    name, peak = "", None
    for gpu in reading.gpus:
        if gpus and str(gpu.index) not in gpus and gpu.uuid not in gpus:
            continue
        for proc in gpu.processes or ():
            if proc.pid == pid and proc.used_mib is not None and \
                    (peak is None or proc.used_mib > peak):
                name, peak = gpu.name, proc.used_mib
    return None if peak is None else (name, peak)


def gpu_model(gpus: tuple[str, ...]) -> str:
    """The name NVML gives the first of `gpus` ("" when it does not answer)."""
    from app.telemetry.nvml import NvmlSampler

    sampler = NvmlSampler()
    try:
        reading = sampler.sample()
    finally:
        sampler.close()
    for gpu in reading.gpus:
        if not gpus or str(gpu.index) == gpus[0] or gpu.uuid == gpus[0]:
            return gpu.name
    return ""


def _estimate(plan: LaunchPlan) -> tuple[float, float, float]:
    """The planner's MiB for `plan`, as the start's fit check makes it: the fullest GPU,
    that GPU without the CUDA runtime's own (what its buffers alone add up to), the host."""
    from app.fit.launch import fit_plan_of
    from app.fit.llamacpp_estimate import estimate_llamacpp
    from app.library.gguf import read_gguf_header
    from app.runtime.fit_check import adapter_bytes

    fit_plan = fit_plan_of(plan, adapter_bytes(plan.adapters))
    est = estimate_llamacpp(read_gguf_header(Path(plan.model)), fit_plan)
    fullest = max(est.devices, key=lambda d: d.total_mib, default=None)
    if fullest is None:
        return 0.0, 0.0, est.host.total_mib
    return fullest.total_mib, fullest.total_mib - fullest.overhead_mib, est.host.total_mib


def measure(backend: Backend, host: Host, log_text: str) -> Measurement | None:
    """What a ready llama.cpp backend took and what was estimated for its plan; None when
    the log holds no buffer lines (a server that does not print them, a vLLM backend)."""
    if backend.engine != "llamacpp":
        return None
    report = parse_llama_log(log_text.splitlines())
    if report.empty:
        log.info("no buffer lines in %s's log: not calibrated", backend.name)
        return None
    plan = LaunchPlan.from_json(backend.plan_json)
    gpu_est, gpu_buffers_est, host_est = _estimate(plan)
    version = engine_version(log_text)
    where = calibration_host(host)
    gpu_buffers = _gpu_buffers(report)
    on_gpu = bool(plan.gpus) and bool(gpu_buffers)
    host_mib = _host_buffers(report)
    if not on_gpu:
        key = CalibrationKey(where, CPU_MODEL, backend.engine, version)
        return Measurement(False, host_est, host_mib, "engine", host_mib, report, key,
                           plan_key(plan))
    nvml = None
    if not host.is_remote and host.kind == "process" and backend.ref.isdigit():
        nvml = _nvml_process(int(backend.ref), plan.gpus)
    if nvml is not None:
        gpu_name, measured, source = nvml[0], nvml[1], "nvml"
    else:  # the buffers alone: compare them with the estimate's buffers
        gpu_name = "" if host.is_remote else gpu_model(plan.gpus)
        measured, source = max(gpu_buffers.values()), "engine"
        gpu_est = gpu_buffers_est
    key = CalibrationKey(where, gpu_name or "GPU", backend.engine, version)
    return Measurement(True, gpu_est, measured, source, host_mib, report, key,
                       plan_key(plan))


def start_key(backend: Backend) -> str:
    """Which start of which backend a record measured: one record per start."""
    return f"{backend.host}:{backend.ref}:{backend.started_at:.0f}"


def calibrate(store: CalibrationStore, backend: Backend, host: Host,
              log_text: str) -> Measurement | None:
    """Measure a backend that just became ready, set its measured memory, and record it
    once per start of it (a backend found again after a restart is not a new run)."""
    found = measure(backend, host, log_text)
    if found is None:
        return None
    if found.on_gpu:
        backend.measured_vram_mib = found.measured_mib
    backend.measured_ram_mib = found.host_buffers_mib
    start = start_key(backend)
    if not store.has_start(start):
        store.record(found.key, found.estimated_mib, found.measured_mib, found.report,
                     plan=found.plan, start=start, source=found.source)
        log.info("calibration of %s on %s: %.1f MiB measured (%s), %.1f MiB estimated",
                 backend.name, found.key.gpu_model, found.measured_mib, found.source,
                 found.estimated_mib)
    return found
