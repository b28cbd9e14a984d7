"""What the user asks the engine to do, and what the estimate says each device will hold."""

from __future__ import annotations

from dataclasses import dataclass, field

MIB = 1024 * 1024


@dataclass(frozen=True)
class FitPlan:
    """A llama-server launch, in its own flags' terms (defaults are llama-server's).

    `gpus` are the CUDA devices used (empty or `device == "cpu"`: a CPU-only run);
    `gpu_layers` None means all layers (-ngl 99/all); `parallel` None means llama-server's
    auto (4 slots with a unified KV cache).
    """

    ctx: int = 4096
    parallel: int | None = 1
    kv_unified: bool | None = None
    flash_attn: bool = True
    cache_type_k: str = "f16"
    cache_type_v: str = "f16"
    batch: int = 2048
    ubatch: int = 512
    experts: int | None = None
    device: str = "cuda"
    gpus: tuple[int, ...] = (0,)
    gpu_memory_mib: tuple[int, ...] = ()
    gpu_layers: int | None = None
    n_cpu_moe: int = 0
    cpu_moe_all: bool = False
    tensor_split: tuple[float, ...] = ()
    mmap: bool = True
    adapter_bytes: int = 0
    """LoRA adapters preloaded with the model (a backend launched with roles): llama.cpp
    puts each adapter tensor in the buffer of the layer it adapts."""

    @property
    def on_gpu(self) -> bool:
        return self.device == "cuda" and bool(self.gpus)

    @property
    def n_slots(self) -> int:
        return 4 if self.parallel is None else max(1, self.parallel)

    @property
    def unified(self) -> bool:
        if self.kv_unified is not None:
            return self.kv_unified
        return self.parallel is None


@dataclass(frozen=True)
class HostMemory:
    """The host's RAM: all of it, and what is available now (psutil's `available`: free plus
    the page cache it can drop); None when unknown."""

    total_mib: float
    available_mib: float | None = None

    @property
    def room_mib(self) -> float:
        return self.total_mib if self.available_mib is None else self.available_mib


@dataclass
class DeviceMemory:
    """What one device (a GPU, or the host) holds, in MiB, by kind."""

    name: str
    weights_mib: float = 0.0
    kv_mib: float = 0.0
    compute_mib: float = 0.0
    output_mib: float = 0.0
    overhead_mib: float = 0.0
    buffers: dict[str, float] = field(default_factory=dict)
    """The engine's own buffers behind these numbers, e.g. {"model:CUDA0": 5347.57}."""

    @property
    def total_mib(self) -> float:
        return (
            self.weights_mib + self.kv_mib + self.compute_mib + self.output_mib + self.overhead_mib
        )

    def as_dict(self) -> dict[str, float | str]:
        return {
            "name": self.name,
            "weights_mib": round(self.weights_mib, 2),
            "kv_mib": round(self.kv_mib, 2),
            "compute_mib": round(self.compute_mib, 2),
            "output_mib": round(self.output_mib, 2),
            "overhead_mib": round(self.overhead_mib, 2),
            "total_mib": round(self.total_mib, 2),
        }


@dataclass
class Estimate:
    """An engine's predicted memory: each GPU, and the host."""

    engine: str
    devices: list[DeviceMemory]
    host: DeviceMemory
    n_ctx: int = 0
    notes: list[str] = field(default_factory=list)
