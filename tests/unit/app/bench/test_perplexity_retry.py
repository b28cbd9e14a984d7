"""A llama-perplexity run whose output is cut at its exit (llama.cpp issue 22142) is run
again; one that fails for a reason of its own is not."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from app.bench.results import BenchRun, BenchSettings, VariantResult
from app.bench.service import PERPLEXITY_TRIES, BenchRequest, _VariantRunner
from app.engines.plan import LaunchPlan

BEGUN = ("perplexity: calculating perplexity over 4 chunks, n_ctx=128, batch_size=128\n"
         "[1]513.4823,[2]526.5604,[3]523.6630,")
WHOLE = BEGUN + "[4]522.5276,\nFinal estimate: PPL = 522.5276 +/- 5.72317\n"


class _Backends:
    def __init__(self, outputs: list[tuple[int | None, str]]) -> None:
        self.outputs = outputs
        self.calls = 0

    def run_perplexity(self, *args: Any, **kwargs: Any) -> tuple[int | None, str]:
        self.calls += 1
        return self.outputs.pop(0)


class _Bench:
    def __init__(self, backends: _Backends) -> None:
        self.backends = backends
        self._cancel = threading.Event()


def _measure(outputs: list[tuple[int | None, str]]) -> tuple[tuple[Any, ...], int]:
    backends = _Backends(outputs)
    plan = LaunchPlan(model="/models/m.gguf")
    run = BenchRun(id=1, created=0.0, model=plan.model, host="processes",
                   base_plan_json=plan.to_json(), settings=BenchSettings(), variants=[])
    runner = _VariantRunner(_Bench(backends), run,  # type: ignore[arg-type]  # a fake Bench: only what the runner reads
                            BenchRequest(plan, ()), Path("/texts/t.txt"))
    found = runner._measure_perplexity(plan, VariantResult(0, "base", {}))
    return found, backends.calls


def test_a_cut_output_is_measured_again() -> None:
    found, calls = _measure([(0, BEGUN), (0, WHOLE)])
    assert found == (522.5276, 5.72317, 4, 128, "")
    assert calls == 2


def test_always_cut_gives_up_after_the_last_try_and_says_so() -> None:
    found, calls = _measure([(0, BEGUN)] * PERPLEXITY_TRIES)
    assert found[0] is None
    assert found[4] == "llama-perplexity gave no final estimate"
    assert calls == PERPLEXITY_TRIES


def test_a_tool_that_fails_is_not_run_again() -> None:
    found, calls = _measure([(1, BEGUN + "\nGGML_ASSERT failed")])
    assert calls == 1
    assert found[4].startswith("llama-perplexity exited 1")
