"""`rigdeck problems`: every user file Rigdeck could not read, and why.

The window says these once at start; scripts and the command line ask here. A bad file
never stops Rigdeck: it is left out (and left as it is) while the others load.
"""

from __future__ import annotations

import argparse
import json

from app.chat.endpoints import EndpointStore
from app.paths import AppPaths
from app.presets.presets import PresetStore
from app.presets.thinking import ThinkingMemory
from app.roles.store import RoleStore
from app.runtime.setup import hosts_store
from app.secrets import SecretStore
from app.settings import SettingsStore


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "problems", help="list the user files (roles, presets, endpoints, hosts, settings) "
                         "that could not be read, and why",
        description="Exit status: 0 when every file was read, 1 when some could not be.")
    parser.add_argument("--json", action="store_true", help="one JSON document")
    parser.set_defaults(handler=run)


def user_file_problems(paths: AppPaths) -> dict[str, list[str]]:
    """What could not be read, by kind of file (kinds with none left out)."""
    roles = RoleStore(paths.config / "roles")
    roles.all()
    presets = PresetStore(paths.config / "presets")
    presets.all()
    endpoints = EndpointStore(paths.config / "endpoints.toml", SecretStore())
    endpoints.all()
    hosts = hosts_store(paths)
    hosts.load()
    found = {
        "settings": SettingsStore(paths.settings_file).problems,
        "roles": roles.problems, "presets": presets.problems,
        "endpoints": endpoints.problems, "hosts": hosts.problems,
        "thinking memory": ThinkingMemory(paths.data / "thinking_switch.json").problems,
    }
    return {kind: problems for kind, problems in found.items() if problems}


def run(args: argparse.Namespace) -> int:
    found = user_file_problems(args.paths)
    if args.json:
        print(json.dumps({"problems": found}, indent=2, ensure_ascii=False))
        return 1 if found else 0
    for kind, problems in found.items():
        for problem in problems:
            print(f"{kind}: {problem}")
    if not found:
        print("every user file was read")
    return 1 if found else 0
