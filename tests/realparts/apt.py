"""Installing a Debian package for a real part (CI machines start bare)."""

from __future__ import annotations

import logging
import os
import subprocess

from tests.realparts import PartMissing

log = logging.getLogger(__name__)

LOCK_TIMEOUT_S = 300
"""Wait for another apt run (a parallel session installing its own part) to finish."""


def apt_install(package: str) -> None:
    """apt-get update and install `package` without recommends.

    Raises:
        PartMissing: apt-get failed; the tail of its output says why.
    """
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    lock = ["-o", f"DPkg::Lock::Timeout={LOCK_TIMEOUT_S}"]
    for cmd in (["apt-get", *lock, "update"],
                ["apt-get", *lock, "install", "-y", "--no-install-recommends", package]):
        log.info("running %s", " ".join(cmd))
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = (done.stdout + done.stderr)[-3000:]
            raise PartMissing(f"{' '.join(cmd)} failed ({done.returncode}):\n{tail}")
