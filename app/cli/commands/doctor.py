"""`rigdeck doctor [--host NAME] [--json]`: what each host lacks for backends, and how to
fix it. Exits 1 when a check fails, with the failures on stderr."""

from __future__ import annotations

import argparse
import sys

from app.cli.json_text import json_text
from app.runtime.doctor import CheckStatus, HostReport, diagnose
from app.runtime.setup import build_service
from app.settings import SettingsStore

MARKS = {CheckStatus.OK: "ok  ", CheckStatus.WARN: "WARN", CheckStatus.FAIL: "FAIL",
         CheckStatus.SKIP: "skip"}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "doctor", help="check each host: Docker, NVIDIA runtime, disk, images, ports",
        description="Check what each host needs to run backends and say how to fix what "
                    "is missing. Exits 1 when a check fails.")
    parser.add_argument("--host", default=None, help="check only this host")
    parser.add_argument("--json", action="store_true", help="one JSON document")
    parser.set_defaults(handler=run)


def print_report(report: HostReport) -> None:
    print(f"{report.host} ({report.url})")
    for check in report.checks:
        print(f"  [{MARKS[check.status]}] {check.name}: {check.detail}")
        if check.fix and check.status is not CheckStatus.OK:
            print(f"         fix: {check.fix}")


def run(args: argparse.Namespace) -> int:
    settings = SettingsStore(args.paths.settings_file)
    service = build_service(args.paths, settings)
    try:
        reports = diagnose(service.hosts, dict(service.runtimes), service.images,
                           list(settings.get("model_folders")), only=args.host)
    finally:
        service.close()
    if args.json:
        print(json_text({"hosts": [r.as_dict() for r in reports]}))
    else:
        for report in reports:
            print_report(report)
    failed = [(r.host, c) for r in reports for c in r.failed]
    for host, check in failed:
        print(f"rigdeck: {host}: {check.name} failed: {check.detail}"
              + (f"; fix: {check.fix}" if check.fix else ""), file=sys.stderr)
    return 1 if failed else 0
