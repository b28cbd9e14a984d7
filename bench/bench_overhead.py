"""The Bench's own overhead: decode tokens/s that Rigdeck's Bench measures (a llama-server
backend started through the BackendsService, the server's own `predicted_per_second`)
against llama.cpp's `llama-bench` run on the same model and settings in the same image.

Run: `.venv/bin/python -m bench.bench_overhead [--rounds 3] [--tokens 128] [--threads 2]`
(DOCKER_HOST names the engine; the test image and Gemma 3 270M are prepared as the
integration tests prepare them). Rounds alternate the two; each round's ratio is
Rigdeck's median over llama-bench's mean. Goal: median ratio >= 0.97.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

from app.bench.results import BenchSettings
from app.bench.service import Bench, BenchRequest
from app.bench.store import BenchStore
from app.engines.mounts import ModelMounts
from app.engines.plan import LaunchPlan
from app.engines.spec import LaunchSpec
from app.runtime.backends_service import BackendsService
from app.runtime.docker_runtime import DockerRuntime
from app.runtime.hosts import Host
from app.runtime.keys import KeyKeeper
from app.secrets import SecretStore
from tests.realparts.backend_image import ensure_backend_image
from tests.realparts.docker_engine import find_or_start_engine
from tests.realparts.gemma import ensure_gemma_gguf
from tests.realparts.llama_build import ensure_llama_server


def llama_bench(runtime: DockerRuntime, image: str, plan: LaunchPlan, tokens: int,
                reps: int) -> float:
    """llama-bench's mean decode tokens/s (tg`tokens`) for `plan`'s model and settings."""
    paths = ModelMounts(True)
    args = ["-m", paths.file(plan.model), "-p", "0", "-n", str(tokens), "-r", str(reps),
            "-t", str(plan.threads or 1), "-fa", "1" if plan.flash_attn else "0",
            "-ngl", "0", "-o", "json"]
    if plan.cache_type_k:
        args += ["-ctk", plan.cache_type_k]
    spec = LaunchSpec(engine="llamacpp", image=image, args=tuple(args), port=0, bind="",
                      mounts=paths.mounts, user=paths.user(), tool="llama-bench")
    code, output = runtime.run_once(spec, "bench-overhead-llama-bench", {})
    if code != 0:
        raise SystemExit(f"llama-bench exited {code}:\n{output[-2000:]}")
    start = output.index("[")
    results: list[dict[str, Any]] = json.loads(output[start:output.rindex("]") + 1])
    return float(next(r["avg_ts"] for r in results if r.get("n_gen") == tokens))


def rigdeck(bench: Bench, plan: LaunchPlan, tokens: int, reps: int) -> float:
    """The Bench's median decode tokens/s for `plan` (no perplexity, a 16-token prompt)."""
    settings = BenchSettings(repetitions=reps, prompt_tokens=16, answer_tokens=tokens,
                             perplexity=False)
    run = bench.run(BenchRequest(plan, (), "local", settings))
    [variant] = run.variants
    if variant.decode is None:
        raise SystemExit(f"the Bench measured nothing: {variant.error}")
    return variant.decode.median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--fa", choices=("on", "off"), default="on")
    args = parser.parse_args()
    engine = find_or_start_engine()
    image = ensure_backend_image(engine.client, ensure_llama_server())
    model = ensure_gemma_gguf()
    host = Host("local", os.environ.get("DOCKER_HOST", engine.base_url), host_network=True)
    with tempfile.TemporaryDirectory() as folder:
        service = BackendsService([host], KeyKeeper(SecretStore()), images={"llamacpp": image},
                                  run_dir=Path(folder) / "run")
        bench = Bench(service, BenchStore(None))
        plan = LaunchPlan(model=str(model), context=2048, threads=args.threads,
                          flash_attn=args.fa == "on", labels={"rigdeck.test.session": "bench"})
        runtime = service.runtime("local")
        assert isinstance(runtime, DockerRuntime)
        ratios, ours, theirs = [], [], []
        try:
            for number in range(args.rounds):
                if number % 2:
                    b = llama_bench(runtime, image, plan, args.tokens, args.reps)
                    r = rigdeck(bench, plan, args.tokens, args.reps)
                else:
                    r = rigdeck(bench, plan, args.tokens, args.reps)
                    b = llama_bench(runtime, image, plan, args.tokens, args.reps)
                ours.append(r)
                theirs.append(b)
                ratios.append(r / b)
                print(f"round {number + 1}: Rigdeck {r:.1f} tok/s, llama-bench {b:.1f} tok/s, "
                      f"ratio {r / b:.3f}", flush=True)
        finally:
            bench.close()
            service.close()
    print(json.dumps({"model": model.name, "tokens": args.tokens, "threads": args.threads,
                      "fa": args.fa, "rigdeck_median_tps": statistics.median(ours),
                      "llama_bench_median_tps": statistics.median(theirs),
                      "median_ratio": statistics.median(ratios), "goal": 0.97}, indent=1))


if __name__ == "__main__":
    main()
