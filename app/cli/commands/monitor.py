"""`rigdeck monitor [--interval S] [--seconds N] [--json] [--replay FILE]`: samples without a GUI.

Prints one line per sample (JSON lines with --json, which `--replay` plays back). A
missing driver is said once on stderr and sampling goes on with what is there.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

from app.cli.json_text import json_text
from app.cli.values import number
from app.errors import UserError
from app.settings import SettingsStore
from app.telemetry.replay import load_trace
from app.telemetry.sampler_loop import run_schedule
from app.telemetry.service import MonitorOptions, MonitorService
from app.telemetry.snapshot import Snapshot
from app.telemetry.summary import one_line


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "monitor",
        help="print GPU and host readings (JSON lines with --json)",
        description="Sample the GPUs and the host and print each reading.",
    )
    parser.add_argument(
        "--interval", type=float, metavar="S", help="seconds between samples (default: settings)"
    )
    parser.add_argument("--seconds", type=number(0, low_open=True), metavar="N",
                        help="stop after N seconds")
    parser.add_argument("--json", action="store_true", help="print each sample as a JSON line")
    parser.add_argument(
        "--replay", type=Path, metavar="FILE", help="play a recorded trace (CSV or JSON lines)"
    )
    parser.add_argument(
        "--speed", type=float, default=1.0, help="replay speed, times real time (default 1)"
    )
    parser.add_argument(
        "--gpus", type=int, default=1, metavar="N", help="replay the trace as N GPUs"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = SettingsStore(args.paths.settings_file).settings
    interval = settings.sampling_interval_s if args.interval is None else args.interval
    if not 0.01 <= interval <= 3600:
        raise UserError(f"--interval must be between 0.01 and 3600 seconds, not {interval}")
    if args.seconds is not None and args.seconds < 0:
        raise UserError("--seconds must not be negative")
    if args.replay is not None:
        load_trace(args.replay)  # a bad file is the user's error: say so and stop
    options = MonitorOptions(
        interval_s=interval,
        replay=args.replay,
        replay_speed=args.speed,
        replay_gpus=args.gpus,
        model_folders=tuple(settings.model_folders),
    )
    service = MonitorService.from_options(options)
    told: set[str] = set()

    def step(_now: float) -> None:
        snapshot = service.step()
        _print(snapshot, as_json=args.json, told=told)

    stop = threading.Event()
    deadline = None if args.seconds is None else time.monotonic() + args.seconds
    try:
        run_schedule(step, lambda: interval, stop, deadline=deadline)
    finally:
        service.stop()
    return 0


def _print(snapshot: Snapshot, *, as_json: bool, told: set[str]) -> None:
    for source in snapshot.sources:
        if source.message and source.message not in told and not source.available:
            told.add(source.message)
            print(f"rigdeck: {source.name}: {source.message}", file=sys.stderr)
    text = json_text(snapshot.to_dict(), indent=None) if as_json else one_line(snapshot)
    print(text, flush=True)
