"""Parse what llama-server says at load: its memory (the `… buffer size = X MiB` lines)
and an adapter it refused.

llama.cpp prints each buffer it allocates at load (load_tensors: model, llama_kv_cache: KV,
llama_context: output, sched_reserve: compute) and, at exit or with -lv 4 after fitting, a
`memory breakdown [MiB]` table. The fit planner compares its estimate with these, the
calibration store records them, and the backends show them.

A `--lora` that does not fit the model makes the server exit at start; the log names the
adapter (common.cpp: "failed to load lora adapter '<path>'"), llama-adapter.cpp's reason
("model arch and LoRA arch mismatch", "… has incorrect shape …") and the model
("failed to create context with model '<path>'"), then only "exiting due to model loading
error".
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

_BUFFER = re.compile(
    r"(?P<buft>[A-Za-z0-9_]+)\s+(?P<kind>model|KV|compute|output|RS)\s+buffer size\s*=\s*"
    r"(?P<mib>[0-9]+(?:\.[0-9]+)?)\s*MiB"
)
_KV_SUMMARY = re.compile(
    r"llama_kv_cache: size =\s*(?P<mib>[0-9.]+) MiB "
    r"\(\s*(?P<cells>\d+) cells,\s*(?P<layers>\d+) layers"
)
_BREAKDOWN = re.compile(r"\|\s*-\s*(?P<name>[^|]+?)\s*\|\s*(?P<cols>[0-9 =+\-]+?)\s*\|")
_LOADING_DONE = re.compile(r"server is listening|listening on http|all slots are idle|model loaded")

KINDS = ("model", "KV", "compute", "output")

_LORA_REFUSED = re.compile(r"failed to load lora adapter '(?P<path>[^']+)'")
_LORA_WHY = re.compile(r"failed to apply lora adapter: (?P<why>.+)")
_MODEL_PATH = re.compile(r"(?:failed to create.context with model|loading model|"
                         r"failed to load model,) '(?P<path>[^']+)'")


@dataclass
class BufferReport:
    """The engine's own buffer sizes, in MiB, summed per kind and buffer type."""

    model: dict[str, float] = field(default_factory=dict)
    kv: dict[str, float] = field(default_factory=dict)
    compute: dict[str, float] = field(default_factory=dict)
    output: dict[str, float] = field(default_factory=dict)
    kv_caches: list[tuple[float, int, int]] = field(default_factory=list)
    """(MiB, cells, layers) of each KV cache (two for sliding-window models)."""
    breakdown: dict[str, list[int]] = field(default_factory=dict)
    """Rows of the `memory breakdown [MiB]` table by device, numbers left to right."""
    ready: bool = False

    def by_kind(self, kind: str) -> dict[str, float]:
        return {
            "model": self.model,
            "KV": self.kv,
            "kv": self.kv,
            "compute": self.compute,
            "output": self.output,
        }[kind]

    def total(self, kind: str, buft: str | None = None) -> float:
        """Sum of a kind over all buffer types, or one buffer type's value (0 if absent)."""
        values = self.by_kind(kind)
        return values.get(buft, 0.0) if buft is not None else sum(values.values())

    @property
    def empty(self) -> bool:
        return not (self.model or self.kv or self.compute or self.output)


def parse_llama_log(lines: Iterable[str]) -> BufferReport:
    """Read buffer lines from llama-server output; later reserves replace earlier ones.

    A compute buffer is printed once per reserve; llama-server may reserve more than once
    (e.g. after a fit pass), and the last value is the one that stays.
    """
    report = BufferReport()
    seen_compute_round: set[str] = set()
    for line in lines:
        if _LOADING_DONE.search(line):
            report.ready = True
        m = _BUFFER.search(line)
        if m:
            buft, kind, mib = m.group("buft"), m.group("kind"), float(m.group("mib"))
            if kind == "RS":
                kind = "KV"
            target = report.by_kind(kind)
            if kind == "compute":
                if buft in seen_compute_round:
                    seen_compute_round.clear()
                    report.compute.clear()
                seen_compute_round.add(buft)
                target[buft] = mib
            elif kind in ("model", "output"):
                target[buft] = target.get(buft, 0.0) + mib if kind == "model" else mib
            else:
                target[buft] = target.get(buft, 0.0) + mib
            continue
        s = _KV_SUMMARY.search(line)
        if s:
            report.kv_caches.append(
                (float(s.group("mib")), int(s.group("cells")), int(s.group("layers")))
            )
            continue
        b = _BREAKDOWN.search(line)
        if b and "memory breakdown" not in line:
            nums = [int(x) for x in re.findall(r"\d+", b.group("cols"))]
            report.breakdown[b.group("name").strip()] = nums
    return report


@dataclass(frozen=True)
class AdapterRefusal:
    """An adapter llama-server would not load: file names, and its reason as printed."""

    adapter: str
    model: str | None
    why: str | None


def _file_name(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def adapter_refusal(text: str) -> AdapterRefusal | None:
    """The adapter a llama-server log says it refused to load, or None."""
    refused = _LORA_REFUSED.search(text)
    if refused is None:
        return None
    why = _LORA_WHY.search(text)
    model = _MODEL_PATH.search(text)
    return AdapterRefusal(_file_name(refused.group("path")),
                          _file_name(model.group("path")) if model else None,
                          why.group("why").strip() if why else None)


_PPL_FINAL = re.compile(r"Final estimate: PPL = (?P<ppl>[0-9.]+|inf|nan) "
                        r"\+/- (?P<pm>[0-9.]+|inf|nan)")
_PPL_CHUNKS = re.compile(r"calculating perplexity over (?P<chunks>\d+) chunks, n_ctx=(?P<ctx>\d+)")
_PPL_TOO_SHORT = re.compile(r"you need at least (?P<need>\d+) tokens to evaluate perplexity "
                            r"with a context of (?P<ctx>\d+)")
_PPL_HAVE = re.compile(r"tokenizes to only (?P<have>\d+) tokens")


@dataclass(frozen=True)
class PerplexityReport:
    """What `llama-perplexity` printed: its final estimate (None when it gave none), the
    estimate's spread, the chunks and window it scored, and why it gave none."""

    perplexity: float | None
    plus_minus: float | None
    chunks: int | None
    context: int | None
    problem: str = ""
    cut: bool = False
    """It began scoring but its output stops before the estimate: lost at the tool's exit
    (llama.cpp issue 22142), so running it again gives it."""


def parse_perplexity(text: str) -> PerplexityReport:
    """Read llama-perplexity's output (perplexity.cpp: "calculating perplexity over N
    chunks, n_ctx=C…", "Final estimate: PPL = X +/- Y", or "you need at least N tokens…")."""
    chunks = _PPL_CHUNKS.search(text)
    final = _PPL_FINAL.search(text)
    n_chunks = int(chunks.group("chunks")) if chunks else None
    context = int(chunks.group("ctx")) if chunks else None
    if final is not None:
        return PerplexityReport(float(final.group("ppl")), float(final.group("pm")),
                                n_chunks, context)
    short = _PPL_TOO_SHORT.search(text)
    if short is not None:
        have = _PPL_HAVE.search(text)
        tokens = f" ({have.group('have')} tokens)" if have else ""
        return PerplexityReport(None, None, 0, int(short.group("ctx")),
                                f"the text is too short{tokens}: a window of "
                                f"{short.group('ctx')} tokens needs at least "
                                f"{short.group('need')}; choose a longer text or a "
                                "smaller window")
    return PerplexityReport(None, None, n_chunks, context,
                            "llama-perplexity gave no final estimate", cut=chunks is not None)
