"""`rigdeck hosts list|add|remove|test`: the Docker hosts backends run on, as the Settings
page's Hosts section shows them. `add` checks the URL before anything is written and then
runs the doctor on the new host; `test` is the doctor for one host, GPUs included."""

from __future__ import annotations

import argparse
import sys

from app.cli.commands.doctor import print_report
from app.cli.json_text import json_text
from app.runtime.backends_service import BackendsService
from app.runtime.doctor import diagnose
from app.runtime.hosts import Host
from app.runtime.setup import build_service
from app.settings import SettingsStore


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "hosts", help="list, add, remove or test the Docker hosts",
        description="The Docker hosts Rigdeck starts backends on: this machine's engine, "
                    "local processes, and hosts you add over ssh://, tcp:// (TLS) or unix://.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    listing = actions.add_parser("list", help="the hosts and how they are reached")
    listing.add_argument("--json", action="store_true", help="as JSON")
    add = actions.add_parser("add", help="add a host (or change one) and test it")
    add.add_argument("name", help="a short name, e.g. gpu-server")
    add.add_argument("url", help="ssh://user@server, tcp://server:2376 or unix:///path")
    add.add_argument("--host-network", action="store_true",
                     help="containers share the host's network (engines without a bridge)")
    add.add_argument("--bind-address", default="127.0.0.1",
                     help="where published ports listen (default 127.0.0.1)")
    add.add_argument("--cert-path", default="",
                     help="tcp://: folder with ca.pem, cert.pem, key.pem (default "
                          "DOCKER_CERT_PATH or ~/.docker)")
    add.add_argument("--no-test", action="store_true", help="do not run the doctor")
    remove = actions.add_parser("remove", help="forget a host you added")
    remove.add_argument("name")
    test = actions.add_parser("test", help="run the doctor on one host (GPUs, images, ports)")
    test.add_argument("name")
    test.add_argument("--json", action="store_true", help="as JSON")
    parser.set_defaults(handler=run, action="list", json=False)


def _network(host: Host) -> str:
    if host.kind == "process":
        return "-"
    return "host" if host.host_network else f"ports on {host.bind_address}"


def run(args: argparse.Namespace) -> int:
    settings = SettingsStore(args.paths.settings_file)
    service = build_service(args.paths, settings)
    try:
        if args.action == "add":
            service.add_host(Host(args.name, args.url, host_network=args.host_network,
                                  bind_address=args.bind_address, cert_path=args.cert_path))
            print(f"added {args.name} ({args.url})")
            return 0 if args.no_test else _test(service, settings, args.name, as_json=False)
        if args.action == "remove":
            service.refresh(args.name)  # what runs there decides whether it may go
            service.remove_host(args.name)
            print(f"removed {args.name}")
            return 0
        if args.action == "test":
            return _test(service, settings, args.name, as_json=args.json)
        hosts = list(service.hosts.values())
        if args.json:
            print(json_text({"hosts": [{"name": h.name, "url": h.url, "kind": h.kind,
                                         "host_network": h.host_network,
                                         "bind_address": h.bind_address}
                                        for h in hosts]}, indent=2))
            return 0
        width = max(len(h.name) for h in hosts)
        url_width = max(len(h.url) for h in hosts)
        for host in hosts:
            print(f"{host.name.ljust(width)}  {host.url.ljust(url_width)}  {_network(host)}")
        print("GPUs and problems: rigdeck hosts test NAME")
        return 0
    finally:
        service.close()


def _test(service: BackendsService, settings: SettingsStore, name: str, *,
          as_json: bool) -> int:
    [report] = diagnose(service.hosts, dict(service.runtimes), service.images,
                        list(settings.get("model_folders")), only=name)
    if as_json:
        print(json_text(report.as_dict()))
    else:
        print_report(report)
        gpus = ", ".join(f"{g.index}: {g.name}" for g in report.gpus) or "none"
        print(f"  GPUs: {gpus}")
    for check in report.failed:
        print(f"rigdeck: {name}: {check.name} failed: {check.detail}"
              + (f"; fix: {check.fix}" if check.fix else ""), file=sys.stderr)
    return 1 if report.failed else 0
