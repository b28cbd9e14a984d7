"""launchers/: the desktop entry is valid and runs a real command; icons are the sizes they say."""

import shlex
import struct
import subprocess
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

from app.cli.main import build_parser

pytestmark = pytest.mark.packaging

LAUNCHERS = Path(__file__).resolve().parents[2] / "launchers"


@pytest.mark.usefixtures("packaging_tools")
def test_the_desktop_entry_is_valid() -> None:
    done = subprocess.run(["desktop-file-validate", str(LAUNCHERS / "rigdeck.desktop")],
                          capture_output=True, text=True)
    assert done.returncode == 0
    assert done.stdout + done.stderr == ""  # not even a hint


def test_the_desktop_entry_runs_the_window() -> None:
    lines = (LAUNCHERS / "rigdeck.desktop").read_text(encoding="utf-8").splitlines()
    command = shlex.split(next(line for line in lines if line.startswith("Exec="))[5:])
    assert command[0] == "rigdeck"  # /usr/bin/rigdeck from the .deb, or the pip-installed one
    assert build_parser().parse_args(command[1:]).command == "gui"


@pytest.mark.parametrize("size", [16, 22, 24, 32, 48, 64, 128, 256, 512])
def test_each_icon_has_its_size(size: int) -> None:
    icon = QImage(str(LAUNCHERS / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "rigdeck.png"))
    assert (icon.width(), icon.height()) == (size, size)
    assert icon.hasAlphaChannel()


def test_the_windows_icon_holds_every_size_up_to_256() -> None:
    data = (LAUNCHERS / "icons" / "rigdeck.ico").read_bytes()
    reserved, kind, count = struct.unpack_from("<HHH", data)
    assert (reserved, kind) == (0, 1)  # an icon, not a cursor
    sizes = set()
    for index in range(count):
        width, _, _, _, _, _, length, offset = struct.unpack_from("<BBBBHHII", data, 6 + 16 * index)
        assert data[offset:offset + 8] == b"\x89PNG\r\n\x1a\n"
        assert offset + length <= len(data)
        sizes.add(width or 256)
    assert sizes == {16, 24, 32, 48, 64, 128, 256}
