"""What a Fit plan must fit in: MiB per GPU (as entered, or as the monitor sees them) and
the host's RAM."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from decimal import Decimal

from app.errors import UserError
from app.fit.plan import HostMemory
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
    """The GPU memory as entered ("98304", "96G", "24G,24G") or filled in from the monitor."""
    gpu_mib: tuple[float, ...] = ()
    problem: str = ""
    """Why `gpu_memory_text` cannot be read ("" when it can); `gpu_mib` is then empty."""
    from_monitor: bool = False
    seen: tuple[SeenGpu, ...] = ()
    host: HostMemory | None = None
    """The host's RAM (None: unknown)."""

    @property
    def host_ram_mib(self) -> float | None:
        return self.host.total_mib if self.host is not None else None


MIB_PER_UNIT = {"": 1, "m": 1, "mb": 1, "mib": 1,
                "g": 1024, "gb": 1024, "gib": 1024,
                "t": 1024**2, "tb": 1024**2, "tib": 1024**2}
"""MiB in one unit of GPU memory. A bare number is MiB (what nvidia-smi prints). GB means
GiB here, as it does on a GPU's box: a "96 GB" card holds 96 GiB-class memory (97887 MiB
usable on an RTX PRO 6000), and reading it as 96 * 10**9 bytes would plan for 91553 MiB,
6.7 GiB less than the card has."""
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]*)")


def parse_gpu_memory(text: str, *, label: str = "GPU memory") -> list[int]:
    """MiB per GPU from what a user types: "98304", "96G", "96 GB", "96 GiB", "96gb",
    "24G,24G" (one value per GPU, commas or semicolons between); empty: no GPU (a CPU-only
    plan). `label` names the field in the message ("--gpu-memory" on the command line).

    A bare number is MiB; MB and M are MiB too; G, GB and GiB are all 1024 MiB, T, TB and
    TiB 1024 GiB (see `MIB_PER_UNIT` for why GB is binary). The conversion is exact: the
    number is read as a decimal and multiplied by the unit, so "23.5G" is 24064 MiB; a
    result with a fraction of a MiB is rounded down, never planning for more than typed.

    Raises:
        UserError: a value that is not a size, has another unit, or is not more than 0 MiB.
    """
    out = []
    for raw in text.replace(";", ",").split(","):
        part = raw.strip()
        if not part:
            continue
        match = _SIZE.fullmatch(part.lower())
        unit = MIB_PER_UNIT.get(match.group(2)) if match else None
        mib = int(Decimal(match.group(1)) * unit) if match and unit else 0
        if mib <= 0:
            raise UserError(f"{label}: {part!r} is not a memory size; use MiB (98304) or "
                            "GB (96G), one per GPU separated by commas (24G,24G)")
        out.append(mib)
    return out


def host_memory() -> HostMemory | None:
    """The host's total and available RAM in MiB from psutil (None if unknown); the
    monitor's `HostReading` says the same once it samples."""
    try:
        import psutil

        vm = psutil.virtual_memory()
    except Exception:  # a host reading is a nicety; the plan works without it
        return None
    return HostMemory(float(vm.total) / 2**20, float(vm.available) / 2**20)


def seen_gpus(snapshot: Snapshot) -> tuple[SeenGpu, ...]:
    """The GPUs of a monitor reading that can be planned for (not lost, memory known)."""
    return tuple(
        SeenGpu(g.index, g.name, float(g.memory_total_mib))
        for g in snapshot.gpus
        if not g.lost and g.memory_total_mib
    )
