"""Parsing llama-server's buffer lines."""

# ruff: noqa: E501  (real log lines are long)

from __future__ import annotations

from app.engines.llamacpp_log import parse_llama_log

LOG = """\
0.01.461.882 I load_tensors:   CPU_Mapped model buffer size =   235.16 MiB
0.01.461.942 I load_tensors:   CPU_REPACK model buffer size =    12.66 MiB
0.01.486.450 I llama_context:        CPU  output buffer size =     1.00 MiB
0.01.486.561 I llama_kv_cache:        CPU KV buffer size =     6.00 MiB
0.01.486.983 I llama_kv_cache: size =    6.00 MiB (  2048 cells,   3 layers,  1/1 seqs), K (f16):    3.00 MiB, V (f16):    3.00 MiB
0.01.487.098 I llama_kv_cache:        CPU KV buffer size =    15.00 MiB
0.01.498.303 I llama_kv_cache: size =   15.00 MiB (  1024 cells,  15 layers,  1/1 seqs), K (f16):    7.50 MiB, V (f16):    7.50 MiB
0.01.502.162 I sched_reserve:      CUDA0 compute buffer size =    88.01 MiB
0.01.502.162 I sched_reserve:  CUDA_Host compute buffer size =    12.01 MiB
0.00.783.962 I common_memory_breakdown_print: |   - Host               |                  275 =   222 +      21 +      31                |
0.02.478.868 I srv  llama_server: listening on http://127.0.0.1:18123
"""


def test_buffers_are_summed_per_kind_and_type() -> None:
    rep = parse_llama_log(LOG.splitlines())
    assert rep.model == {"CPU_Mapped": 235.16, "CPU_REPACK": 12.66}
    assert rep.kv == {"CPU": 21.0}
    assert rep.total("kv") == 21.0
    assert rep.compute == {"CUDA0": 88.01, "CUDA_Host": 12.01}
    assert rep.output == {"CPU": 1.0}
    assert rep.kv_caches == [(6.0, 2048, 3), (15.0, 1024, 15)]
    assert rep.breakdown["Host"] == [275, 222, 21, 31]
    assert rep.ready


def test_a_second_reserve_replaces_the_compute_buffers() -> None:
    lines = ["sched_reserve:      CUDA0 compute buffer size =    10.00 MiB",
             "sched_reserve:      CUDA0 compute buffer size =    20.00 MiB"]
    assert parse_llama_log(lines).compute == {"CUDA0": 20.0}


def test_no_buffer_lines_is_empty() -> None:
    assert parse_llama_log(["hello"]).empty
