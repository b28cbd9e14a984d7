"""What a Fit plan must fit in: MiB per GPU (as entered, or as the monitor sees them) and
the host's RAM."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from app.errors import UserError
from app.telemetry.snapshot import Snapshot

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SeenGpu:
    """A GPU the monitor sees on this host."""

    index: int
    name: str
    memory_mib: float


@dataclass(frozen=True)
class Capacities:
    """What the plan must fit in: MiB per GPU (none: CPU only), and the host's RAM."""

    gpu_memory_text: str = ""
    """The GPU memory as entered ("98304", "24576,24576") or filled in from the monitor."""
    gpu_mib: tuple[float, ...] = ()
    problem: str = ""
    """Why `gpu_memory_text` cannot be read ("" when it can); `gpu_mib` is then empty."""
    from_monitor: bool = False
    seen: tuple[SeenGpu, ...] = ()
    host_ram_mib: float | None = None


def parse_gpu_memory(text: str) -> list[float]:
    """MiB per GPU from "98304" or "24576, 24576"; empty: no GPU (a CPU-only plan).

    Raises:
        UserError: a value that is not a positive number.
    """
    out = []
    for raw in text.replace(";", ",").split(","):
        part = raw.strip().lower().removesuffix("mib").strip()
        if not part:
            continue
        try:
            value = float(part)
        except ValueError:
            raise UserError(
                f"GPU memory must be MiB per GPU, e.g. 98304 or 24576,24576; not {part!r}"
            ) from None
        if value <= 0:
            raise UserError("GPU memory must be a positive number of MiB")
        out.append(value)
    return out


def host_ram_mib() -> float | None:
    """The host's RAM from psutil (None if unknown)."""
    try:
        import psutil

        return float(psutil.virtual_memory().total) / 2**20
    except Exception:  # a host reading is a nicety; the plan works without it
        return None


def seen_gpus(snapshot: Snapshot) -> tuple[SeenGpu, ...]:
    """The GPUs of a monitor reading that can be planned for (not lost, memory known)."""
    return tuple(
        SeenGpu(g.index, g.name, float(g.memory_total_mib))
        for g in snapshot.gpus
        if not g.lost and g.memory_total_mib
    )
