"""GPU memory per backend.

NVML reports host PIDs. A containerised backend's PIDs come from the engine (the
container's processes as `docker top` lists them); a local backend's from its process
and children. Memory of any other PID, and what no process accounts for (the driver,
other users' contexts), goes to "other".
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import psutil

from app.telemetry.snapshot import GpuProcess, GpuReading

log = logging.getLogger(__name__)

OTHER = "other"


def attribute_vram(
    gpu: GpuReading, backends_by_pid: Mapping[int, str]
) -> tuple[tuple[str, float], ...] | None:
    """MiB per backend on `gpu`, then "other" (used minus what backends hold), sorted by name.

    None when the GPU reports no memory use.
    """
    if gpu.memory_used_mib is None:
        return None
    per_backend: dict[str, float] = {}
    for process in gpu.processes or ():
        backend = backends_by_pid.get(process.pid)
        if backend is not None and process.used_mib is not None:
            per_backend[backend] = per_backend.get(backend, 0.0) + process.used_mib
    other = max(0.0, gpu.memory_used_mib - sum(per_backend.values()))
    return (*sorted(per_backend.items()), (OTHER, other))


def pids_from_container_top(backend: str, top: Mapping[str, Any]) -> dict[int, str]:
    """Map the PIDs of a container's processes (docker-py's `container.top()`) to `backend`.

    Docker reports host PIDs in the "PID" column, as NVML does.
    """
    titles: Sequence[str] = top.get("Titles") or ()
    if "PID" not in titles:
        return {}
    column = list(titles).index("PID")
    found: dict[int, str] = {}
    for row in top.get("Processes") or ():
        try:
            found[int(row[column])] = backend
        except (ValueError, IndexError):
            continue
    return found


def pids_of_local_process(backend: str, pid: int) -> dict[int, str]:
    """A local backend's PID and its children's, mapped to `backend` (empty if it is gone)."""
    try:
        process = psutil.Process(pid)
        children = process.children(recursive=True)
    except psutil.Error:
        return {}
    return {p.pid: backend for p in (process, *children)}


def merge_pid_maps(maps: Iterable[Mapping[int, str]]) -> dict[int, str]:
    """One pid→backend mapping from several (containers and local processes)."""
    merged: dict[int, str] = {}
    for mapping in maps:
        merged.update(mapping)
    return merged


def processes_without_backend(
    gpu: GpuReading, backends_by_pid: Mapping[int, str]
) -> list[GpuProcess]:
    """Processes on `gpu` that belong to no Rigdeck backend (shown as "other")."""
    return [p for p in gpu.processes or () if p.pid not in backends_by_pid]
