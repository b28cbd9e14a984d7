"""With a real system tray (Xvfb + trayer), closing the window keeps Rigdeck in the tray."""

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.realparts import PartMissing
from tests.realparts.desktop import virtual_desktop_with_tray


@pytest.fixture
def tray_display() -> Iterator[str]:
    try:
        with virtual_desktop_with_tray() as display:
            yield display
    except PartMissing as missing:
        if os.environ.get("CI") == "true":
            pytest.fail(str(missing))
        pytest.skip(str(missing))


def test_closing_the_window_keeps_rigdeck_in_the_tray(tray_display: str, tmp_path: Path) -> None:
    env = dict(os.environ, DISPLAY=tray_display, QT_QPA_PLATFORM="xcb")
    driver = Path(__file__).with_name("tray_driver.py")
    done = subprocess.run(
        [sys.executable, str(driver), str(tmp_path / "home")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    lines = done.stdout.splitlines()
    assert lines == [
        "tray=True",
        "after-close window-visible=False",
        "after-open window-visible=True",
        "quitting",
    ], done.stderr
    assert done.returncode == 0
    assert shutil.which("trayer")
