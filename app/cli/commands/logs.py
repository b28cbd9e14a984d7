"""`rigdeck logs NAME [-f]`: a backend's log (its server's output)."""

from __future__ import annotations

import argparse
import sys

from app.cli.values import whole
from app.runtime.setup import build_service


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("logs", help="print a backend's log")
    parser.add_argument("name")
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    parser.add_argument("--tail", type=whole(0), default=200, help="lines from the end")
    parser.add_argument("--host", default=None)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    service = build_service(args.paths)
    try:
        service.refresh()
        backend = service.find(args.name, args.host)
        if args.follow:
            for line in service.follow_logs(backend, args.tail):
                print(line, flush=True)
        else:
            sys.stdout.write(service.log_tail(backend, args.tail))
        return 0
    finally:
        service.close()
