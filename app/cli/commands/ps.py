"""`rigdeck ps [--json]`: the backends on every host, as they are now."""

from __future__ import annotations

import argparse
import json
import time

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
            print(json.dumps({
                "backends": [b.as_dict() for b in backends],
                "other_containers": [vars(f) for f in service.foreign] if args.all else [],
                "host_errors": service.host_errors,
            }, indent=2))
            return 0
        rows = [("NAME", "HOST", "ENGINE", "STATE", "PORT", "UPTIME", "MODEL")]
        rows += [(b.name, b.host, b.engine, str(b.state), str(b.port), _uptime(b.uptime_s),
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
        for host, error in service.host_errors.items():
            if host != "processes":
                print(error)  # it names the host
        return 0
    finally:
        service.close()
