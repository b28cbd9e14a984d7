"""The tools the packaging tests build with: PyInstaller, dpkg-deb, makensis, desktop-file-validate.

PyInstaller comes from the `packaging` extra (tests/run.sh installs it); the Debian
packages (dpkg for dpkg-deb, nsis, desktop-file-utils) are installed with apt when
missing and we run as root, as desktop.py does for Xvfb.
"""

import importlib.util
import shutil

from tests.realparts import PartMissing
from tests.realparts.apt import apt_install

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
    apt_install(missing, "the packaging tests")
