"""VRAM per backend from NVML's host PIDs."""

import os

from app.telemetry.attribution import (
    OTHER,
    attribute_vram,
    merge_pid_maps,
    pids_from_container_top,
    pids_of_local_process,
)
from app.telemetry.snapshot import GpuProcess, GpuReading


def _gpu(used: float | None, processes: tuple[GpuProcess, ...]) -> GpuReading:
    return GpuReading(
        "nvidia", 0, "H100", memory_used_mib=used, memory_total_mib=81559.0, processes=processes
    )


def test_backends_get_their_processes_memory_and_the_rest_is_other() -> None:
    gpu = _gpu(
        30000.0,
        (GpuProcess(10, 20000.0), GpuProcess(11, 4000.0), GpuProcess(99, 5000.0)),
    )
    shares = attribute_vram(gpu, {10: "qwen3-30b", 11: "qwen3-30b"})
    assert shares == (("qwen3-30b", 24000.0), (OTHER, 6000.0))


def test_the_trace_process_is_other_until_a_backend_claims_it() -> None:
    gpu = _gpu(6876.0, (GpuProcess(7628, 6388.0),))
    assert attribute_vram(gpu, {}) == ((OTHER, 6876.0),)
    assert attribute_vram(gpu, {7628: "moe30"}) == (("moe30", 6388.0), (OTHER, 488.0))
    assert attribute_vram(_gpu(None, ()), {}) is None


def test_container_processes_as_the_engine_lists_them() -> None:
    top = {
        "Titles": ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
        "Processes": [
            ["root", "7628", "7601", "99", "10:00", "?", "00:10:00", "/app/llama-server -c 32768"],
            ["root", "7700", "7628", "0", "10:00", "?", "00:00:00", "sh"],
        ],
    }
    assert pids_from_container_top("moe30", top) == {7628: "moe30", 7700: "moe30"}
    assert pids_from_container_top("x", {"Titles": ["CMD"], "Processes": [["a"]]}) == {}


def test_a_local_backend_by_pid() -> None:
    mine = pids_of_local_process("local", os.getpid())
    assert mine[os.getpid()] == "local"
    assert pids_of_local_process("gone", 2**22 + 12345) == {}
    assert merge_pid_maps([{1: "a"}, {2: "b"}]) == {1: "a", 2: "b"}
