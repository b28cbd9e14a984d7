"""Plans as a docker-compose.yml, and such a file read back into the same plans.

Each backend is one service: the recipe's command, model folders mounted read-only, the
port published on 127.0.0.1 (or host networking), the GPUs reserved under
`deploy.resources.reservations.devices` (driver nvidia, device_ids, capabilities [gpu]),
and the plan itself in its `rigdeck.plan` label. Reading back takes that label and
checks it still makes the service's command, so a file edited by hand is refused with
the difference rather than turned into a plan that says something else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from app.engines.export import ExportedBackend, export_spec
from app.engines.plan import LaunchPlan, PlanError
from app.engines.spec import TMPFS_OPTIONS
from app.runtime.backend import LABEL

HEADER = """\
# Written by `rigdeck export`: the same backends Rigdeck starts, without Rigdeck.
# API keys are not in this file: set {variables} before `docker compose up -d`.
# `rigdeck import` reads this file back into plans.
"""


def _escape(value: Any) -> Any:
    """Compose reads `$` as a variable: write a literal `$` as `$$`."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, list):
        return [_escape(v) for v in value]
    if isinstance(value, dict):
        return {k: _escape(v) for k, v in value.items()}
    return value


def _unescape(value: str) -> str:
    return value.replace("$$", "$")


def _service(backend: ExportedBackend) -> dict[str, Any]:
    spec = backend.spec
    service: dict[str, Any] = {
        "image": spec.image, "container_name": backend.name, "command": list(spec.args),
        "environment": dict(spec.env),
        "volumes": [{"type": "bind", "source": m.source, "target": m.target,
                     "read_only": m.read_only} for m in spec.mounts],
        "labels": backend.labels,
    }
    if backend.host_network:
        service["network_mode"] = "host"
    else:
        service["ports"] = [f"127.0.0.1:{spec.port}:{spec.port}"]
    service.update({"user": spec.user, "cap_drop": ["ALL"],
                    "security_opt": ["no-new-privileges:true"], "pids_limit": spec.pids_limit,
                    "read_only": spec.read_only_root})
    if spec.tmpfs:
        service["tmpfs"] = [f"{path}:{TMPFS_OPTIONS}" for path in spec.tmpfs]
    if spec.ipc_host:
        service["ipc"] = "host"
    if spec.shm_size:
        service["shm_size"] = spec.shm_size
    if spec.gpus:
        service["deploy"] = {"resources": {"reservations": {"devices": [
            {"driver": "nvidia", "device_ids": list(spec.gpus), "capabilities": ["gpu"]}]}}}
    service = _escape(service)
    service["environment"][spec.api_key_env] = (
        f"${{{backend.key_variable}:?set {backend.key_variable} to the API key of "
        f"{backend.name}}}")
    return service


def to_compose(backends: list[ExportedBackend]) -> str:
    """The docker-compose.yml text for these backends."""
    services = {b.name: _service(b) for b in backends}
    body = yaml.safe_dump({"services": services}, sort_keys=False, default_flow_style=False,
                          width=4096)
    variables = ", ".join(b.key_variable for b in backends)
    return HEADER.format(variables=variables) + body


def _plan_of(name: str, service: Any) -> LaunchPlan:
    """The plan in one service's labels, checked against the service's command.

    Raises:
        PlanError: no plan label, or a command the plan no longer makes.
    """
    if not isinstance(service, dict):
        raise PlanError(f"service {name}: not a table of settings")
    labels = service.get("labels") or {}
    if isinstance(labels, list):  # compose also allows ["key=value", …]
        labels = dict(item.split("=", 1) for item in labels if "=" in item)
    raw_plan = labels.get(f"{LABEL}.plan")
    if not isinstance(raw_plan, str):
        raise PlanError(f"service {name} has no {LABEL}.plan label: only files written by "
                        "`rigdeck export` can be read back")
    plan = LaunchPlan.from_json(_unescape(raw_plan))
    try:
        port = int(labels.get(f"{LABEL}.port", ""))
    except ValueError:
        raise PlanError(f"service {name}: the {LABEL}.port label is not a port") from None
    arch = labels.get(f"{LABEL}.arch") or None
    expected = export_spec(plan, port=port, image=str(service.get("image", "")),
                           host_network=service.get("network_mode") == "host", arch=arch).args
    command = [_unescape(str(a)) for a in service.get("command") or []]
    if command != list(expected):
        first = next((i for i, (a, b) in enumerate(zip(command, expected, strict=False))
                      if a != b), min(len(command), len(expected)))
        found = command[first] if first < len(command) else "(end)"
        wanted = expected[first] if first < len(expected) else "(end)"
        raise PlanError(
            f"service {name}: its command was changed after export (argument {first + 1} "
            f"is {found!r}, the plan makes {wanted!r}); edit the plan and export again "
            "instead of editing the command")
    return plan


def plans_from_compose(text: str, source: str = "the compose file") -> list[LaunchPlan]:
    """The plans of a compose file written by `rigdeck export`, in file order.

    Raises:
        PlanError: not YAML, no services, or a service that is not one of Rigdeck's.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PlanError(f"{source} is not valid YAML: {exc}") from exc
    services = data.get("services") if isinstance(data, dict) else None
    if not isinstance(services, dict) or not services:
        raise PlanError(f"{source} has no services")
    return [_plan_of(str(name), service) for name, service in services.items()]


def read_compose(path: Path) -> list[LaunchPlan]:
    """plans_from_compose of a file.

    Raises:
        PlanError: the file cannot be read or holds no Rigdeck plans.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return plans_from_compose(text, str(path))
