"""The installed entry point: screenshots, errors without tracebacks, one instance only."""

import struct
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import RIGDECK


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def test_screenshot_renders_the_window(tmp_path: Path, app_env: dict[str, str]) -> None:
    target = tmp_path / "fit.png"
    done = subprocess.run(
        [*RIGDECK, "gui", "--screenshot", str(target), "--page", "fit", "--size", "900x640"],
        env=app_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert _png_size(target) == (900, 640)
    settings = Path(app_env["RIGDECK_HOME"]) / "config" / "settings.toml"
    assert 'last_page = "fit"' in settings.read_text(encoding="utf-8")


def test_screenshot_works_without_a_display(tmp_path: Path, app_env: dict[str, str]) -> None:
    env = {k: v for k, v in app_env.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY")}
    target = tmp_path / "library.png"
    done = subprocess.run(
        [*RIGDECK, "gui", "--screenshot", str(target)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert _png_size(target) == (1280, 800)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["gui", "--size", "big"], "--size must look like 1280x800"),
        (["gui", "--size", "10x10"], "out of range"),
        (["gui", "--screenshot", "/no/such/folder/x.png"], "folder /no/such/folder does not exist"),
    ],
)
def test_user_errors_are_messages_not_tracebacks(
    app_env: dict[str, str], args: list[str], message: str
) -> None:
    done = subprocess.run(
        [*RIGDECK, *args], env=app_env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_no_display_is_explained(app_env: dict[str, str]) -> None:
    env = {
        k: v
        for k, v in app_env.items()
        if k not in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY")
    }
    done = subprocess.run(RIGDECK, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "No display was found" in done.stderr
    assert "Traceback" not in done.stderr


def _wait_for_log_line(
    log: Path, text: str, process: subprocess.Popen[str], seconds: float, count: int = 1
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if log.exists() and log.read_text(encoding="utf-8").count(text) >= count:
            return
        if process.poll() is not None:
            pytest.fail(f"rigdeck exited early with {process.returncode}: {process.stderr}")
        time.sleep(0.1)
    pytest.fail(f"{text!r} did not appear in {log} within {seconds} s")


def test_a_second_launch_brings_the_first_window_forward(app_env: dict[str, str]) -> None:
    log = Path(app_env["RIGDECK_HOME"]) / "logs" / "rigdeck.log"
    first = subprocess.Popen(
        [*RIGDECK, "gui"], env=app_env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        _wait_for_log_line(log, "window shown", first, 60)
        assert log.read_text(encoding="utf-8").count("window brought to the front") == 1
        second = subprocess.run(
            [*RIGDECK, "gui"], env=app_env, capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 0, second.stderr
        assert "already running" in second.stdout
        _wait_for_log_line(log, "window brought to the front", first, 30, count=2)
        assert log.read_text(encoding="utf-8").count("window shown") == 1
        assert first.poll() is None
    finally:
        first.terminate()
        first.communicate(timeout=30)
