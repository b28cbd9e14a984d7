"""The tools the packaging tests build with: PyInstaller, dpkg-deb, makensis, desktop-file-validate.

PyInstaller comes from the `packaging` extra (tests/run.sh installs it); the Debian
packages (dpkg-dev's dpkg-deb, nsis, desktop-file-utils) are installed with apt when
missing and we run as root, as desktop.py does for Xvfb.
"""

import importlib.util
import os
import shutil
import subprocess

from tests.realparts import PartMissing

TOOLS = {"dpkg-deb": "dpkg", "makensis": "nsis", "desktop-file-validate": "desktop-file-utils"}


def ensure_packaging_tools() -> None:
    """Make sure every packaging tool is there.

    Raises:
        PartMissing: PyInstaller is not installed, or a Debian package is missing and
            cannot be installed here.
    """
    if importlib.util.find_spec("PyInstaller") is None:
        raise PartMissing('PyInstaller is not installed (pip install -e ".[dev,packaging]")')
    missing = sorted({package for tool, package in TOOLS.items() if shutil.which(tool) is None})
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise PartMissing(f"the packaging tests need these Debian packages: {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
    ):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise PartMissing(f"{' '.join(command)} failed: {done.stderr[-2000:]}")
