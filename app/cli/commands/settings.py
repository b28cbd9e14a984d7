"""`rigdeck settings [get [KEY] | set KEY VALUE…]`: read and change the settings the
Settings page shows, checked the same way (a bad value: the reason, exit 2, the file as
it was)."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from app.cli.json_text import json_text
from app.runtime.setup import checked_setting
from app.settings import Settings, SettingsStore, shown_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "settings", help="show or change a setting",
        description="Show or change Rigdeck's settings (the window's, kept in "
                    "settings.toml). `set` checks the value first: a wrong one is refused "
                    "with the reason and the file stays as it was.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    get = actions.add_parser("get", help="print one setting, or all")
    get.add_argument("key", nargs="?")
    get.add_argument("--json", action="store_true", help="as JSON")
    put = actions.add_parser("set", help="change one setting (a list: several values)")
    put.add_argument("key")
    put.add_argument("value", nargs="*", help="the new value; none for an empty list")
    parser.set_defaults(handler=run, action=None)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "(none)"
    return f"{value:g}" if isinstance(value, float) else str(value)


def run(args: argparse.Namespace) -> int:
    store = SettingsStore(args.paths.settings_file)
    for problem in store.problems:
        print(f"rigdeck: {problem}")
    if args.action == "set":
        value, note = checked_setting(args.key, args.value)
        store.set(args.key, value)
        print(f"{args.key} = {_text(value)}" + (f" ({note})" if note else ""))
        return 0
    key = getattr(args, "key", None)
    if key is not None:
        Settings.description(key)  # an unknown key: the list of keys, exit 2
        values = {key: store.get(key)}
    else:
        values = {k: v for k, v in asdict(store.settings).items() if k != "schema_version"}
    if getattr(args, "json", False):
        print(json_text(values))
        return 0
    places = shown_settings()
    width = max(len(k) for k in values)
    value_width = min(max(len(_text(v)) for v in values.values()), 40)
    for name, value in values.items():
        where = f"  [{' → '.join(places[name])}]" if name in places else ""
        print(f"{name.ljust(width)}  {_text(value).ljust(value_width)}{where}".rstrip())
    if key is not None:
        print(f"  {Settings.description(key)}")
    return 0
