"""The `docker compose` command, to check exported compose files the way a server would.

Debian ships Compose 1.29 as `docker-compose`; it is installed with apt where missing
(CI machines start bare). `docker compose` (the v2 plugin) is used instead when present.
"""

from __future__ import annotations

import shutil
import subprocess

from tests.realparts import PartMissing
from tests.realparts.apt import apt_install

VERSION_TIMEOUT_S = 60


def _works(command: list[str]) -> bool:
    try:
        done = subprocess.run([*command, "version"], capture_output=True, text=True,
                              timeout=VERSION_TIMEOUT_S, check=False)
    except OSError:
        return False
    return done.returncode == 0


def ensure_compose() -> list[str]:
    """The compose command line (`docker compose` or `docker-compose`), installed if needed.

    Raises:
        PartMissing: none here and apt cannot install it (not root, no apt, apt failed).
    """
    if shutil.which("docker") and _works(["docker", "compose"]):
        return ["docker", "compose"]
    if shutil.which("docker-compose") and _works(["docker-compose"]):
        return ["docker-compose"]
    apt_install(["docker-compose"], "checking exported compose files")
    if not _works(["docker-compose"]):
        raise PartMissing("docker-compose was installed but `docker-compose version` fails")
    return ["docker-compose"]
