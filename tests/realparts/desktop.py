"""A virtual desktop with a real system tray: Xvfb plus the trayer XEmbed tray.

Debian's packages (xvfb, trayer, and the xcb libraries Qt's xcb plugin needs) are
installed with apt when missing and we run as root.
"""

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.realparts import PartMissing
from tests.realparts.apt import apt_install

APT_PACKAGES = (
    "xvfb",
    "trayer",
    "libxcb-cursor0",
    "libxcb-icccm4",
    "libxcb-keysyms1",
    "libxcb-image0",
    "libxcb-render-util0",
    "libxcb-xinerama0",
    "libxcb-xkb1",
    "libxkbcommon-x11-0",
    "libxcb-shape0",
)


def _ensure_packages() -> None:
    if (
        shutil.which("Xvfb")
        and shutil.which("trayer")
        and Path("/usr/lib/x86_64-linux-gnu/libxcb-icccm.so.4").exists()
    ):
        return
    apt_install(APT_PACKAGES, "a virtual desktop")


@contextmanager
def virtual_desktop_with_tray() -> Iterator[str]:
    """Start Xvfb and trayer; yield the DISPLAY; stop both afterwards.

    Raises:
        PartMissing: the packages are missing and cannot be installed, or a part did not start.
    """
    _ensure_packages()
    read_end, write_end = os.pipe()
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(write_end,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    tray: subprocess.Popen[bytes] | None = None
    try:
        with os.fdopen(read_end) as pipe:
            number = pipe.readline().strip()
        if not number:
            raise PartMissing("Xvfb did not start")
        display = f":{number}"
        tray = subprocess.Popen(
            ["trayer", "--expand", "true", "--widthtype", "request"],
            env=dict(os.environ, DISPLAY=display),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)  # trayer claims the tray selection right after it maps its window
        if tray.poll() is not None:
            raise PartMissing(f"trayer exited at once with {tray.returncode}")
        yield display
    finally:
        for process in (tray, xvfb):
            if process is not None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
