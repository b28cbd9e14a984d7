"""`rigdeck up PLAN.toml | --model PATH [plan flags]`: start a backend and wait until ready.

A backend of the same name that is already up is reported, not started twice. Extra
engine arguments go after `--`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app.cli.values import number
from app.engines.plan import LaunchPlan, PlanError
from app.errors import UserError
from app.library.loader import load_entry
from app.paths import AppPaths
from app.roles.binding import read_adapters
from app.roles.launch import plan_with_roles
from app.roles.store import RoleStore
from app.runtime.backends_service import WillNotFitError
from app.runtime.hosts import LOCAL
from app.runtime.setup import build_service
from app.settings import setting_place

MODEL_SUFFIXES = (".gguf", ".safetensors")
"""A positional path with one of these is a model, not a plan file."""

_FLAGS: tuple[tuple[str, str, type, str], ...] = (
    ("--engine", "engine", str, "llamacpp or vllm"),
    ("--name", "name", str, "backend name (default: from the model file)"),
    ("--image", "image", str, "container image (default: the engine's, "
     f"{setting_place('llamacpp_image')} or {setting_place('vllm_image')})"),
    ("--ctx", "context", int, "context length"),
    ("--parallel", "parallel", int, "parallel slots / sequences"),
    ("--batch", "batch", int, "batch size"),
    ("--ubatch", "ubatch", int, "micro-batch size"),
    ("--ctk", "cache_type_k", str, "K cache type"),
    ("--ctv", "cache_type_v", str, "V cache type"),
    ("--ngl", "gpu_layers", int, "layers on the GPUs"),
    ("--n-cpu-moe", "n_cpu_moe", int, "MoE layers whose experts stay in RAM"),
    ("--experts", "experts", int, "experts per token"),
    ("--reasoning-format", "reasoning_format", str, "llama.cpp reasoning format / vLLM parser"),
    ("--threads", "threads", int, "CPU threads"),
    ("--port", "port", int, "port (default: a free one)"),
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "up", help="start a backend for a plan and wait until it is ready",
        description="Start a llama.cpp or vLLM backend. Engine arguments go after `--`.")
    parser.add_argument("plan", nargs="?", type=Path, help="a plan file (TOML)")
    parser.add_argument("--model", help="model file or folder (instead of a plan file)")
    add_plan_flags(parser)
    parser.add_argument("--host", default=LOCAL, help="host name (default: local)")
    parser.add_argument("--host-network", action="store_true", default=None,
                        help="run on the host's network (engines without a bridge)")
    parser.add_argument("--force", action="store_true",
                        help="start even if the fit check says it will not fit")
    parser.add_argument("--with-roles", action="store_true",
                        help="preload the adapters of every role that fits the model "
                             "(see rigdeck roles), so a role swap needs no restart")
    parser.add_argument("--no-wait", action="store_true", help="return once started")
    parser.add_argument("--timeout", type=number(0, low_open=True), default=600.0,
                        help="seconds to wait for ready")
    parser.add_argument("extra", nargs="*", help=argparse.SUPPRESS)
    parser.set_defaults(handler=run)


def add_plan_flags(parser: argparse.ArgumentParser) -> None:
    """The flags that set a plan's values (`up` and `bench` take the same)."""
    for flag, dest, kind, text in _FLAGS:
        parser.add_argument(flag, dest=f"plan_{dest}", type=kind, help=text)
    parser.add_argument("--gpus", help="GPUs by index or UUID, comma-separated (default: CPU)")
    parser.add_argument("--fa", choices=("on", "off"), help="flash attention")
    parser.add_argument("--label", action="append", default=[], metavar="KEY=VALUE",
                        help="extra container label (repeatable)")


def _sort_positional(args: argparse.Namespace) -> None:
    """What the positional path is: a plan file, a model, or an engine argument."""
    if args.plan is not None and args.model and args.plan.suffix != ".toml":
        # `up --model M -- --flag`: argparse hands the first engine argument to `plan`.
        args.extra, args.plan = [str(args.plan), *args.extra], None
    if args.plan is not None and not args.model and (args.plan.is_dir()
                                                     or args.plan.suffix in MODEL_SUFFIXES):
        args.model, args.plan = str(args.plan), None  # `up model.gguf`: what was meant


def plan_from_args(args: argparse.Namespace) -> LaunchPlan:
    """The plan of a file and/or flags (flags override the file).

    Raises:
        PlanError: neither a file nor --model, or bad values.
    """
    raw: dict[str, Any] = {}
    _sort_positional(args)
    if args.plan is not None:
        raw = LaunchPlan.from_toml(args.plan).to_dict()
    elif not args.model:
        raise PlanError("give a plan file or --model PATH")
    if args.model:
        raw["model"] = str(Path(args.model).expanduser().absolute())
    for _flag, dest, _kind, _text in _FLAGS:
        value = getattr(args, f"plan_{dest}")
        if value is not None:
            raw[dest] = value
    if args.gpus:
        raw["gpus"] = [g.strip() for g in args.gpus.split(",") if g.strip()]
    if args.fa:
        raw["flash_attn"] = args.fa == "on"
    if args.label:
        labels = dict(raw.get("labels", {}))
        for item in args.label:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise PlanError(f"--label {item!r}: write KEY=VALUE")
            labels[key] = value
        raw["labels"] = labels
    if args.extra:
        raw["extra_args"] = [*raw.get("extra_args", []), *args.extra]
    return LaunchPlan.from_dict(raw)


def run(args: argparse.Namespace) -> int:
    plan = plan_from_args(args)
    if args.with_roles:
        plan = _with_roles(plan, args.paths)
    service = build_service(args.paths, host_network=args.host_network)
    try:
        try:
            result = service.start(plan, args.host, force=args.force, wait=False)
        except WillNotFitError as exc:
            raise UserError(f"{exc} (pass --force to start anyway)") from exc
        backend = result.backend
        if result.already_running:
            print(f"{backend.name} is already running on {backend.host} at {backend.base_url} "
                  f"({backend.state}); not starting a second copy")
            return 0
        print(f"started {backend.name} on {backend.host} ({backend.engine}, port {backend.port})",
              flush=True)
        if not args.no_wait:
            service.wait_ready(backend, args.timeout)
            print(f"ready: {backend.name} at {backend.base_url}")
        where = ("in the keyring" if backend.key_persisted
                 else "in memory only (no keyring; nothing saved)")
        print(f"API key: kept {where}")
        return 0
    finally:
        service.close()


def _with_roles(plan: LaunchPlan, paths: AppPaths) -> LaunchPlan:
    """`plan` with every fitting role's adapters; the roles left out are listed with why."""
    store = RoleStore(paths.config / "roles")
    roles = list(store.all().values())
    for problem in store.problems:
        print(f"left out, cannot be read: {problem}")
    launch = plan_with_roles(plan, roles, model=load_entry(Path(plan.model)),
                             adapters=read_adapters(roles))
    print(f"roles preloaded: {', '.join(launch.roles) or 'none with adapters'}")
    for name, why in launch.skipped:
        print(f"role {name!r} left out: {why}")
    return launch.plan
