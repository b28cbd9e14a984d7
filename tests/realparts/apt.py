"""Install Debian packages a real part needs, with apt, where we run as root."""

import os
import shutil
import subprocess
from collections.abc import Sequence

from tests.realparts import PartMissing


def apt_install(packages: Sequence[str], needed_for: str) -> None:
    """`apt-get update` then install `packages` (no recommends).

    Raises:
        PartMissing: not root or no apt-get (the message names the packages and what
            needs them), or apt-get failed (with the tail of its output).
    """
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise PartMissing(f"{needed_for} needs these Debian packages: {' '.join(packages)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
    ):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise PartMissing(f"{' '.join(command)} failed: {done.stderr[-2000:]}")
