"""The Bench's own overhead: decode tokens/s that Rigdeck's Bench measures (a llama-server
backend started through the BackendsService, the server's own `predicted_per_second`)
against llama.cpp's `llama-bench` run on the same model and settings in the same image.

Run: `.venv/bin/python -m bench.bench_overhead [--rounds 3] [--tokens 128] [--threads 2]`
(DOCKER_HOST names the engine; the test image and Gemma 3 270M are prepared as the
integration tests prepare them). Rounds alternate the two; each round's ratio is
Rigdeck's median over llama-bench's mean. Like for like: the same image and binary, threads,
flash attention, KV types, no GPU layers, 128 tokens decoded, 3 repetitions after a warm-up,
and llama-bench's `-d` set to the prompt the server counted (the chat template included),
so both decode at the same KV depth. Goal: median ratio >= 0.97.

Last measured (Gemma 3 270M Q4_K_M, 2 CPU cores shared with other sessions, load average
1.9-2.2 while it ran; `DOCKER_HOST=unix:///run/rigdeck-test-docker.sock .venv/bin/python
-m bench.bench_overhead --rounds 3 [--threads 1]`):
- `--threads 2`: Rigdeck 35.9 / 62.6 / 63.3 tok/s, llama-bench 66.1 / 67.3 / 71.0: ratios
  0.542, 0.930, 0.891, median 0.891;
- `--threads 1`: Rigdeck 50.4 / 50.3 / 58.4, llama-bench 53.8 / 64.7 / 61.6: ratios 0.936,
  0.778, 0.949, median 0.936;
- `--threads 2` again, load average 3.4-4.1: Rigdeck 39.3 / 64.0 / 30.9, llama-bench
  60.7 / 77.8 / 65.5: ratios 0.647, 0.822, 0.471, median 0.647.
Below the goal, and single rounds swing by 40 %: the machine is shared, and the busier it
is the lower the ratio (the server's HTTP thread and the client want the cores that
llama-bench's two threads have to themselves). The same server
binary asked with curl (no Python client, one thread, same depth) gave 63-70 tok/s against
llama-bench's 69-74 in alternation (0.97-0.99), so most of the gap is the client's work per
streamed token competing for the two cores, not the server; measure again on a quiet rig.
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
                reps: int, *, depth: int) -> float:
    """llama-bench's mean decode tokens/s (tg`tokens`) for `plan`'s model and settings,
    `depth` tokens already in the KV cache (the Bench's prompt, as the server counted it)."""
    paths = ModelMounts(True)
    args = ["-m", paths.file(plan.model), "-p", "0", "-n", str(tokens), "-d", str(depth),
            "-r", str(reps), "-t", str(plan.threads or 1),
            "-fa", "1" if plan.flash_attn else "0", "-ngl", "0", "-o", "json"]
    for flag, value in (("-ctk", plan.cache_type_k), ("-ctv", plan.cache_type_v)):
        if value:
            args += [flag, value]
    spec = LaunchSpec(engine="llamacpp", image=image, args=tuple(args), port=0, bind="",
                      mounts=paths.mounts, user=paths.user(), tool="llama-bench")
    # the session label: other sessions' leak guards sharing the engine leave it alone
    code, output = runtime.run_once(spec, "bench-overhead-llama-bench", dict(plan.labels))
    if code != 0:
        raise SystemExit(f"llama-bench exited {code}:\n{output[-2000:]}")
    start = output.index("[")
    results: list[dict[str, Any]] = json.loads(output[start:output.rindex("]") + 1])
    return float(next(r["avg_ts"] for r in results if r.get("n_gen") == tokens))


def rigdeck(bench: Bench, plan: LaunchPlan, tokens: int, reps: int) -> tuple[float, int]:
    """The Bench's median decode tokens/s for `plan` (no perplexity, a short prompt) and
    the prompt's length in tokens (the chat template's included)."""
    settings = BenchSettings(repetitions=reps, prompt_tokens=16, answer_tokens=tokens,
                             perplexity=False)
    run = bench.run(BenchRequest(plan, (), "local", settings))
    [variant] = run.variants
    if variant.decode is None:
        raise SystemExit(f"the Bench measured nothing: {variant.error}")
    return variant.decode.median, variant.prompt_tokens or 0


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
            depth = 0
            for number in range(args.rounds):
                if number % 2:  # depth: the prompt the previous round's server counted
                    b = llama_bench(runtime, image, plan, args.tokens, args.reps, depth=depth)
                    r, depth = rigdeck(bench, plan, args.tokens, args.reps)
                else:
                    r, depth = rigdeck(bench, plan, args.tokens, args.reps)
                    b = llama_bench(runtime, image, plan, args.tokens, args.reps, depth=depth)
                ours.append(r)
                theirs.append(b)
                ratios.append(r / b)
                print(f"round {number + 1}: Rigdeck {r:.1f} tok/s, llama-bench {b:.1f} tok/s "
                      f"(depth {depth}), ratio {r / b:.3f}, load average "
                      f"{os.getloadavg()[0]:.2f}", flush=True)
        finally:
            bench.close()
            service.close()
    print(json.dumps({"model": model.name, "tokens": args.tokens, "threads": args.threads,
                      "fa": args.fa, "rigdeck_median_tps": statistics.median(ours),
                      "llama_bench_median_tps": statistics.median(theirs),
                      "median_ratio": statistics.median(ratios), "goal": 0.97}, indent=1))


if __name__ == "__main__":
    main()
