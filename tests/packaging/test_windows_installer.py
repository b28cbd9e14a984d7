"""The Windows installer recipe compiles here with Debian's NSIS against a stand-in bundle.

The real bundle is built on a Windows runner (.github/workflows/packages.yml); what this
checks is the script itself: its pages, sections, registry and shortcut commands.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from app import __version__
from app.autostart import RUN_KEY, RUN_VALUE

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[2]
NSIS_SCRIPT = ROOT / "packaging" / "windows" / "rigdeck.nsi"


@pytest.fixture
def stand_in_bundle(tmp_path: Path) -> Path:
    """Files named as PyInstaller names them on Windows, with placeholder contents."""
    bundle = tmp_path / "rigdeck"
    (bundle / "_internal").mkdir(parents=True)
    for name in ("rigdeck.exe", "rigdeck-gui.exe", "_internal/python311.dll"):
        (bundle / name).write_bytes(b"MZ stand-in")
    return bundle


@pytest.mark.usefixtures("packaging_tools")
def test_the_installer_compiles_against_a_stand_in_bundle(
    stand_in_bundle: Path, tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "packaging" / "build_packages.py"), "windows-installer",
         "--bundle", str(stand_in_bundle), "--dist", str(tmp_path / "dist")],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    installer = tmp_path / "dist" / f"rigdeck-{__version__}-setup.exe"
    assert installer.read_bytes()[:2] == b"MZ"  # a Windows executable


def test_the_installer_refuses_a_folder_that_is_no_bundle(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "packaging" / "build_packages.py"), "windows-installer",
         "--bundle", str(tmp_path), "--dist", str(tmp_path / "dist")],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 1
    assert "no Windows bundle" in done.stderr


def test_install_is_per_user_and_uninstall_removes_the_login_item() -> None:
    script = NSIS_SCRIPT.read_text(encoding="utf-8")
    assert "RequestExecutionLevel user" in script
    assert 'InstallDir "$LOCALAPPDATA\\Programs\\Rigdeck"' in script
    assert re.search(r'CreateShortcut "\$SMPROGRAMS\\Rigdeck\.lnk"', script)
    assert re.search(r'Section /o "Desktop shortcut"', script)  # optional, off by default
    assert f'!define RUN_KEY "{RUN_KEY}"' in script
    assert f'!define RUN_VALUE "{RUN_VALUE}"' in script
    assert 'DeleteRegValue HKCU "${RUN_KEY}" "${RUN_VALUE}"' in script
    assert "RMDir /r \"$INSTDIR\"" not in script  # never wipe a folder the user chose
