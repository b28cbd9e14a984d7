"""The real H100 measurements (shared/data) and how to estimate each of their rows."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app.fit.llamacpp_estimate import estimate_llamacpp
from app.fit.plan import Estimate, FitPlan
from app.library.gguf import read_gguf_header

REPO = Path(__file__).resolve().parents[4]


def shared_data() -> Path:
    """shared/data beside the checkout (CI), else the development copy."""
    beside = REPO.parent / "shared" / "data"
    return beside if beside.is_dir() else Path("/work/shared/data")


def need(path: Path) -> Path:
    """The path, or a skip (a failure under CI=true) when it is missing."""
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"reference data missing: {path}")
        pytest.skip(f"reference data missing: {path}")
    return path


@dataclass(frozen=True)
class Row:
    raw: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.raw["name"])

    def plan(self) -> FitPlan:
        extra = str(self.raw.get("extra", "")).split()
        ub = int(extra[extra.index("-ub") + 1]) if "-ub" in extra else 512
        b = int(extra[extra.index("-b") + 1]) if "-b" in extra else 2048
        ct = str(self.raw["cache_type"])
        cpu_moe = int(extra[extra.index("--n-cpu-moe") + 1]) if "--n-cpu-moe" in extra else 0
        return FitPlan(
            ctx=int(self.raw["ctx"]),
            parallel=1,
            flash_attn=self.raw["fa"] == "on",
            cache_type_k=ct,
            cache_type_v=ct,
            ubatch=ub,
            batch=b,
            device="cuda",
            gpus=(0,),
            n_cpu_moe=cpu_moe,
        )

    @property
    def experts_in_host_memory(self) -> bool:
        """Run with --n-cpu-moe: the scheduler copies host-resident expert weights to the
        GPU, one split per offloaded op, so its compute buffer grows."""
        return self.plan().n_cpu_moe > 0


def rows(*, experts_in_host_memory: bool = False) -> list[Row]:
    """The rows that ran (`experts_in_host_memory`: only those with --n-cpu-moe, else
    only those without)."""
    path = need(shared_data() / "llamacpp_cuda_h100_reference.jsonl")
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            raw = json.loads(line)
            if raw.get("ok"):
                out.append(Row(raw))
    return [r for r in out if r.experts_in_host_memory == experts_in_host_memory]


def estimate_row(row: Row) -> Estimate:
    header = read_gguf_header(
        need(shared_data() / "gguf-headers" / f"{row.raw['model']}.header.gguf")
    )
    return estimate_llamacpp(header, row.plan())


def components(row: Row, est: Estimate) -> dict[str, tuple[float, float]]:
    """(estimated, measured) MiB per buffer and for the process total on the GPU."""
    g, h = est.devices[0], est.host
    r = row.raw
    return {
        "model CUDA0": (g.weights_mib, r["model_buf"].get("CUDA0", 0.0)),
        "model CPU_Mapped": (
            h.buffers.get("model:CPU_Mapped", 0.0),
            r["model_buf"].get("CPU_Mapped", 0.0),
        ),
        "KV CUDA0": (g.kv_mib, r["kv_buf"].get("CUDA0", 0.0)),
        "compute CUDA0": (g.compute_mib, r["compute_buf"].get("CUDA0", 0.0)),
        "compute CUDA_Host": (h.compute_mib, r["compute_buf"].get("CUDA_Host", 0.0)),
        "output CUDA_Host": (h.output_mib, r["output_buf"].get("CUDA_Host", 0.0)),
        "GPU total (nvidia-smi)": (g.total_mib, float(r["smi_proc_idle_mib"])),
    }
