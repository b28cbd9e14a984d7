"""`rigdeck import COMPOSE.yml [-o DIR]`: a compose file written by `rigdeck export` back
into plan files (NAME.toml), the same plans that were exported."""

from __future__ import annotations

import argparse
from pathlib import Path

import tomli_w

from app.engines.compose import read_compose
from app.engines.export import write_files


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "import", help="read a compose file written by `rigdeck export` back into plans",
        description="Read the plans of a docker-compose.yml written by `rigdeck export`. "
                    "With -o, write one NAME.toml per backend; else print them.")
    parser.add_argument("compose", type=Path, metavar="COMPOSE.yml")
    parser.add_argument("-o", "--output", type=Path, metavar="DIR",
                        help="folder for the plan files")
    parser.add_argument("--force", action="store_true", help="overwrite plan files in DIR")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    plans = read_compose(args.compose)
    files = {f"{p.backend_name}.toml": tomli_w.dumps(p.to_dict()) for p in plans}
    if args.output is None:
        for name, text in files.items():
            print(f"# {name}\n{text}")
        return 0
    for path in write_files(args.output, files, overwrite=args.force):
        print(f"wrote {path}")
    return 0
