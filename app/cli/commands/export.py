"""`rigdeck export NAME… -o DIR`: Rigdeck's backends (or plan files) as docker-compose.yml
plus a plain shell launcher (launch.sh) that start the same backends on a server without
Rigdeck. Without a NAME it lists the backends there are to export."""

from __future__ import annotations

import argparse
from pathlib import Path

from app.cli.values import whole
from app.engines.export import FIRST_PORT
from app.engines.export_folder import export_to_folder
from app.engines.plan import LaunchPlan
from app.errors import UserError
from app.runtime.backends_service import BackendsService
from app.runtime.setup import build_service, configured_images
from app.settings import SettingsStore

HOW_TO_CHOOSE = ("export them with: rigdeck export NAME… -o DIR (HOST/NAME for a name used "
                 "on two hosts), or export plan files: rigdeck export PLAN.toml… -o DIR")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "export", help="write backends as docker-compose.yml and a shell launcher",
        description="Write docker-compose.yml and launch.sh that start the same backends "
                    "without Rigdeck: Rigdeck's backends by name (see rigdeck ps), or plan "
                    "files. Without a NAME, list the backends there are. API keys are not "
                    "written: each backend reads its key from NAME_API_KEY.")
    parser.add_argument("backends", nargs="*", metavar="NAME|PLAN.toml",
                        help="a backend by name or HOST/NAME, or a plan file")
    parser.add_argument("-o", "--output", type=Path, metavar="DIR",
                        help="folder for docker-compose.yml and launch.sh")
    parser.add_argument("--host-network", action="store_true",
                        help="host networking instead of ports published on 127.0.0.1")
    parser.add_argument("--first-port", type=whole(1024), default=FIRST_PORT,
                        help=f"first port for plans without one (default {FIRST_PORT})")
    parser.add_argument("--force", action="store_true", help="overwrite files in DIR")
    parser.set_defaults(handler=run)


def _is_plan_file(text: str) -> bool:
    return text.endswith(".toml") or Path(text).is_file()


def _list(service: BackendsService) -> None:
    """Rigdeck's backends as `name — model on host`, and how to choose among them."""
    backends = service.known()
    for backend in backends:
        print(f"{backend.name} — {Path(backend.model).name or backend.model} on {backend.host}")
    for host, error in sorted(service.host_errors.items()):
        print(f"host {host}: {error}")
    if backends:
        print(HOW_TO_CHOOSE)
    else:
        print("No Rigdeck backends to export: start one with rigdeck up; or " +
              HOW_TO_CHOOSE.split(", or ", 1)[1])


def _plans(targets: list[str], service: BackendsService | None) -> list[LaunchPlan]:
    """The plan of each target, in order: a plan file's, or the backend's of that NAME or
    HOST/NAME (the refreshed `service`'s; None: every target is a plan file).

    Raises:
        UserError: a name no backend has (the message lists the names there are), or a plan
            file that cannot be read.
    """
    plans = []
    for target in targets:
        if _is_plan_file(target) or service is None:
            plans.append(LaunchPlan.from_toml(Path(target)))
        else:
            plans.append(LaunchPlan.from_json(service.find(target).plan_json))
    return plans


def run(args: argparse.Namespace) -> int:
    targets: list[str] = args.backends
    settings = SettingsStore(args.paths.settings_file)
    images = configured_images(settings)
    if targets and not args.output:
        raise UserError("rigdeck export needs -o DIR, the folder to write to")
    if targets and all(map(_is_plan_file, targets)):
        plans = _plans(targets, None)  # plan files only: no engine to ask
    else:
        service = build_service(args.paths, settings)
        try:
            service.refresh()
            if not targets:
                _list(service)
                return 0
            plans = _plans(targets, service)
        finally:
            service.close()
    backends, written = export_to_folder(plans, images, args.output,
                                         host_network=args.host_network,
                                         first_port=args.first_port, overwrite=args.force)
    for path in written:
        print(f"wrote {path}")
    for backend in backends:
        print(f"{backend.name}: port {backend.spec.port}, API key from ${backend.key_variable}")
    return 0
