"""The machine a bench run ran on, as the run keeps it: numbers only compare on one rig."""

from __future__ import annotations

import contextlib
import os
import platform
import socket
from pathlib import Path
from typing import Any

import psutil

from app.runtime.hosts import Host


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _gpus() -> list[dict[str, Any]]:
    """This machine's GPUs as NVML names them (none where it does not answer)."""
    from app.telemetry.nvml import NvmlSampler

    sampler = NvmlSampler()
    try:
        reading = sampler.sample()
    finally:
        sampler.close()
    return [{"index": g.index, "name": g.name, "memory_mib": g.memory_total_mib}
            for g in reading.gpus]


def machine_info(host: Host) -> dict[str, Any]:
    """Where the backends of `host` run: this machine's CPU, RAM and GPUs, or for a
    remote Docker host its name and URL (its hardware is not ours to read)."""
    if host.is_remote:
        return {"host": host.name, "url": host.url}
    return {
        "host": socket.gethostname(), "os": f"{platform.system()} {platform.release()}",
        "cpu": _cpu_model(), "cores": os.cpu_count() or 0,
        "ram_mib": round(psutil.virtual_memory().total / (1 << 20)), "gpus": _gpus(),
    }
