"""Short texts about a snapshot: the tray's tooltip and the CLI's human-readable line."""

from __future__ import annotations

import time

from app.telemetry.snapshot import GpuReading, Snapshot

GIB = 1024.0


def _fmt(value: float | None, unit: str, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}{unit}"


def hottest_gpu(snapshot: Snapshot) -> GpuReading | None:
    readings = [g for g in snapshot.gpus if g.temperature_c is not None]
    return max(readings, key=lambda g: g.temperature_c or 0.0, default=None)


def fullest_gpu(snapshot: Snapshot) -> GpuReading | None:
    readings = [g for g in snapshot.gpus if g.memory_fraction is not None]
    return max(readings, key=lambda g: g.memory_fraction or 0.0, default=None)


def vram_text(gpu: GpuReading) -> str:
    if gpu.memory_used_mib is None or gpu.memory_total_mib is None:
        return "VRAM -"
    pct = 100.0 * gpu.memory_used_mib / gpu.memory_total_mib if gpu.memory_total_mib else 0.0
    return f"{gpu.memory_used_mib / GIB:.1f} / {gpu.memory_total_mib / GIB:.1f} GiB ({pct:.0f} %)"


def tray_tooltip(snapshot: Snapshot | None) -> str:
    """The hottest GPU and the fullest VRAM (and the reason when there is no GPU)."""
    lines = ["Rigdeck"]
    if snapshot is None:
        return "Rigdeck — starting the monitor"
    hot = hottest_gpu(snapshot)
    full = fullest_gpu(snapshot)
    if hot is not None:
        lines.append(f"Hottest: GPU {hot.index} at {_fmt(hot.temperature_c, ' °C')}")
    if full is not None:
        lines.append(f"VRAM: GPU {full.index} {vram_text(full)}")
    lost = [g for g in snapshot.gpus if g.lost]
    if lost:
        lines.append("Lost: " + ", ".join(f"GPU {g.index}" for g in lost))
    if not snapshot.gpus:
        reasons = [s.message for s in snapshot.sources if not s.available and s.message]
        lines.append("No GPU readings: " + ("; ".join(reasons[:1]) or "none found"))
    host = snapshot.host
    if host is not None:
        lines.append(f"RAM: {host.ram_used_mib / GIB:.1f} / {host.ram_total_mib / GIB:.1f} GiB")
    return "\n".join(lines)


def one_line(snapshot: Snapshot) -> str:
    """`rigdeck monitor`'s line: time, each GPU, then the host."""
    parts = [time.strftime("%H:%M:%S", time.localtime(snapshot.t))]
    for gpu in snapshot.gpus:
        if gpu.lost:
            parts.append(f"GPU{gpu.index} LOST")
            continue
        parts.append(
            f"GPU{gpu.index} {_fmt(gpu.temperature_c, '°C')} {vram_text(gpu)} "
            f"{_fmt(gpu.power_w, ' W')} {_fmt(gpu.gpu_util_pct, ' %')}"
        )
    host = snapshot.host
    if host is not None:
        parts.append(
            f"RAM {host.ram_used_mib / GIB:.1f}/{host.ram_total_mib / GIB:.1f} GiB "
            f"swap {host.swap_used_mib / GIB:.1f} GiB CPU {_fmt(host.cpu_mean_pct, ' %')}"
        )
    return " | ".join(parts)
