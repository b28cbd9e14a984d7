"""`rigdeck show PATH [--json] [--compat MODEL]`: everything Rigdeck reads from one entry."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app.cli.commands.scan import check_paths
from app.cli.json_text import json_text
from app.errors import UserError
from app.library.compat import check_compatibility
from app.library.display import display_fields
from app.library.entries import Adapter
from app.library.loader import load_entry


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "show",
        help="show what a model or adapter file holds",
        description="Show a model's or LoRA adapter's details, read from its headers.",
    )
    parser.add_argument(
        "target", type=Path, metavar="PATH", help="a GGUF file or a model/adapter folder"
    )
    parser.add_argument("--json", action="store_true", help="print the entry as JSON")
    parser.add_argument(
        "--compat",
        type=Path,
        metavar="MODEL",
        help="for an adapter: check whether it fits this model (by tensor shapes)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Exit 0 when the entry was read; 1 when it is a bad file (its reason is shown)."""
    target: Path = args.target
    check_paths([target] + ([args.compat] if args.compat else []))
    entry = load_entry(target)
    compat: dict[str, Any] | None = None
    if args.compat is not None:
        if not isinstance(entry, Adapter):
            raise UserError(f"{target}: --compat needs an adapter, this is a {entry.kind}")
        model = load_entry(args.compat)
        compat = {"model": str(model.path), **check_compatibility(entry, model).to_json()}
    if args.json:
        out = entry.to_json()
        if compat is not None:
            out["compat"] = compat
        print(json_text(out))
    else:
        rows = display_fields(entry)
        if compat is not None:
            verdict = {True: "fits", False: "does not fit", None: "unknown"}[compat["fits"]]
            rows.append(("Compatibility", f"{verdict} {compat['model']}: {compat['reason']}"))
        width = max(len(label) for label, _ in rows)
        for label, text in rows:
            print(f"{label.ljust(width)}  {text}")
    return 1 if entry.error else 0
