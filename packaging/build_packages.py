"""Build Rigdeck's packages: the PyInstaller bundle, the .deb, the tarball, the Windows installer.

    python packaging/build_packages.py bundle   one-folder bundle: DIST/rigdeck
    python packaging/build_packages.py deb      DIST/rigdeck_<version>_amd64.deb
    python packaging/build_packages.py tarball  DIST/rigdeck-<version>-linux-x86_64.tar.gz
    python packaging/build_packages.py windows-installer    DIST/rigdeck-<version>-setup.exe
    python packaging/build_packages.py linux    bundle, deb and tarball

(`--dist DIR`: output folder, default dist/; `--bundle DIR`: the bundle to package.)

Run it with the Python of an environment where Rigdeck and PyInstaller are installed
(`pip install -e ".[packaging]"`); `deb` needs dpkg-deb, `windows-installer` makensis
(Debian's `nsis`, or NSIS on Windows). The version is Rigdeck's one version number,
`app.__version__`. Each step prints what it wrote; a missing tool or bundle is an error
message and exit status 1.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the checkout's app/, also when run from a clean copy

from app import __version__  # noqa: E402 - needs the checkout on sys.path first

SPEC = ROOT / "packaging" / "pyinstaller" / "rigdeck.spec"
NSIS_SCRIPT = ROOT / "packaging" / "windows" / "rigdeck.nsi"
LAUNCHERS = ROOT / "launchers"


class BuildError(RuntimeError):
    """A step cannot run (missing tool or input); its message says what to do."""


def _run(command: list[str], what: str) -> None:
    print(f"$ {' '.join(command)}", flush=True)
    if shutil.which(command[0]) is None and not Path(command[0]).exists():
        raise BuildError(f"{what} needs `{command[0]}`, which is not installed")
    done = subprocess.run(command, check=False)
    if done.returncode != 0:
        raise BuildError(f"{what} failed: {command[0]} exited with {done.returncode}")


def build_bundle(dist: Path) -> Path:
    """The PyInstaller one-folder bundle at dist/rigdeck (built afresh)."""
    with tempfile.TemporaryDirectory(prefix="rigdeck-pyinstaller-") as work:
        _run(
            [sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
             "--distpath", str(dist), "--workpath", work, str(SPEC)],
            "the bundle",
        )
    bundle = dist / "rigdeck"
    print(f"bundle: {bundle}")
    return bundle


def _existing_bundle(bundle: Path) -> Path:
    executable = bundle / ("rigdeck.exe" if sys.platform == "win32" else "rigdeck")
    if not executable.exists():
        raise BuildError(f"no bundle at {bundle}: run `build_packages.py bundle` first")
    return bundle


def _desktop_files(share: Path) -> None:
    """Desktop entry and icons under share/ (applications/, icons/hicolor/)."""
    (share / "applications").mkdir(parents=True, exist_ok=True)
    shutil.copy2(LAUNCHERS / "rigdeck.desktop", share / "applications" / "rigdeck.desktop")
    shutil.copytree(LAUNCHERS / "icons" / "hicolor", share / "icons" / "hicolor",
                    dirs_exist_ok=True)
    scalable = share / "icons" / "hicolor" / "scalable" / "apps"
    scalable.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ROOT / "resources" / "icons" / "rigdeck.svg", scalable / "rigdeck.svg")


def _size_kib(folder: Path) -> int:
    return sum(p.lstat().st_size for p in folder.rglob("*")) // 1024 + 1


def build_deb(bundle: Path, dist: Path) -> Path:
    """rigdeck_<version>_amd64.deb: the bundle in /opt/rigdeck, `rigdeck` on PATH, menu entry.

    No maintainer scripts: the menu and icon caches are refreshed by the triggers of
    desktop-file-utils and hicolor-icon-theme, and removing the package touches nothing
    in the users' homes (settings, conversations, logs stay).
    """
    _existing_bundle(bundle)
    target = dist / f"rigdeck_{__version__}_amd64.deb"
    with tempfile.TemporaryDirectory(prefix="rigdeck-deb-") as staging_dir:
        staging = Path(staging_dir) / "root"
        shutil.copytree(bundle, staging / "opt" / "rigdeck", symlinks=True)
        (staging / "usr" / "bin").mkdir(parents=True)
        # relative, so the link also works in a tree installed with dpkg --root
        (staging / "usr" / "bin" / "rigdeck").symlink_to("../../opt/rigdeck/rigdeck")
        _desktop_files(staging / "usr" / "share")
        doc = staging / "usr" / "share" / "doc" / "rigdeck"
        doc.mkdir(parents=True)
        shutil.copy2(ROOT / "packaging" / "linux" / "copyright", doc / "copyright")
        shutil.copy2(ROOT / "CHANGELOG.md", doc / "CHANGELOG.md")
        for path in staging.rglob("*"):  # dpkg-deb refuses group-writable control files
            if not path.is_symlink():
                path.chmod(0o755 if path.is_dir() or path.stat().st_mode & 0o100 else 0o644)
        control = (ROOT / "packaging" / "linux" / "control.in").read_text(encoding="utf-8")
        control = control.replace("@VERSION@", __version__)
        control = control.replace("@INSTALLED_SIZE@", str(_size_kib(staging)))
        (staging / "DEBIAN").mkdir(mode=0o755)
        (staging / "DEBIAN" / "control").write_text(control, encoding="utf-8")
        dist.mkdir(parents=True, exist_ok=True)
        _run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(staging), str(target)],
             "the .deb")
    print(f"deb: {target}")
    return target


def build_tarball(bundle: Path, dist: Path) -> Path:
    """rigdeck-<version>-linux-x86_64.tar.gz: the bundle plus share/ (menu entry, icons)."""
    _existing_bundle(bundle)
    name = f"rigdeck-{__version__}-linux-x86_64"
    target = dist / f"{name}.tar.gz"
    with tempfile.TemporaryDirectory(prefix="rigdeck-tar-") as staging_dir:
        top = Path(staging_dir) / name
        shutil.copytree(bundle, top, symlinks=True)
        _desktop_files(top / "share")
        dist.mkdir(parents=True, exist_ok=True)
        with tarfile.open(target, "w:gz") as archive:
            archive.add(top, arcname=name)
    print(f"tarball: {target}")
    return target


def build_windows_installer(bundle: Path, dist: Path) -> Path:
    """rigdeck-<version>-setup.exe from the bundle with NSIS (a stand-in bundle compiles too)."""
    if not (bundle / "rigdeck-gui.exe").exists():
        raise BuildError(f"no Windows bundle at {bundle} (rigdeck-gui.exe is missing)")
    target = dist / f"rigdeck-{__version__}-setup.exe"
    dist.mkdir(parents=True, exist_ok=True)
    flag = "/" if sys.platform == "win32" else "-"
    _run(
        ["makensis", f"{flag}V2", f"{flag}DVERSION={__version__}",
         f"{flag}DBUNDLE={bundle.resolve()}", f"{flag}DOUTFILE={target.resolve()}",
         f"{flag}DICON={(LAUNCHERS / 'icons' / 'rigdeck.ico').resolve()}", str(NSIS_SCRIPT)],
        "the Windows installer",
    )
    print(f"installer: {target}")
    return target


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("what", choices=["bundle", "deb", "tarball", "windows-installer", "linux"])
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="output folder")
    parser.add_argument("--bundle", type=Path, help="bundle to package (default: DIST/rigdeck)")
    args = parser.parse_args(argv)
    dist: Path = args.dist.resolve()
    bundle: Path = (args.bundle or dist / "rigdeck").resolve()
    try:
        if args.what in ("bundle", "linux"):
            bundle = build_bundle(dist)
        if args.what in ("deb", "linux"):
            build_deb(bundle, dist)
        if args.what in ("tarball", "linux"):
            build_tarball(bundle, dist)
        if args.what == "windows-installer":
            build_windows_installer(bundle, dist)
    except BuildError as exc:
        print(f"build_packages: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
