"""Plans taken elsewhere: what each plan becomes on a server without Rigdeck.

`exported_backends` runs each plan through its engine's recipe (the same flags Rigdeck
itself would start) and gives it a port and an API-key variable; `compose.py` and
`shell_launcher.py` write that down. The API key itself is never written: each backend
reads it from a variable the user sets (`<NAME>_API_KEY`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from app.engines.plan import LaunchPlan, PlanError
from app.engines.recipes import launch_spec, model_arch
from app.engines.spec import LaunchSpec
from app.errors import UserError
from app.runtime.backend import LABEL
from app.user_files import write_atomically

FIRST_PORT = 8080
COMPOSE_FILE = "docker-compose.yml"
LAUNCHER_FILE = "launch.sh"


@dataclass(frozen=True)
class ExportedBackend:
    """One plan as it runs elsewhere: the recipe's launch, its labels and key variable."""

    plan: LaunchPlan
    spec: LaunchSpec
    host_network: bool
    arch: str | None

    @property
    def name(self) -> str:
        return self.plan.backend_name

    @property
    def key_variable(self) -> str:
        """The environment variable the user puts this backend's API key in."""
        return re.sub(r"[^A-Z0-9]+", "_", self.name.upper()).strip("_") + "_API_KEY"

    @property
    def labels(self) -> dict[str, str]:
        """The plan as written (for import) and where it listens; no `managed` label, so
        a Rigdeck that sees these containers lists them read-only."""
        labels = {**self.plan.labels, f"{LABEL}.name": self.name,
                  f"{LABEL}.engine": self.plan.engine, f"{LABEL}.model": self.plan.model,
                  f"{LABEL}.port": str(self.spec.port), f"{LABEL}.plan": self.plan.to_json()}
        if self.arch:
            labels[f"{LABEL}.arch"] = self.arch
        return labels


def export_spec(plan: LaunchPlan, *, port: int, image: str, host_network: bool,
                arch: str | None) -> LaunchSpec:
    """The recipe's launch as it runs in an exported container.

    Raises:
        PlanError: the recipe refuses the plan.
    """
    bind = "127.0.0.1" if host_network else "0.0.0.0"
    return launch_spec(plan, port=port, bind=bind, image=image, in_container=True, arch=arch)


def exported_backends(plans: list[LaunchPlan], images: dict[str, str], *,
                      host_network: bool = False,
                      first_port: int = FIRST_PORT) -> list[ExportedBackend]:
    """Each plan with a port (its own, else the next free one from `first_port`).

    Raises:
        PlanError: no plans, two plans with one name or port, or a plan the recipe refuses.
    """
    if not plans:
        raise PlanError("no plans to export")
    names = [p.backend_name for p in plans]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise PlanError(f"two plans are named {', '.join(twice)}; give each a distinct name")
    taken = [p.port for p in plans if p.port is not None]
    if len(set(taken)) != len(taken):
        raise PlanError(f"two plans ask for the same port ({sorted(taken)})")
    next_port = first_port
    out = []
    for plan in plans:
        port = plan.port
        if port is None:
            while next_port in taken:
                next_port += 1
            port = next_port
            taken.append(port)
        arch = model_arch(plan)
        image = plan.image or images.get(plan.engine, "")
        spec = export_spec(plan, port=port, image=image, host_network=host_network, arch=arch)
        out.append(ExportedBackend(plan, spec, host_network, arch))
    return out


def write_files(folder: Path, files: dict[str, str], *, overwrite: bool = False) -> list[Path]:
    """Write `files` (name → text) into `folder`; a .sh file is made executable.

    Raises:
        UserError: a file is there already and `overwrite` is False, or it cannot be written.
    """
    targets = [folder / name for name in files]
    existing = [str(t) for t in targets if t.exists()]
    if existing and not overwrite:
        raise UserError(f"{', '.join(existing)} already exist(s); choose another folder or "
                        "allow overwriting (--force)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for target, text in zip(targets, files.values(), strict=True):
            write_atomically(target, text.encode("utf-8"))
            if target.suffix == ".sh":
                target.chmod(0o755)
    except OSError as exc:
        raise UserError(f"cannot write the export to {folder}: {exc.strerror or exc}") from exc
    return targets
