"""With a real system tray (Xvfb + trayer), closing the window keeps Rigdeck in the tray."""

import os
import shutil
import subprocess
import sys
from pathlib import Path


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


def _start_with_tray_flag(env: dict[str, str], home: Path) -> str:
    """Run `rigdeck gui --tray` until its event loop runs (the start-up probe quits it);
    returns its log."""
    env = dict(env, RIGDECK_HOME=str(home), RIGDECK_STARTUP_PROBE="1")
    done = subprocess.run(
        [sys.executable, "-m", "app", "gui", "--tray"],
        env=env, capture_output=True, text=True, timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr
    return (home / "logs" / "rigdeck.log").read_text(encoding="utf-8")


def test_started_at_login_rigdeck_stays_in_the_tray(tray_display: str, tmp_path: Path) -> None:
    """`gui --tray` (the login item's command) opens no window where a tray exists."""
    env = dict(os.environ, DISPLAY=tray_display, QT_QPA_PLATFORM="xcb")
    log = _start_with_tray_flag(env, tmp_path / "home")
    assert "started in the tray" in log
    assert "window shown" not in log


def test_without_a_tray_the_login_start_opens_the_window(tmp_path: Path) -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")  # offscreen Qt has no tray
    log = _start_with_tray_flag(env, tmp_path / "home")
    assert "window shown" in log
    assert "started in the tray" not in log
