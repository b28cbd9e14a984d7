"""Start llama-server for a plan just long enough to read its own buffer sizes.

Used by calibration (what did the engine really allocate here?) and by the accuracy checks.
The server loads, prints its `… buffer size` lines, and is stopped before it serves.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import time
from pathlib import Path

from app.engines.llamacpp_log import BufferReport, parse_llama_log
from app.errors import UserError
from app.fit.plan import FitPlan

log = logging.getLogger(__name__)


def server_args(binary: Path, model: Path, plan: FitPlan, port: int) -> list[str]:
    """llama-server's command line for `plan` (CPU-only when plan.device is "cpu")."""
    args = [
        str(binary),
        "-m",
        str(model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "-c",
        str(plan.ctx),
        "-np",
        str(plan.n_slots),
        "-fa",
        "on" if plan.flash_attn else "off",
        "-ctk",
        plan.cache_type_k,
        "-ctv",
        plan.cache_type_v,
        "-b",
        str(plan.batch),
        "-ub",
        str(plan.ubatch),
        "-fit",
        "off",
        "-lv",
        "4",
        "-t",
        "2",
    ]
    if plan.kv_unified is not None:
        args.append("-kvu" if plan.kv_unified else "-no-kvu")
    args += [
        "-ngl",
        "0" if not plan.on_gpu else str(plan.gpu_layers if plan.gpu_layers is not None else 999),
    ]
    if plan.on_gpu and plan.n_cpu_moe:
        args += ["--n-cpu-moe", str(plan.n_cpu_moe)]
    if plan.experts is not None:
        args += ["--override-kv", f"{_arch(model)}.expert_used_count=int:{plan.experts}"]
    return args


def _arch(model: Path) -> str:
    from app.library.gguf import read_gguf_header

    arch = read_gguf_header(model).get("general.architecture")
    return str(arch)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measure_llama_server(
    binary: Path, model: Path, plan: FitPlan, timeout: float = 120.0
) -> BufferReport:
    """Run llama-server until it listens, stop it, and return its buffer lines."""
    args = server_args(binary, model, plan, _free_port())
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "listening on" in line or time.monotonic() > deadline:
                break
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
    report = parse_llama_log(lines)
    if report.empty:
        tail = "".join(lines[-15:])
        raise UserError(f"llama-server printed no buffer sizes; its last lines:\n{tail}")
    return report
