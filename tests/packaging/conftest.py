"""The packaging tests build the Linux bundle, .deb and tarball once per session.

The build runs from a clean copy of the checkout (the files git tracks or would track,
as a fresh clone has them, without .venv/, build/ or dist/) with this environment's
Python, which has Rigdeck's dependencies and PyInstaller.
"""

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class LinuxPackages:
    bundle: Path
    deb: Path
    tarball: Path


def clean_copy(target: Path) -> Path:
    """Copy the checkout's files as a fresh clone would have them (plus uncommitted edits)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


@pytest.fixture(scope="session")
def linux_packages(
    packaging_tools: None, tmp_path_factory: pytest.TempPathFactory
) -> LinuxPackages:
    """Bundle, .deb and tarball built from a clean copy of the checkout."""
    source = clean_copy(tmp_path_factory.mktemp("checkout"))
    dist = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, str(source / "packaging" / "build_packages.py"), "linux",
         "--dist", str(dist)],
        cwd=source, capture_output=True, text=True, timeout=1200,
    )
    assert done.returncode == 0, f"build failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    debs = list(dist.glob("*.deb"))
    tarballs = list(dist.glob("*.tar.gz"))
    built = sorted(p.name for p in dist.iterdir())
    assert len(debs) == 1, built
    assert len(tarballs) == 1, built
    return LinuxPackages(bundle=dist / "rigdeck", deb=debs[0], tarball=tarballs[0])


def install_deb(deb: Path, root: Path) -> None:
    """Install `deb` into a fresh tree `root` with its own dpkg database (no chroot needed).

    The tree has none of the system libraries the package depends on, hence
    --force-depends; the installed program runs with this machine's libraries.
    """
    admin = root / "var" / "lib" / "dpkg"
    for folder in ("info", "updates", "triggers"):
        (admin / folder).mkdir(parents=True, exist_ok=True)
    (admin / "status").touch()
    done = subprocess.run(
        ["dpkg", f"--root={root}", "--force-depends", "--force-not-root", "-i", str(deb)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
