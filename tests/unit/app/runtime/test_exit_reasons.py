"""How a backend ended, in the words its card and the "backend died" alert show: a signal
by its name (a process's -N, a container's 128 + N), out of memory, an exit code with the
log's last line, and a status nobody could learn said as unknown, never "code None"."""

from __future__ import annotations

import pytest

from app.runtime.failure import exit_signal, exit_status, explain_exit

READY_LOG = ("main: server is listening on http://127.0.0.1:8080 - starting the main loop\n"
             "srv  update_slots: all slots are idle\n")


@pytest.mark.parametrize(("code", "said"), [
    (-9, "the server was killed (SIGKILL) while running"),
    (137, "the server was killed (SIGKILL) while running"),
    (-15, "the server was terminated (SIGTERM) while running"),
    (143, "the server was terminated (SIGTERM) while running"),
    (-2, "the server was interrupted (SIGINT) while running"),
    (-11, "the server crashed (SIGSEGV, segmentation fault) while running"),
    (139, "the server crashed (SIGSEGV, segmentation fault) while running"),
    (-6, "the server aborted (SIGABRT) while running"),
    (-4, "the server crashed (SIGILL, illegal instruction: the build may use CPU features "
         "this machine lacks) while running"),
    (-10, "the server was ended by signal 10 while running"),
])
def test_a_signal_is_named_whether_a_process_or_a_container_reports_it(
        code: int, said: str) -> None:
    assert explain_exit(code, READY_LOG) == said


def test_an_exit_code_is_said_with_the_last_line_of_the_log() -> None:
    assert explain_exit(1, READY_LOG + "main: exiting due to model loading error\n") == (
        "the server exited with code 1; its last line: main: exiting due to model loading "
        "error")
    assert explain_exit(3, "") == "the server exited with code 3; it printed nothing"


def test_an_unknown_exit_status_is_said_as_unknown() -> None:
    reason = explain_exit(None, READY_LOG)
    assert reason == ("the server ended; its exit status is unknown; its last line: main: "
                      "server is listening on http://127.0.0.1:8080 - starting the main loop")
    assert "None" not in reason
    assert exit_status(None) == "ended; its exit status is unknown"


def test_a_container_killed_for_memory_is_said_as_out_of_memory() -> None:
    assert explain_exit(137, READY_LOG, oom_killed=True) == (
        "the server was killed (SIGKILL) because the host ran out of memory "
        "(host RAM, not VRAM)")


def test_the_log_explains_before_the_signal_does() -> None:
    """llama.cpp aborts (SIGABRT) after printing what failed: the print says more."""
    log = "ggml_backend_cuda_buffer_type_alloc_buffer: cudaMalloc failed: out of memory\n"
    assert explain_exit(-6, log).startswith("CUDA out of memory")


@pytest.mark.parametrize(("code", "signal"), [
    (-9, 9), (137, 9), (143, 15), (0, None), (1, None), (None, None), (255, None), (130, 2),
])
def test_exit_signal_reads_both_conventions(code: int | None, signal: int | None) -> None:
    assert exit_signal(code) == signal


@pytest.mark.parametrize("line", [
    "ggml_backend_cpu_buffer_type_alloc_buffer: failed to allocate buffer of size 9999999",
    "llama_kv_cache: failed to allocate CPU buffer for the KV cache",
    "terminate called after throwing an instance of 'std::bad_alloc'",
])
def test_a_cpu_backend_out_of_memory_is_said_as_host_ram_not_cuda(line: str) -> None:
    reason = explain_exit(-6, line + "\n")
    assert reason.startswith("out of memory in host RAM")
    assert "CUDA" not in reason


def test_a_cuda_buffer_that_cannot_be_allocated_is_cuda_out_of_memory() -> None:
    log = "llama_kv_cache: failed to allocate CUDA0 buffer for the KV cache\n"
    assert explain_exit(-6, log).startswith("CUDA out of memory")
