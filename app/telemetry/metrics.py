"""Names of the history's metrics, and a snapshot turned into them.

GPU metrics are `<gpu key>.<field>` ("nvidia0.temperature_c"), VRAM per backend
`<gpu key>.vram.<backend>`, host metrics `host.<field>`.
"""

from __future__ import annotations

from app.telemetry.snapshot import Snapshot

GPU_FIELDS = (
    "memory_used_mib",
    "memory_total_mib",
    "temperature_c",
    "slowdown_c",
    "power_w",
    "power_limit_w",
    "gpu_util_pct",
    "memory_util_pct",
    "sm_clock_mhz",
    "memory_clock_mhz",
    "fan_pct",
)
HOST_FIELDS = ("ram_used_mib", "ram_total_mib", "swap_used_mib", "swap_total_mib")


def gpu_key(gpu: str, field: str) -> str:
    return f"{gpu}.{field}"


def vram_key(gpu: str, backend: str) -> str:
    return f"{gpu}.vram.{backend}"


def host_key(field: str) -> str:
    return f"host.{field}"


def flatten(snapshot: Snapshot) -> dict[str, float | None]:
    """Every plotted value of `snapshot` by metric name (None: not reported)."""
    values: dict[str, float | None] = {}
    for gpu in snapshot.gpus:
        if gpu.lost:
            continue
        prefix = gpu.key
        for field in GPU_FIELDS:
            values[f"{prefix}.{field}"] = getattr(gpu, field)
        for backend, mib in snapshot.vram_by_backend.get(prefix, ()):
            values[f"{prefix}.vram.{backend}"] = mib
    host = snapshot.host
    if host is not None:
        for field in HOST_FIELDS:
            values[f"host.{field}"] = getattr(host, field)
        values["host.cpu_pct"] = host.cpu_mean_pct
        values["host.cpu_max_pct"] = max(host.cpu_pct) if host.cpu_pct else None
    return values
