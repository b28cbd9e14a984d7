"""`rigdeck bench MODEL --vary KEY=V1,V2 … [--text FILE] [--json]`: A/B a model's presets on
this rig — speed, memory and perplexity per variant — print the table and keep the run.

`--list` shows the kept runs, `--show ID` one of them, `--compare A B` two side by side,
`--export FILE` writes a run (the new one, or `--run ID`) as CSV or JSON. Ctrl-C cancels
the variant in progress and leaves nothing running. Exit 0 when every variant was
measured, 1 when one failed, 2 for a user error, 130 when cancelled.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from app.bench.export import format_table, table, to_json
from app.bench.results import BenchRun, BenchSettings
from app.bench.service import Bench, BenchRequest, bench_defaults, build_bench
from app.cli.commands.up import add_plan_flags, plan_from_args
from app.cli.json_text import json_text
from app.cli.values import whole
from app.errors import UserError
from app.runtime.hosts import LOCAL
from app.runtime.setup import build_service
from app.settings import SettingsStore

CANCEL_WAIT_S = 120.0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "bench", help="A/B a model's presets: tokens/s, memory and perplexity per variant",
        description="Start the model once per variant of the matrix (the product of every "
                    "--vary) and measure it: prompt and decode tokens/s and time to first "
                    "token from the server's own timings, the engine's buffers and host "
                    "memory, and perplexity with llama-perplexity in the same image.")
    parser.add_argument("model", nargs="?", help="the model file (GGUF)")
    parser.add_argument("--vary", action="append", default=[], metavar="KEY=V1,V2",
                        help="a variation (repeatable): experts, think, ctk, ctv, kv, fa, "
                             "ctx, ncmoe, ngl, ubatch, parallel, quant (another model file)")
    parser.add_argument("--text", type=Path,
                        help="the text for perplexity (default: the setting bench_text, "
                             "else a public-domain novel's opening, shipped with Rigdeck)")
    parser.add_argument("--reps", type=whole(1),
                        help="repetitions per variant (default: the setting bench_repetitions)")
    parser.add_argument("--prompt-tokens", type=whole(1), default=512,
                        help="about how many prompt tokens each repetition sends")
    parser.add_argument("--answer-tokens", type=whole(1), default=128,
                        help="tokens decoded per repetition")
    parser.add_argument("--no-perplexity", action="store_true", help="skip llama-perplexity")
    parser.add_argument("--ppl-ctx", type=whole(8), default=128,
                        help="perplexity window in tokens (small: quick on a CPU)")
    parser.add_argument("--chunks", type=whole(1), default=4, help="perplexity windows")
    parser.add_argument("--no-warmup", action="store_true", help="no warm-up request")
    parser.add_argument("--timeout", type=whole(1), default=600,
                        help="seconds a variant's backend may take to be ready")
    parser.add_argument("--host", default=LOCAL, help="host name (default: local)")
    parser.add_argument("--host-network", action="store_true", default=None,
                        help="run on the host's network (engines without a bridge)")
    add_plan_flags(parser)
    parser.add_argument("--json", action="store_true", help="print the run as one JSON document")
    parser.add_argument("--list", action="store_true", help="list the kept runs")
    parser.add_argument("--show", type=int, metavar="ID", help="print a kept run's table")
    parser.add_argument("--compare", type=int, nargs=2, metavar=("A", "B"),
                        help="two kept runs side by side")
    parser.add_argument("--export", type=Path, metavar="FILE",
                        help="write the run as CSV or JSON (by the suffix, or --format)")
    parser.add_argument("--format", choices=("csv", "json"), help="the export's format")
    parser.add_argument("--run", type=int, metavar="ID", help="the kept run to export")
    parser.set_defaults(handler=run)


def _settings(args: argparse.Namespace, defaults: BenchSettings) -> BenchSettings:
    text = defaults.text
    if args.text is not None:
        if not args.text.is_file():
            raise UserError(f"--text {args.text}: no such file")
        text = str(args.text.expanduser().absolute())
    reps = defaults.repetitions if args.reps is None else args.reps
    return BenchSettings(repetitions=reps, prompt_tokens=args.prompt_tokens,
                         answer_tokens=args.answer_tokens, warmup=not args.no_warmup,
                         perplexity=not args.no_perplexity,
                         perplexity_context=args.ppl_ctx, perplexity_chunks=args.chunks,
                         text=text, ready_timeout_s=float(args.timeout))


def _print_run(run: BenchRun, as_json: bool) -> None:
    if as_json:
        print(json_text(to_json(run), indent=2))
        return
    print(f"bench run #{run.id}: {run.model} on {run.host} ({run.state})"
          + (f", llama.cpp {run.engine_version}" if run.engine_version else ""))
    print(format_table(*table(run)))
    if run.error:
        print(f"error: {run.error}")


def _kept(bench: Bench, args: argparse.Namespace) -> int:
    """--list, --show, --compare, or --export of a kept run."""
    if args.list:
        runs = bench.runs()
        if args.json:
            print(json_text([vars(r) for r in runs], indent=2))
        for r in [] if args.json else runs:
            print(f"#{r.id}  {r.state:<9}  {r.variants} variants  {r.host}  {r.model}")
        return 0
    if args.compare:
        print(format_table(*bench.compare(*args.compare)))
        return 0
    run_id = args.show if args.show is not None else args.run
    if args.export is not None:
        written = bench.export(run_id, args.export, args.format)
        print(f"exported run #{run_id} as {written} to {args.export}")
        return 0
    _print_run(bench.load(run_id), args.json)
    return 0


def _progress(bench: Bench, quiet: bool) -> None:
    said: list[tuple[int, str]] = []

    def on_progress(index: int, phase: str, fraction: float) -> None:
        if quiet or (said and said[-1] == (index, phase)):
            return
        said.append((index, phase))
        print(f"[variant {index + 1}] {phase} ({fraction:.0%})", file=sys.stderr, flush=True)

    bench.progress.connect(on_progress)


def run(args: argparse.Namespace) -> int:
    if args.run is not None and args.export is None:
        raise UserError("--run ID goes with --export FILE (or use --show ID)")
    kept = args.list or args.show is not None or args.compare or (
        args.export is not None and args.run is not None)
    if not kept and not args.model:
        raise UserError("give the model to bench (rigdeck bench MODEL --vary KEY=V1,V2), "
                        "or --list / --show ID / --compare A B")
    settings = SettingsStore(args.paths.settings_file)
    service = build_service(args.paths, settings, host_network=args.host_network)
    bench = build_bench(args.paths, service)
    try:
        if kept:
            return _kept(bench, args)
        args.plan, args.extra = None, []
        base = plan_from_args(args)
        request = BenchRequest(base, tuple(bench.plan(args.vary)), args.host,
                               _settings(args, bench_defaults(settings)))
        if args.host not in service.hosts:
            raise UserError(f"unknown host {args.host!r}; hosts: {', '.join(service.hosts)}")
        _progress(bench, quiet=args.json)
        result = _run_cancellable(bench, request)
        _print_run(result, args.json)
        if args.export is not None:
            written = bench.export(result.id, args.export, args.format)
            print(f"exported run #{result.id} as {written} to {args.export}", file=sys.stderr)
        if result.state == "cancelled":
            return 130
        return 0 if all(v.state == "done" for v in result.variants) else 1
    finally:
        bench.close()
        service.close()


def _run_cancellable(bench: Bench, request: BenchRequest) -> BenchRun:
    """The run on a worker thread, so that Ctrl-C here cancels it cleanly (the variant's
    backend stopped) instead of leaving a container behind."""
    done: list[BenchRun] = []
    failed: list[BaseException] = []

    def job() -> None:
        try:
            done.append(bench.run(request))
        except BaseException as exc:  # handed to the main thread, raised there
            failed.append(exc)

    worker = threading.Thread(target=job, name="rigdeck-bench")
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.2)
    except KeyboardInterrupt:
        print("cancelling: stopping the variant in progress…", file=sys.stderr, flush=True)
        bench.cancel()
        worker.join(CANCEL_WAIT_S)
    if failed:
        raise failed[0]
    if not done:
        raise UserError("the bench run did not end after cancel; see `rigdeck ps`")
    return done[0]
