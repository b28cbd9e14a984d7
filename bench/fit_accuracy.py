"""Per-component error of the fit estimate, against both kinds of real measurement.

(a) a real CPU llama-server (the integration matrix: tiny qwen3/qwen3moe and Gemma 3 270M),
(b) the H100 rows in shared/data/llamacpp_cuda_h100_reference.jsonl.
Run: .venv/bin/python bench/fit_accuracy.py [--skip-server]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _table(title: str, per_case: dict[str, dict[str, tuple[float, float]]]) -> None:
    print(f"\n== {title} ==")
    comps = list(next(iter(per_case.values())).keys())
    print(f"{'component':24s} {'median %':>9s} {'worst %':>9s}  worst case")
    for comp in comps:
        errs = {}
        for case, rows in per_case.items():
            e, m = rows[comp]
            if m:
                errs[case] = abs(e - m) / m * 100
        if not errs:
            continue
        worst = max(errs, key=lambda k: errs[k])
        print(f"{comp:24s} {statistics.median(errs.values()):9.2f} {errs[worst]:9.2f}  {worst}")
    print(f"\n{'case':28s} " + " ".join(f"{c[:14]:>15s}" for c in comps))
    for case, rows in per_case.items():
        cells = " ".join(f"{e:7.1f}/{m:7.1f}" for e, m in rows.values())
        print(f"{case:28s} {cells}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--skip-server", action="store_true", help="only the H100 reference check")
    args = ap.parse_args()
    from tests.unit.app.fit.reference import components, estimate_row, rows

    _table(
        "H100 reference (estimated/measured MiB)",
        {
            r.name: components(r, estimate_row(r))
            for r in [*rows(), *rows(experts_in_host_memory=True)]
        },
    )
    if args.skip_server:
        return 0
    from tests.integration.test_fit_vs_llama_server import CASES, run_case
    from tests.realparts.gemma import ensure_gemma_gguf
    from tests.realparts.llama_build import ensure_llama_server

    binary, gemma = ensure_llama_server(), ensure_gemma_gguf()
    folder = Path(tempfile.mkdtemp(prefix="fit-accuracy-"))
    _table(
        "CPU llama-server (estimated/measured MiB)",
        {c.name: run_case(binary, c, folder, gemma) for c in CASES},
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
