"""`rigdeck ps [--json]`: the backends on every host, as they are now; exit 2 when an
engine did not answer (the list lacks what runs there)."""

from __future__ import annotations

import argparse
import sys
import time

from app.cli.json_text import json_text
from app.runtime.backends_service import BackendsService
from app.runtime.setup import build_service


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("ps", help="list backends on all hosts")
    parser.add_argument("--json", action="store_true", help="one JSON document")
    parser.add_argument("--all", action="store_true",
                        help="also list containers Rigdeck did not start (read-only)")
    parser.set_defaults(handler=run)


def _uptime(seconds: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(seconds)) if seconds < 86400 else \
        f"{seconds / 86400:.1f}d"


def run(args: argparse.Namespace) -> int:
    service = build_service(args.paths)
    try:
        backends = service.refresh()
        if args.json:
            print(json_text({
                "backends": [b.as_dict() for b in backends],
                "other_containers": [vars(f) for f in service.foreign] if args.all else [],
                "host_errors": service.host_errors,
            }, indent=2))
            return _unreachable(service)
        rows = [("NAME", "HOST", "ENGINE", "STATE", "PORT", "UPTIME", "MODEL")]
        rows += [(b.name, b.host, b.engine, b.shown_state, str(b.port), _uptime(b.uptime_s),
                  b.model) for b in backends]
        widths = [max(len(r[i]) for r in rows) for i in range(6)]
        for row in rows:
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False))
                  + "  " + row[6])
        for b in backends:
            if b.reason and b.state in ("failed",):
                print(f"{b.name}: {b.reason}")
        if args.all:
            for f in service.foreign:
                print(f"(not Rigdeck's, read-only) {f.host}/{f.name} {f.image} {f.status}")
        return _unreachable(service)
    finally:
        service.close()


def _unreachable(service: BackendsService) -> int:
    """Say which engines did not answer (the list lacks what runs there): exit 2 then."""
    unreachable = service.unreachable()
    for error in unreachable.values():
        print(f"rigdeck: {error}", file=sys.stderr)  # it names the host
    return 2 if unreachable else 0
