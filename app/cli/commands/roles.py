"""`rigdeck roles`: list roles (and, with --url, whether a backend can serve each);
import or export a role file."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from app.cli.commands.chat import chat_service
from app.errors import UserError
from app.paths import AppPaths
from app.roles.check import BackendRoles, check_roles
from app.roles.role import Role
from app.roles.store import RoleStore


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "roles", help="list LoRA roles; import or export a role file",
        description="A role is a LoRA adapter (or none), a system prompt, sampling and a "
                    "thinking default. Use one with `rigdeck chat --role NAME`.")
    parser.add_argument("--json", action="store_true", help="one JSON document")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--url", help="also say whether the backend at this URL can serve "
                                     "each role, and why not")
    where.add_argument("--backend", metavar="NAME",
                       help="the same for a running backend by name or HOST/NAME (see "
                            "rigdeck ps), else a saved endpoint, as in rigdeck chat")
    parser.add_argument("--api-key-env", metavar="VAR",
                        help="for --url: read the server's API key from this environment "
                             "variable (a Rigdeck backend's own key is found by itself; a "
                             "key is never given on the command line, where `ps` shows it)")
    parser.add_argument("--import", dest="import_file", type=Path, metavar="FILE",
                        help="add the role in FILE to your roles")
    parser.add_argument("--replace", action="store_true",
                        help="with --import: replace a role of the same name")
    parser.add_argument("--export", metavar="NAME", help="write role NAME to -o FILE")
    parser.add_argument("-o", "--output", type=Path, help="file for --export")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    paths: AppPaths = args.paths
    store = RoleStore(paths.config / "roles")
    if args.import_file:
        role = store.import_file(args.import_file, overwrite=args.replace)
        print(f"imported role {role.name!r}")
        return 0
    if args.export:
        if not args.output:
            raise UserError("--export needs -o FILE")
        store.export_file(args.export, args.output)
        print(f"exported role {args.export!r} to {args.output}")
        return 0
    roles = store.all()
    checked: BackendRoles | None = None
    if args.url or args.backend:
        checked = _check_backend(paths, roles.values(), args.url or args.backend,
                                 key_env=args.api_key_env)
    rows = [_row(role, checked) for role in roles.values()]
    if args.json:
        print(json.dumps({"roles": rows, "problems": store.problems}, indent=2,
                         ensure_ascii=False))
        return 0
    for row in rows:
        adapters = ", ".join(f"{a['path']} (scale {a['scale']:g})"
                             for a in row["adapters"]) or "none"
        line = f"{row['label']:<24} adapters: {adapters}"
        if "available" in row:
            line += "  ok" if row["available"] else f"  unavailable: {row['reason']}"
        print(line)
    for problem in store.problems:
        print(f"problem: {problem}")
    return 0


def _check_backend(paths: AppPaths, roles: Iterable[Role], name: str, *,
                   key_env: str | None = None) -> BackendRoles:
    """`check_roles` for what `name` means to `rigdeck chat --backend`: a running backend
    (its plan and key), else a saved endpoint (its key), else a URL (`ChatService.resolve`;
    a URL a Rigdeck backend serves is that backend). `key_env`: where the key of another
    server is.

    Raises:
        UserError: nothing runs or is saved by that name, its server cannot be asked, or
            `key_env` is not set.
    """
    service = chat_service(paths, no_save=True)
    try:
        target = service.resolve(name)
        key = service.api_key(target)
        if key_env:
            key = os.environ.get(key_env)
            if not key:
                raise UserError(f"--api-key-env {key_env}: that variable is not set")
        return check_roles(roles, target.url, key, target.plan)
    finally:
        service.close()
        service.backends.close()


def _row(role: Role, checked: BackendRoles | None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "name": role.name, "label": role.label, "colour": role.colour,
        "description": role.description, "system_prompt": role.system_prompt,
        "sampling": role.sampling, "thinking": role.thinking,
        "base_models": list(role.base_models), "builtin": role.builtin,
        "adapters": [{"path": a.path, "scale": a.scale} for a in role.adapters],
    }
    if checked is not None:
        verdict = checked.availability[role.name]
        row.update(available=verdict.ok, reason=verdict.reason, fix=verdict.fix)
    return row
