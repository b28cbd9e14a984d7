"""`rigdeck relaunch NAME [--experts N|default]`: restart a backend, its plan changed.

The same relaunch the Backends page's Restart and the Chat page's Experts chip use
(`BackendsService.relaunch`): the plan is checked first, the backend keeps its name and
port, and the command waits until it is ready again.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from app.cli.values import number
from app.engines.plan import LaunchPlan
from app.errors import UserError
from app.presets.experts import expert_offer
from app.runtime.setup import build_service


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "relaunch", help="restart a backend, e.g. with another expert count",
        description="Stop a backend Rigdeck started and start it again on the same host "
                    "and port, with its plan changed as asked.")
    parser.add_argument("name", help="the backend (see rigdeck ps)")
    parser.add_argument("--host", help="its host, where the name runs on several")
    parser.add_argument("--experts", metavar="N|default",
                        help="experts per token for a MoE model (default: the model's own)")
    parser.add_argument("--timeout", type=number(0, low_open=True), default=600.0,
                        help="seconds to wait for ready")
    parser.set_defaults(handler=run)


def _experts(raw: str) -> int | None:
    if raw == "default":
        return None
    try:
        return int(raw)
    except ValueError:
        raise UserError(f"--experts {raw!r}: give a number or 'default'") from None


def run(args: argparse.Namespace) -> int:
    service = build_service(args.paths)
    try:
        service.refresh()
        backend = service.find(args.name, args.host)
        plan = LaunchPlan.from_json(backend.plan_json)
        if args.experts is not None:
            count = _experts(args.experts)
            offer = expert_offer(plan)
            offer.check(count)
            plan = replace(plan, experts=None if count == offer.default else count)
        print(f"relaunching {backend.name} on {backend.host}", flush=True)
        started = service.relaunch(backend, plan, wait=True, timeout_s=args.timeout).backend
        experts = f", {plan.experts} experts per token" if plan.experts else ""
        print(f"ready: {started.name} at {started.base_url}{experts}")
        return 0
    finally:
        service.close()
