"""Reading llama-perplexity's output, whole or cut at the tool's exit (llama.cpp issue
22142: its log thread is not waited for), and the environment it runs in."""

# ruff: noqa: E501  (real output lines are long)

from __future__ import annotations

from app.engines import llamacpp
from app.engines.llamacpp_log import parse_perplexity
from app.engines.plan import LaunchPlan

BEGUN = """\
0.00.036.085 I perplexity: tokenization took 5.677 ms
0.00.036.096 I perplexity: calculating perplexity over 4 chunks, n_ctx=128, batch_size=128, n_seq=1
0.00.086.816 I perplexity: 0.05 seconds per pass - ETA 0.00 minutes
[1]513.4823,[2]526.5604,[3]523.6630,"""
WHOLE = BEGUN + """[4]522.5276,
0.00.231.402 I Final estimate: PPL = 522.5276 +/- 5.72317
"""
TOO_SHORT = """\
0.00.030.401 I perplexity: tokenizing the input ..
0.00.036.085 I perplexity: you need at least 2048 tokens to evaluate perplexity with a context of 1024
0.00.036.090 E perplexity: the data file you provided tokenizes to only 900 tokens
"""


def test_the_final_estimate_its_spread_chunks_and_window_are_read() -> None:
    report = parse_perplexity(WHOLE)
    assert (report.perplexity, report.plus_minus) == (522.5276, 5.72317)
    assert (report.chunks, report.context) == (4, 128)
    assert not report.cut
    assert not report.problem


def test_output_that_stops_after_scoring_began_is_cut_not_a_failure_of_the_text() -> None:
    report = parse_perplexity(BEGUN)
    assert report.perplexity is None
    assert report.cut
    assert report.problem == "llama-perplexity gave no final estimate"


def test_a_text_too_short_is_said_and_is_not_cut() -> None:
    report = parse_perplexity(TOO_SHORT)
    assert report.perplexity is None
    assert not report.cut
    assert "too short (900 tokens)" in report.problem


def test_nothing_scored_is_not_cut() -> None:
    assert not parse_perplexity("error: failed to load model\n").cut


def test_llama_perplexity_runs_with_openmp_threads_that_sleep() -> None:
    plan = LaunchPlan(model="/models/m.gguf")
    spec = llamacpp.perplexity_recipe(plan, "/texts/t.txt", context=128, chunks=4,
                                      in_container=False)
    assert spec.env["OMP_WAIT_POLICY"] == "PASSIVE"
