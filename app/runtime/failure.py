"""Why a backend died, in words a user can act on, read from its exit code and log.

The patterns are the messages llama-server and vLLM print for the failures users cause
most; anything else ends in the last meaningful log line, never in silence.
"""

from __future__ import annotations

import re

from app.engines.llamacpp_log import adapter_refusal

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"out of memory|cudaMalloc failed|CUDA_ERROR_OUT_OF_MEMORY|OutOfMemoryError"
                r"|failed to allocate .*buffer", re.I),
     "CUDA out of memory: the model, context or KV cache does not fit on the chosen GPUs. "
     "Lower the context or parallel slots, quantise the KV cache, or keep MoE layers in RAM."),
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

_SIGNALS = {137: "was killed (SIGKILL)", 139: "crashed (segmentation fault)",
            134: "aborted (SIGABRT)", 143: "was stopped (SIGTERM)"}


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


def explain_exit(exit_code: int | None, log: str, *, oom_killed: bool = False,
                 port: int | None = None) -> str:
    """Why a backend that exited with `exit_code` and printed `log` stopped."""
    if oom_killed:
        return "the host ran out of memory and the kernel killed the server (host RAM, not VRAM)"
    reason = explain_log(log, port)
    if reason:
        return reason
    what = _SIGNALS.get(exit_code or 0)
    if what:
        return f"the server {what} while running"
    last = _last_line(log)
    tail = f"; its last line: {last}" if last else "; it printed nothing"
    return f"the server exited with code {exit_code}{tail}"


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
