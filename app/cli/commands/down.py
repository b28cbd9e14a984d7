"""`rigdeck down NAME | --all`: stop backends (gracefully, forced after a timeout)."""

from __future__ import annotations

import argparse

from app.cli.values import number
from app.errors import UserError
from app.runtime.setup import build_service
from app.settings import setting_place


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("down", help="stop a backend (or all)")
    parser.add_argument("name", nargs="?")
    parser.add_argument("--all", action="store_true", help="stop every Rigdeck backend")
    parser.add_argument("--host", default=None)
    parser.add_argument("--keep", action="store_true", help="keep the stopped container")
    parser.add_argument("--timeout", type=number(0), default=None,
                        help="seconds before a backend is killed (default: "
                             f"{setting_place('backend_stop_timeout_s')})")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if bool(args.name) == bool(args.all):
        raise UserError("name one backend or pass --all")
    from app.settings import SettingsStore

    settings = SettingsStore(args.paths.settings_file)
    timeout = args.timeout if args.timeout is not None else settings.get("backend_stop_timeout_s")
    service = build_service(args.paths, settings)
    try:
        backends = service.refresh()
        chosen = ([b for b in backends if args.host in (None, b.host)] if args.all
                  else [service.find(args.name, args.host)])
        for backend in chosen:
            service.stop(backend, keep=args.keep, timeout_s=timeout)
            print(f"stopped {backend.name} on {backend.host}")
        unreachable = {h: e for h, e in service.unreachable().items()
                       if args.host in (None, h)}
        if args.all and unreachable:  # what runs there was not stopped
            raise UserError("; ".join(unreachable.values()) + " — its backends were not "
                            "stopped")
        if not chosen:
            print("no backends to stop")
        return 0
    finally:
        service.close()
