"""`rigdeck version`: the version of Rigdeck and of the parts it found."""

from __future__ import annotations

import argparse
import platform
import sys

from app import __version__


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("version", help="print versions of Rigdeck and Python")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    print(f"rigdeck {__version__}")
    print(f"python {sys.version.split()[0]} ({platform.platform()})")
    return 0
