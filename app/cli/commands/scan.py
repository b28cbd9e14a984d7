"""`rigdeck scan [PATH…] [--json]`: list the models and adapters Rigdeck finds.

With PATHs, only those files and folders are scanned; without, the library's folders
from the settings plus the default stores (HF cache, Ollama, LM Studio). Bad files are
listed with their reason; the exit code is 0 whenever the scan itself ran. A mixture of
experts shows its experts (total and used per token) and its active parameters.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.cli.json_text import json_text
from app.errors import UserError
from app.library.display import experts_label, human_bytes, params_label, quant_label, status
from app.library.entries import Entry, Model
from app.library.library import INDEX_FILE_NAME, Library
from app.paths import AppPaths
from app.settings import SettingsStore


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "scan",
        help="list the models and LoRA adapters found",
        description="List models and LoRA adapters (GGUF, Hugging Face folders, PEFT).",
    )
    parser.add_argument(
        "targets",
        nargs="*",
        type=Path,
        metavar="PATH",
        help="files or folders (default: the library)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list of entries")
    parser.set_defaults(handler=run)


def check_paths(paths: list[Path]) -> None:
    """Raises: UserError: a PATH does not exist (a broken link counts as existing)."""
    for path in paths:
        if not path.exists() and not path.is_symlink():
            raise UserError(f"{path}: no such file or folder")


def table(entries: list[Entry]) -> str:
    """A readable, aligned table of entries."""
    header = (
        "NAME",
        "KIND",
        "FORMAT",
        "SOURCE",
        "ARCH",
        "PARAMS",
        "EXPERTS",
        "QUANT",
        "CONTEXT",
        "SIZE",
        "STATUS",
    )
    rows = [header]
    for e in entries:
        context = str(e.context_length or "?") if isinstance(e, Model) else "—"
        rows.append(
            (
                e.name or e.path.name,
                e.kind,
                e.format,
                e.source,
                e.architecture or "?",
                params_label(e),
                experts_label(e),
                quant_label(e),
                context,
                human_bytes(e.size_bytes),
                status(e),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1] for r in rows
    ]
    return "\n".join(line.rstrip() for line in lines)


def run(args: argparse.Namespace) -> int:
    targets: list[Path] = args.targets
    check_paths(targets)
    app_paths: AppPaths = args.paths
    index = app_paths.data / INDEX_FILE_NAME
    if targets:
        library = Library(targets, include_defaults=False, index_path=index)
    else:
        folders = [Path(f) for f in SettingsStore(app_paths.settings_file).get("model_folders")]
        library = Library(folders, include_defaults=True, index_path=index)
    try:
        report = library.rescan(prune_index=not targets)
    finally:
        library.close()
    for problem in report.problems:
        print(f"rigdeck: warning: {problem}", file=sys.stderr)
    entries = list(report.entries)
    if args.json:
        print(json_text([e.to_json() for e in entries]))
    elif entries:
        print(table(entries))
    else:
        print("No models or adapters found.")
    return 0
