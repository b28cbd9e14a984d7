"""Entry point of `rigdeck`: parses the command line and runs one subcommand.

Subcommands come from the modules of `app.cli.commands` and from the
`rigdeck.commands` entry points (the GUI's `gui` command lives in `ui`, which the core
may not import). With no subcommand, `rigdeck` opens the window.
"""

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from app import __version__
from app.cli import commands
from app.errors import UserError
from app.logs import configure_logging
from app.paths import AppPaths

log = logging.getLogger(__name__)

Register = Callable[[Any], None]  # takes argparse._SubParsersAction


def _registrars() -> list[Register]:
    found: list[Register] = []
    for info in pkgutil.iter_modules(commands.__path__):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        found.append(module.register)
    for entry in entry_points(group="rigdeck.commands"):
        try:
            found.append(entry.load())
        except ImportError as exc:  # e.g. the GUI without PySide6 installed
            log.debug("command %s unavailable: %s", entry.name, exc)
    return found


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="rigdeck",
        description="Control panel for a local AI workstation.",
    )
    parser.add_argument("--version", action="version", version=f"rigdeck {__version__}")
    parser.add_argument(
        "--temp-basedir",
        action="store_true",
        help="keep settings, data and logs in a fresh temporary folder (for tests and demos)",
    )
    parser.add_argument("--debug", action="store_true", help="log debug messages to stderr")
    parser.add_argument("--json-logging", action="store_true", help="log to stderr as JSON lines")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in _registrars():
        register(subparsers)
    return parser


def _has_command(parser: argparse.ArgumentParser, name: str) -> bool:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return name in action.choices
    return False


def _paths(args: argparse.Namespace) -> AppPaths:
    if args.temp_basedir:
        import tempfile

        return AppPaths.under(Path(tempfile.mkdtemp(prefix="rigdeck-")))
    return AppPaths.default()


def main(argv: Sequence[str] | None = None) -> int:
    """Run `rigdeck`; returns the exit code (0 ok, 2 user error, 1 internal error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # bare `rigdeck` opens the window
        args = parser.parse_args([*argv, "gui"]) if _has_command(parser, "gui") else args
    if args.command is None:
        print("rigdeck: the GUI is not installed (PySide6 missing); see --help", file=sys.stderr)
        return 2
    args.paths = _paths(args)
    configure_logging(args.paths, debug=args.debug, json_lines=args.json_logging)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except UserError as exc:
        print(f"rigdeck: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def gui_main() -> int:
    """The double-click entry point: always the window."""
    return main(["gui", *sys.argv[1:]])
