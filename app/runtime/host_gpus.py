"""The GPUs of a host and their free memory: NVML for this machine, a short-lived probe
container (`nvidia-smi` injected by the NVIDIA container runtime) for a Docker engine.

The probe doubles as the proof that GPU requests work on that engine: it asks for every
GPU exactly the way a backend does, so a missing runtime fails here first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from app.telemetry.nvml import NvmlSampler

log = logging.getLogger(__name__)

PROBE_QUERY = "index,uuid,name,memory.total,memory.free"
PROBE_ARGS = ("--query-gpu=" + PROBE_QUERY, "--format=csv,noheader,nounits")


@dataclass(frozen=True)
class HostGpu:
    """One GPU of a host; memory in MiB, None where it could not be read."""

    index: str
    uuid: str
    name: str
    total_mib: float | None = None
    free_mib: float | None = None

    def as_dict(self) -> dict[str, object]:
        return {"index": self.index, "uuid": self.uuid, "name": self.name,
                "total_mib": self.total_mib, "free_mib": self.free_mib}


def _mib(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:  # "[N/A]" on some boards
        return None


def parse_nvidia_smi(output: str) -> list[HostGpu]:
    """GPUs from `nvidia-smi --query-gpu=index,uuid,name,memory.total,memory.free` CSV.

    Lines that are not five comma-separated fields (warnings, blank lines) are skipped.
    """
    gpus = []
    for line in output.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 5 or not parts[0].isdigit():
            continue
        index, uuid, name, total, free = parts
        gpus.append(HostGpu(index, uuid, name, _mib(total), _mib(free)))
    return gpus


def local_gpus() -> tuple[list[HostGpu], str | None]:
    """This machine's NVIDIA GPUs from NVML, and why there are none (no driver…) if so."""
    sampler = NvmlSampler()
    try:
        reading = sampler.sample()
    finally:
        sampler.close()
    if not reading.status.available:
        return [], reading.status.message or "no NVIDIA GPU found"
    gpus = []
    for gpu in reading.gpus:
        free = (None if gpu.memory_total_mib is None or gpu.memory_used_mib is None
                else gpu.memory_total_mib - gpu.memory_used_mib)
        gpus.append(HostGpu(str(gpu.index), gpu.uuid or "", gpu.name, gpu.memory_total_mib,
                            free))
    return gpus, None
