"""Entry point of `rigdeck`: parses the command line and runs one subcommand.

Subcommands come from the modules of `app.cli.commands` and from the
`rigdeck.commands` entry points (the GUI's `gui` command lives in `ui`, which the core
may not import). With no subcommand, `rigdeck` opens the window.
"""

import argparse
import importlib
import logging
import os
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


def _registrars(wanted: str | None = None) -> list[Register]:
    """Every subcommand's register function, or only `wanted`'s when a module or entry
    point of that name exists: importing every command (docker, httpx, numpy…) to run one
    would put their import time in front of each start of the window."""
    modules = [info.name for info in pkgutil.iter_modules(commands.__path__)]
    plugins = list(entry_points(group="rigdeck.commands"))
    if wanted is not None and (wanted in modules or any(e.name == wanted for e in plugins)):
        modules = [name for name in modules if name == wanted]
        plugins = [entry for entry in plugins if entry.name == wanted]
    found: list[Register] = []
    for name in modules:
        module = importlib.import_module(f"{commands.__name__}.{name}")
        found.append(module.register)
    for entry in plugins:
        try:
            found.append(entry.load())
        except ImportError as exc:  # e.g. the GUI without PySide6 installed
            log.debug("command %s unavailable: %s", entry.name, exc)
    return found


def _command_named(argv: Sequence[str]) -> str | None:
    """The subcommand argv asks for: its first word that is not an option (the global
    options take no value), `gui` when there is none, None for the full --help."""
    word = next((word for word in argv if not word.startswith("-")), None)
    if word is None and ("-h" in argv or "--help" in argv):
        return None
    return word or "gui"


def build_parser(wanted: str | None = None) -> argparse.ArgumentParser:
    """The parser with every subcommand registered, or only `wanted` where it exists."""
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
    for register in _registrars(wanted):
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
    parser = build_parser(_command_named(argv))
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
    except BrokenPipeError:
        return _reader_left()


def _reader_left() -> int:
    """`rigdeck … | head`: the reader stopped reading. Say nothing: point stdout at the
    null device so the flush at exit does not fail again (the recipe of Python's
    `signal` documentation), and exit as a tool stopped by SIGPIPE would."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 128 + 13


def gui_main() -> int:
    """The double-click entry point: always the window."""
    return main(["gui", *sys.argv[1:]])
