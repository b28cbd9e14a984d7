"""Why a backend died, in words a user can act on, read from its exit code and log.

The patterns are the messages llama-server and vLLM print for the failures users cause
most; anything else ends in the last meaningful log line, never in silence.
"""

from __future__ import annotations

import re

from app.engines.llamacpp_log import adapter_refusal

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"cudaMalloc failed|CUDA_ERROR_OUT_OF_MEMORY|CUDA out of memory"
                r"|torch\.OutOfMemoryError|failed to allocate CUDA\d* buffer", re.I),
     "CUDA out of memory: the model, context or KV cache does not fit on the chosen GPUs. "
     "Lower the context or parallel slots, quantise the KV cache, or keep MoE layers in RAM."),
    (re.compile(r"out of memory|OutOfMemoryError|failed to allocate .*buffer|std::bad_alloc"
                r"|Cannot allocate memory", re.I),
     "out of memory in host RAM: the model, context or KV cache does not fit in this "
     "machine's memory. Lower the context or parallel slots, quantise the KV cache, or "
     "choose a smaller quantisation."),
    (re.compile(r"(?:error: )?(?:invalid argument|unknown argument|unrecognized arguments?)"
                r":?\s*(?P<flag>\S+)?", re.I),
     "the engine does not know the flag {flag}: this image's version does not support it; "
     "remove it from extra arguments or pick another image"),
    (re.compile(r"couldn't bind HTTP server socket|address already in use|"
                r"Errno 98", re.I),
     "port {port} is already in use on the host: another program listens there"),
    (re.compile(r"failed to open GGUF file|No such file or directory|failed to load model|"
                r"gguf_init_from_file", re.I),
     "the model file could not be opened: it is missing in the container or unreadable "
     "(check the path and that its folder is mounted)"),
    (re.compile(r"could not select device driver|no NVIDIA GPU device is present|"
                r"nvidia-container-cli|unknown or invalid runtime name: nvidia", re.I),
     "the host lacks the NVIDIA container runtime (nvidia-container-toolkit), so it cannot "
     "give GPUs to containers; install it and restart Docker, or start on CPU"),
)

_SIGNALS = {
    1: "received SIGHUP (its session closed)", 2: "was interrupted (SIGINT)", 3: "quit (SIGQUIT)",
    4: "crashed (SIGILL, illegal instruction: the build may use CPU features this "
       "machine lacks)",
    6: "aborted (SIGABRT)", 8: "crashed (SIGFPE, arithmetic error)", 9: "was killed (SIGKILL)",
    11: "crashed (SIGSEGV, segmentation fault)", 15: "was terminated (SIGTERM)",
}
"""What each signal did to the server, by the numbers POSIX systems share (a container's
exit code is 128 + the number on every Linux engine, whatever the client runs on)."""
SIGNAL_EXIT_BASE = 128
"""A container (and a shell) reports death by signal N as exit code 128 + N."""


_ADAPTER_WHY = ((re.compile(r"arch mismatch"), "it was made for another architecture"),
                (re.compile(r"incorrect shape"), "its matrices have other shapes"),
                (re.compile(r"does not exist in base model"),
                 "it adapts tensors the model does not have"))


def _adapter_refused(text: str) -> str | None:
    """llama-server refused a --lora (it then says only "model loading error")."""
    refusal = adapter_refusal(text)
    if refusal is None:
        return None
    why = next((said for pattern, said in _ADAPTER_WHY
                if refusal.why and pattern.search(refusal.why)), refusal.why)
    model = f"model {refusal.model}" if refusal.model else "the model"
    return (f"adapter {refusal.adapter} does not fit {model}" + (f": {why}" if why else "")
            + "; start without it (leave its role out) or with the model it was made for")


def explain_log(text: str, port: int | None = None) -> str | None:
    """The reason a known message in `text` stands for, or None."""
    refused = _adapter_refused(text)  # before the patterns: it also says "failed to load model"
    if refused:
        return refused
    for pattern, reason in _PATTERNS:
        match = pattern.search(text)
        if match:
            flag = match.groupdict().get("flag") or "given"
            return reason.format(flag=flag.strip("'\""), port=port or "the chosen")
    return None


def _last_line(log: str) -> str:
    for raw in reversed(log.strip().splitlines()):
        line = raw.strip()
        if line and not line.startswith(("srv ", "slot ")):
            return line[:300]
    return ""


def exit_signal(exit_code: int | None) -> int | None:
    """The signal that ended a server with `exit_code`, or None when it exited by itself.

    A negative code is a process's own wait status (Python's `returncode`: -N for signal
    N); 128 + N is how a container reports it.
    """
    if exit_code is None:
        return None
    if exit_code < 0:
        return -exit_code
    if exit_code - SIGNAL_EXIT_BASE in _SIGNALS:
        return exit_code - SIGNAL_EXIT_BASE
    return None


def exit_status(exit_code: int | None) -> str:
    """How a server ended, said plainly: "was killed (SIGKILL)", "exited with code 1", or
    that its exit status is unknown (a process that was not this run's child)."""
    if exit_code is None:
        return "ended; its exit status is unknown"
    number = exit_signal(exit_code)
    if number is not None:
        return _SIGNALS.get(number, f"was ended by signal {number}")
    return f"exited with code {exit_code}"


def explain_exit(exit_code: int | None, log: str, *, oom_killed: bool = False,
                 port: int | None = None) -> str:
    """Why a backend that exited with `exit_code` (None: unknown; see `exit_signal`) and
    printed `log` stopped."""
    if oom_killed:
        return ("the server was killed (SIGKILL) because the host ran out of memory "
                "(host RAM, not VRAM)")
    reason = explain_log(log, port)
    if reason:
        return reason
    if exit_signal(exit_code) is not None:
        return f"the server {exit_status(exit_code)} while running"
    last = _last_line(log)
    tail = f"; its last line: {last}" if last else "; it printed nothing"
    return f"the server {exit_status(exit_code)}{tail}"


def explain_start_error(message: str, *, host: str, port: int | None = None) -> str:
    """A Docker API error at create/start as the user's problem, not a raw error."""
    reason = explain_log(message, port)
    if reason and "port" not in reason:
        return f"{host}: {reason}"
    if re.search(r"port is already allocated|address already in use", message, re.I):
        return f"{host}: port {port} is already in use on the host"
    match = re.search(r"bind source path does not exist: (\S+)", message)
    if match:
        return f"{host}: the model folder {match.group(1)} does not exist on that host"
    return f"{host}: Docker refused to start the backend: {message}"
