"""An export on disk: docker-compose.yml and launch.sh side by side in one folder (the
CLI's `rigdeck export` and the Backends page's Export… write the same two files)."""

from __future__ import annotations

from pathlib import Path

from app.engines.compose import to_compose
from app.engines.export import (
    COMPOSE_FILE,
    FIRST_PORT,
    LAUNCHER_FILE,
    ExportedBackend,
    exported_backends,
    write_files,
)
from app.engines.plan import LaunchPlan
from app.engines.shell_launcher import to_shell


def export_to_folder(plans: list[LaunchPlan], images: dict[str, str], folder: Path, *,
                     host_network: bool = False, first_port: int = FIRST_PORT,
                     overwrite: bool = False) -> tuple[list[ExportedBackend], list[Path]]:
    """Write both files; the exported backends (ports, key variables) and the paths.

    Raises:
        PlanError: a plan the recipes refuse, or plans in conflict.
        UserError: the files exist (and not `overwrite`) or cannot be written.
    """
    backends = exported_backends(plans, images, host_network=host_network,
                                 first_port=first_port)
    written = write_files(folder, {COMPOSE_FILE: to_compose(backends),
                                   LAUNCHER_FILE: to_shell(backends)}, overwrite=overwrite)
    return backends, written
