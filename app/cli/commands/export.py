"""`rigdeck export PLAN.toml… -o DIR`: the plans as docker-compose.yml plus a plain shell
launcher (launch.sh) that start the same backends on a server without Rigdeck."""

from __future__ import annotations

import argparse
from pathlib import Path

from app.engines.export import FIRST_PORT
from app.engines.export_folder import export_to_folder
from app.engines.plan import LaunchPlan
from app.engines.recipes import DEFAULT_IMAGES
from app.settings import SettingsStore


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "export", help="write plans as docker-compose.yml and a shell launcher",
        description="Write docker-compose.yml and launch.sh that start the same backends "
                    "without Rigdeck. API keys are not written: each backend reads its key "
                    "from NAME_API_KEY.")
    parser.add_argument("plans", nargs="+", type=Path, metavar="PLAN.toml")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="DIR",
                        help="folder for docker-compose.yml and launch.sh")
    parser.add_argument("--host-network", action="store_true",
                        help="host networking instead of ports published on 127.0.0.1")
    parser.add_argument("--first-port", type=int, default=FIRST_PORT,
                        help=f"first port for plans without one (default {FIRST_PORT})")
    parser.add_argument("--force", action="store_true", help="overwrite files in DIR")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = SettingsStore(args.paths.settings_file)
    images = {**DEFAULT_IMAGES, **{e: settings.get(f"{e}_image") for e in DEFAULT_IMAGES
                                  if settings.get(f"{e}_image")}}
    plans = [LaunchPlan.from_toml(path) for path in args.plans]
    backends, written = export_to_folder(plans, images, args.output,
                                         host_network=args.host_network,
                                         first_port=args.first_port, overwrite=args.force)
    for path in written:
        print(f"wrote {path}")
    for backend in backends:
        print(f"{backend.name}: port {backend.spec.port}, API key from ${backend.key_variable}")
    return 0
