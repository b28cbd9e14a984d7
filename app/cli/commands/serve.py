"""`rigdeck serve`: the Gateway — one OpenAI-compatible endpoint for every running model and
role, with backends started on demand — and its keys, model ids, idle times and usage.

    rigdeck serve [--address A] [--port P]     serve until Ctrl+C
    rigdeck serve models [--json]              the model ids and what each reaches
    rigdeck serve keys create|list|show|revoke
    rigdeck serve ttl BACKEND SECONDS          stop it after so long idle (0: never)
    rigdeck serve on-demand BACKEND on|off     may a request start it?
    rigdeck serve requests|usage [--json]      what was served
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from collections.abc import Sequence
from typing import Any

from app.cli.json_text import json_text
from app.settings import SettingsStore, setting_place


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "serve", help="the Gateway: one OpenAI endpoint for every model and role",
        description="One OpenAI-compatible endpoint (default http://127.0.0.1:8765/v1) for "
                    "every running backend's model and every role; a backend that is not "
                    "running starts from its saved plan on the first request.")
    parser.add_argument("--address", help=f"listen address (default: "
                        f"{setting_place('gateway_address')})")
    parser.add_argument("--port", type=int, help=f"port (default: "
                        f"{setting_place('gateway_port')})")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    models = actions.add_parser("models", help="the model ids and the backend each reaches")
    models.add_argument("--json", action="store_true", help="as JSON")
    keys = actions.add_parser("keys", help="gateway keys: create, list, show, revoke")
    key_actions = keys.add_subparsers(dest="key_action", metavar="KEY_ACTION")
    create = key_actions.add_parser("create", help="make a key (printed once here)")
    create.add_argument("name", help="who uses it, e.g. n8n")
    key_actions.add_parser("list", help="the keys by name (never the keys)")
    show = key_actions.add_parser("show", help="print a key from the keyring")
    show.add_argument("name")
    revoke = key_actions.add_parser("revoke", help="a revoked key is refused at once")
    revoke.add_argument("name")
    keys.set_defaults(key_action="list")
    ttl = actions.add_parser("ttl", help="stop a backend after so many idle seconds")
    ttl.add_argument("backend")
    ttl.add_argument("seconds", type=int, help="0: never")
    ttl.add_argument("--host", help="where the name is saved for several hosts")
    demand = actions.add_parser("on-demand", help="may a request start this backend?")
    demand.add_argument("backend")
    demand.add_argument("state", choices=("on", "off"))
    demand.add_argument("--host")
    for name, text in (("requests", "the latest requests"), ("usage", "per key and role")):
        sub = actions.add_parser(name, help=text)
        sub.add_argument("--json", action="store_true", help="as JSON")
        sub.add_argument("--limit", type=int, default=50, help="how many (requests)")
    parser.set_defaults(handler=run, action="serve")


def run(args: argparse.Namespace) -> int:
    from app.chat.service import ChatService
    from app.gateway.service import build_gateway
    from app.roles.store import RoleStore
    from app.runtime.setup import build_service
    from app.secrets import SecretStore

    settings = SettingsStore(args.paths.settings_file)
    secrets = SecretStore()
    backends = build_service(args.paths, settings, secrets=secrets)
    chat = ChatService(args.paths, secrets, backends)
    gateway = build_gateway(args.paths, settings, backends, chat=chat,
                            roles=RoleStore(args.paths.config / "roles"), secrets=secrets)
    try:
        if args.action == "keys":
            return _keys(gateway.keys, args)
        if args.action in ("ttl", "on-demand"):
            return _plan_option(gateway.saved, args)
        if args.action == "requests":
            return _requests(gateway, args)
        if args.action == "usage":
            return _usage(gateway, args)
        backends.refresh()
        if args.action == "models":
            return _models(gateway, args)
        return _serve(gateway, settings, args)
    finally:
        gateway.close()
        chat.close()
        backends.close()


def _serve(gateway: Any, settings: SettingsStore, args: argparse.Namespace) -> int:
    address = args.address or settings.get("gateway_address")
    port = args.port if args.port is not None else settings.get("gateway_port")
    url = gateway.start(address, port)
    ids = [r.id for r in gateway.routes().values() if r.listed]
    print(f"Gateway serving at {url} — {len(ids)} model ids: {', '.join(ids) or 'none yet'}",
          flush=True)
    if not gateway.keys.any():
        print("No gateway keys: any program on this computer may use it (create one with "
              "`rigdeck serve keys create NAME`).", flush=True)
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    refresh = 5.0
    while not done.wait(refresh):
        gateway.backends.refresh()  # backends stopped or started elsewhere
    print("Gateway stopped", flush=True)
    return 0


def _models(gateway: Any, args: argparse.Namespace) -> int:
    listing = gateway.models()
    if args.json:
        print(json_text(listing, indent=2))
        return 0
    rows = [(m["id"], m["rigdeck"]["backend"], m["rigdeck"]["host"],
             m["rigdeck"]["role"] or "-", "running" if m["rigdeck"]["running"] else "on demand")
            for m in listing["data"]]
    if not rows:
        print("no model ids: start a backend (rigdeck up) — its plan is kept for the Gateway")
        return 0
    _table(("MODEL ID", "BACKEND", "HOST", "ROLE", "STATE"), rows)
    return 0


def _keys(keys: Any, args: argparse.Namespace) -> int:
    if args.key_action == "create":
        key = keys.create(args.name)
        print(key)
        print(f"(key {args.name!r} created; use it as the OpenAI API key)")
        return 0
    if args.key_action == "show":
        print(keys.reveal(args.name))
        return 0
    if args.key_action == "revoke":
        keys.revoke(args.name)
        print(f"revoked {args.name}")
        return 0
    listed = keys.all()
    if not listed:
        print("no gateway keys (rigdeck serve keys create NAME)")
        return 0
    _table(("NAME", "CREATED", "ENDS IN"),
           [(k.name, time.strftime("%Y-%m-%d %H:%M", time.localtime(k.created)), f"…{k.hint}")
            for k in listed])
    return 0


def _plan_option(saved: Any, args: argparse.Namespace) -> int:
    if args.action == "ttl":
        plan = saved.set_ttl(args.backend, args.seconds, args.host)
        said = f"after {plan.ttl_s} s idle" if plan.ttl_s else "never (no idle stop)"
        print(f"{plan.name} on {plan.host} stops {said}")
        return 0
    plan = saved.set_on_demand(args.backend, args.state == "on", args.host)
    print(f"{plan.name} on {plan.host}: {'starts' if plan.on_demand else 'does not start'} "
          "on demand")
    return 0


def _requests(gateway: Any, args: argparse.Namespace) -> int:
    records = gateway.records.recent(args.limit)
    if args.json:
        print(json_text({"requests": [r.as_dict() for r in records]}, indent=2))
        return 0
    if not records:
        print("no requests yet")
        return 0
    _table(("WHEN", "CLIENT", "MODEL", "BACKEND", "STATUS", "TOKENS", "TTFT", "TOK/S"),
           [(time.strftime("%H:%M:%S", time.localtime(r.started)), r.client, r.model,
             r.backend or "-", str(r.status), str(r.completion_tokens or "-"),
             f"{r.ttft_s * 1000:.0f} ms" if r.ttft_s is not None else "-",
             f"{r.tokens_per_s:.1f}" if r.tokens_per_s else "-") for r in records])
    return 0


def _usage(gateway: Any, args: argparse.Namespace) -> int:
    usage = gateway.records.usage()
    if args.json:
        print(json_text({"usage": [u.as_dict() for u in usage]}, indent=2))
        return 0
    if not usage:
        print("no requests yet")
        return 0
    _table(("CLIENT", "ROLE", "REQUESTS", "FAILED", "PROMPT TOKENS", "COMPLETION TOKENS"),
           [(u.client, u.role or "-", str(u.requests), str(u.failed), str(u.prompt_tokens),
             str(u.completion_tokens)) for u in usage])
    return 0


def _table(head: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    widths = [max(len(str(c)) for c in column) for column in zip(head, *rows, strict=True)]
    for row in (head, *rows):
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())

