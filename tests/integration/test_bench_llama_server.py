"""The Bench against the real llama-server image: two-variant runs on a tiny qwen3moe
(experts 2 and 8) and on Gemma 3 270M (KV f16 / q8_0), measured from the server's own
timings, the engine's buffer lines and llama-perplexity in the same image, stored and
exported; a cancelled run stops its variant and leaves no container behind."""

from __future__ import annotations

import csv
import io
import json
import math
import random
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.bench.matrix import expand, parse_matrix
from app.bench.results import BenchRun, BenchSettings
from app.bench.service import DEFAULT_TEXT, Bench, BenchRequest
from app.bench.store import BenchStore
from app.engines.llamacpp_log import parse_perplexity
from app.engines.plan import LaunchPlan
from app.fit.calibration import CPU_MODEL, CalibrationStore
from app.runtime.backends_service import BackendsService
from app.runtime.hosts import Host
from app.runtime.keys import KeyKeeper
from app.secrets import SecretStore
from tests.realparts.docker_engine import DockerEngine
from tests.realparts.fixtures import TinyGgufFactory
from tests.realparts.leak_guard import LeakGuard

pytestmark = pytest.mark.integration

QUICK = BenchSettings(repetitions=2, prompt_tokens=64, answer_tokens=16,
                      perplexity_context=128, perplexity_chunks=2, ready_timeout_s=180.0)


@pytest.fixture
def service(docker_engine: DockerEngine, llama_server_image: str, tmp_path: Path,
            leak_guard: LeakGuard) -> Iterator[BackendsService]:
    made = BackendsService([Host("local", docker_engine.base_url, host_network=True)],
                           KeyKeeper(SecretStore()), images={"llamacpp": llama_server_image},
                           run_dir=tmp_path / "run",
                           calibration=CalibrationStore(tmp_path / "data"))
    try:
        yield made
    finally:
        for backend in list(made.backends.values()):
            made.stop(backend, timeout_s=2)
        made.close()


@pytest.fixture
def bench(service: BackendsService, tmp_path: Path) -> Iterator[Bench]:
    made = Bench(service, BenchStore(tmp_path / "data" / "bench.sqlite3"))
    yield made
    made.close()


def _run(bench: Bench, base: LaunchPlan, *varies: str,
         settings: BenchSettings = QUICK) -> BenchRun:
    return bench.run(BenchRequest(base, tuple(expand(parse_matrix(varies))), "local",
                                  settings))


def _exported(bench: Bench, run: BenchRun, folder: Path) -> tuple[list[dict[str, str]],
                                                                  dict[str, object]]:
    bench.export(run.id, folder / "run.csv")
    bench.export(run.id, folder / "run.json")
    rows = list(csv.DictReader(io.StringIO((folder / "run.csv").read_text(encoding="utf-8"))))
    return rows, json.loads((folder / "run.json").read_text(encoding="utf-8"))


def test_experts_2_and_8_on_a_tiny_qwen3moe_are_measured_stored_and_exported(
        bench: Bench, tiny_gguf: TinyGgufFactory, leak_guard: LeakGuard,
        tmp_path: Path) -> None:
    model = tiny_gguf(arch="qwen3moe", layers=2, experts=8, experts_used=2)
    base = LaunchPlan(model=str(model), context=1024, threads=2, labels=leak_guard.labels)
    events: list[tuple[int, str]] = []
    bench.progress.connect(lambda index, phase, fraction: events.append((index, phase)))

    run = _run(bench, base, "experts=2,8")

    assert run.state == "done", [(v.label, v.error) for v in run.variants]
    assert [v.label for v in run.variants] == ["experts=2", "experts=8"]
    for variant in run.variants:
        assert variant.state == "done", variant.error
        assert variant.speed_source == "server"  # llama.cpp's own timings
        assert len(variant.decode_tps) == 2
        assert min(variant.decode_tps) > 0
        assert min(variant.prompt_tps) > 0
        assert min(variant.ttft_ms) > 0
        assert variant.answer_tokens == 16  # ignore_eos: every token counted
        assert variant.prompt_tokens is not None
        assert variant.prompt_tokens > 40
        assert variant.kinds()["model"] > 0
        assert variant.buffers["kv:CPU"] > 0  # from the engine's buffer lines
        assert variant.estimate_mib is not None
        assert variant.estimate_mib > 0
        assert variant.host_rss_mib is not None
        assert variant.host_rss_mib > 0
        # random weights over a 512-token vocabulary: large and finite
        assert variant.perplexity is not None
        assert math.isfinite(variant.perplexity)
        assert variant.perplexity > 50, variant.perplexity
        assert variant.perplexity_chunks == 2
        assert variant.perplexity_context == 128
    assert [json.loads(v.plan_json)["experts"] for v in run.variants] == [2, 8]
    # the compute buffer grows with the experts a token runs through; weights do not
    two, eight = run.variants
    assert two.kinds()["model"] == eight.kinds()["model"]
    assert (1, "relaunching") in events or (1, "starting") in events
    print("tiny qwen3moe:", [(v.label, v.decode.median if v.decode else None, v.perplexity)
                             for v in run.variants])

    _check_kept_exported_and_calibrated(bench, run, base, model, tmp_path)


def _check_kept_exported_and_calibrated(bench: Bench, run: BenchRun, base: LaunchPlan,
                                        model: Path, tmp_path: Path) -> None:
    two, eight = run.variants
    kept = bench.load(run.id)
    assert [(v.label, v.decode_tps, v.perplexity) for v in kept.variants] == \
        [(v.label, v.decode_tps, v.perplexity) for v in run.variants]
    assert kept.machine["host"] == socket.gethostname()
    assert kept.engine_version  # the server log's build line
    rows, document = _exported(bench, run, tmp_path)
    assert [r["variant"] for r in rows] == ["experts=2", "experts=8"]
    assert two.decode is not None
    assert float(rows[0]["decode_tps"]) == pytest.approx(two.decode.median, rel=1e-3)
    assert float(rows[1]["perplexity"]) == pytest.approx(eight.perplexity, rel=1e-3)
    assert float(rows[0]["buffer:kv:CPU"]) == pytest.approx(two.buffers["kv:CPU"])
    variants = document["variants"]
    assert isinstance(variants, list)
    assert len(variants) == 2
    assert document["base_plan"] == json.loads(base.to_json())

    # each variant's memory is a calibration record, and its speed is on it
    calibration = bench.backends.calibration
    assert calibration is not None
    records = calibration.runs(socket.gethostname(), (CPU_MODEL,))
    assert len(records) == 2
    assert sorted(r.decode_tps or 0 for r in records) == sorted(
        v.decode.median for v in run.variants if v.decode)


def test_gemma_kv_f16_and_q8_0_and_perplexity_on_english_and_shuffled_text(
        bench: Bench, service: BackendsService, gemma_gguf: Path, leak_guard: LeakGuard,
        tmp_path: Path) -> None:
    base = LaunchPlan(model=str(gemma_gguf), context=2048, threads=2, flash_attn=True,
                      labels=leak_guard.labels)

    run = _run(bench, base, "kv=f16,q8_0")

    assert run.state == "done", [(v.label, v.error) for v in run.variants]
    f16, q8 = run.variants
    for variant in (f16, q8):
        assert variant.speed_source == "server"
        assert variant.decode is not None
        assert variant.decode.median > 0
        assert variant.prompt is not None
        assert variant.perplexity is not None
        assert 1 < variant.perplexity < 200
    # q8_0 keeps 34 bytes per 32 values where f16 keeps 64
    assert q8.buffers["kv:CPU"] == pytest.approx(f16.buffers["kv:CPU"] * 34 / 64, rel=0.02)
    # quantising the cache barely moves perplexity
    assert q8.perplexity == pytest.approx(f16.perplexity, rel=0.1)
    print("gemma:", [(v.label, v.decode.median if v.decode else None, v.perplexity,
                      v.buffers.get("kv:CPU")) for v in run.variants])
    rows, _ = _exported(bench, run, tmp_path)
    assert [r["variant"] for r in rows] == ["kv=f16", "kv=q8_0"]

    words = DEFAULT_TEXT.read_text(encoding="utf-8").split()
    random.Random(16).shuffle(words)
    shuffled = tmp_path / "shuffled.txt"
    shuffled.write_text(" ".join(words), encoding="utf-8")
    shuffled.chmod(0o644)
    code, output = service.run_perplexity(base, "local", shuffled, context=128, chunks=2,
                                          name="bench-shuffled")
    report = parse_perplexity(output)
    assert code == 0
    assert report.perplexity is not None
    assert f16.perplexity is not None
    print(f"gemma perplexity: English {f16.perplexity:.2f}, shuffled {report.perplexity:.2f}")
    assert report.perplexity > 5 * f16.perplexity


def test_a_cancelled_run_stops_its_variant_and_leaves_nothing_behind(
        bench: Bench, tiny_gguf: TinyGgufFactory, leak_guard: LeakGuard) -> None:
    model = tiny_gguf(arch="qwen3moe", layers=2, experts=8, experts_used=2)
    base = LaunchPlan(model=str(model), context=1024, threads=2, labels=leak_guard.labels)
    slow = BenchSettings(repetitions=50, prompt_tokens=64, answer_tokens=256,
                         ready_timeout_s=180.0)
    measuring = threading.Event()
    bench.progress.connect(lambda index, phase, fraction:
                           measuring.set() if phase.startswith("speed 2/") else None)
    finished: list[BenchRun] = []
    worker = threading.Thread(target=lambda: finished.append(
        _run(bench, base, "experts=2,8", settings=slow)))
    worker.start()
    assert measuring.wait(120), "the first variant never got to measure"

    bench.cancel()
    worker.join(60)

    assert not worker.is_alive()
    [run] = finished
    assert run.state == "cancelled"
    assert [v.state for v in run.variants] == ["cancelled", "cancelled"]
    assert len(run.variants[0].decode_tps) >= 1  # what was measured is kept
    assert bench.load(run.id).state == "cancelled"
    assert not bench.backends.known()  # the leak guard checks the engine too
