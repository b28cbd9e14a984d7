"""Plans as a plain shell script of `docker run` lines (no compose needed), with the
same command, read-only mounts, GPUs, ports and labels as the compose file.

The API key goes to the container as `-e NAME` from the script's environment, so it is
neither in the script nor on the docker command line.
"""

from __future__ import annotations

import csv
import io
import shlex

from app.engines.export import ExportedBackend
from app.engines.spec import TMPFS_OPTIONS

HEADER = """\
#!/bin/sh
# Written by `rigdeck export`: starts the same backends as docker-compose.yml with plain
# `docker run`. API keys are not in this file: set {variables} first.
set -eu
"""


def _mount(source: str, target: str, read_only: bool) -> str:
    """A --mount value; CSV-quoted so a comma in a path stays in the path."""
    fields = ["type=bind", f"source={source}", f"target={target}"]
    if read_only:
        fields.append("readonly")
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(fields)
    return out.getvalue()


def run_options(backend: ExportedBackend) -> list[str]:
    """The options of `docker run` for one backend (before the image)."""
    spec = backend.spec
    args = ["-d", "--name", backend.name]
    if spec.gpus:
        args += ["--gpus", f'"device={",".join(spec.gpus)}"']
    if backend.host_network:
        args += ["--network", "host"]
    else:
        args += ["-p", f"127.0.0.1:{spec.port}:{spec.port}"]
    args += ["--cap-drop", "ALL", "--security-opt", "no-new-privileges:true",
             "--pids-limit", str(spec.pids_limit)]
    if spec.user:
        args += ["--user", spec.user]
    if spec.read_only_root:
        args.append("--read-only")
    for path in spec.tmpfs:
        args += ["--tmpfs", f"{path}:{TMPFS_OPTIONS}"]
    if spec.ipc_host:
        args.append("--ipc=host")
    if spec.shm_size:
        args += ["--shm-size", spec.shm_size]
    for mount in spec.mounts:
        args += ["--mount", _mount(mount.source, mount.target, mount.read_only)]
    args += ["-e", spec.api_key_env]
    for key, value in spec.env.items():
        args += ["-e", f"{key}={value}"]
    for key, value in backend.labels.items():
        args += ["--label", f"{key}={value}"]
    return args


def _lines(args: list[str] | tuple[str, ...]) -> list[list[str]]:
    """Arguments grouped one option (flag and its values) per line, for a reader."""
    lines: list[list[str]] = []
    for arg in args:
        if arg.startswith("-") or not lines:
            lines.append([arg])
        else:
            lines[-1].append(arg)
    return lines


def to_shell(backends: list[ExportedBackend]) -> str:
    """The launcher script for these backends."""
    lines = [HEADER.format(variables=", ".join(b.key_variable for b in backends))]
    for backend in backends:
        variable = backend.key_variable
        lines.append(f"\n# {backend.name}: {backend.plan.engine}, port {backend.spec.port}\n")
        lines.append(f': "${{{variable}:?set {variable} to the API key of {backend.name}}}"\n')
        lines_of_run = [["docker", "run"], *_lines(run_options(backend)),
                        [backend.spec.image], *_lines(backend.spec.args)]
        command = " \\\n    ".join(" ".join(shlex.quote(a) for a in line)
                                     for line in lines_of_run)
        lines.append(f'{backend.spec.api_key_env}="${variable}" {command}\n')
    return "".join(lines)
