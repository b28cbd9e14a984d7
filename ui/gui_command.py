"""`rigdeck gui`: opens the window, or renders it to a PNG with --screenshot."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from app.errors import UserError

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ui.pages.registry import PAGE_NAMES

    parser = subparsers.add_parser("gui", help="open the Rigdeck window (the default)")
    parser.add_argument(
        "--screenshot",
        metavar="FILE",
        type=Path,
        help="render the window to a PNG file and exit (works offscreen)",
    )
    parser.add_argument("--page", choices=PAGE_NAMES, help="page to show first")
    parser.add_argument("--size", metavar="WxH", help="window size for --screenshot, e.g. 1280x800")
    parser.add_argument(
        "--tray",
        action="store_true",
        help="start in the tray without opening the window (as at login); "
        "the window opens where there is no tray",
    )
    parser.set_defaults(handler=run)


def _parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise UserError(f"--size must look like 1280x800, not {text!r}") from None
    if not (320 <= width <= 8192 and 240 <= height <= 8192):
        raise UserError(f"--size {text} is out of range (320x240 to 8192x8192)")
    return width, height


def _check_display(screenshot: bool) -> None:
    """Fail with a readable message where Qt would find no display (qutebrowser's earlyinit)."""
    if sys.platform != "linux" or os.environ.get("QT_QPA_PLATFORM"):
        return
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return
    if screenshot:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        return
    raise UserError(
        "No display was found (neither DISPLAY nor WAYLAND_DISPLAY is set). Start Rigdeck "
        "from a desktop session, or use the command line (rigdeck --help)."
    )


def run(args: argparse.Namespace) -> int:
    size = _parse_size(args.size) if args.size else None
    if args.screenshot is not None:
        target = args.screenshot.expanduser().resolve()
        if not target.parent.is_dir():
            raise UserError(f"cannot write the screenshot: folder {target.parent} does not exist")
    _check_display(screenshot=args.screenshot is not None)

    from PySide6.QtWidgets import QApplication

    from ui.application import RigdeckApp
    from ui.crash_dialog import install_excepthook
    from ui.qt_log import route_qt_messages
    from ui.single_instance import SingleInstance, instance_key

    route_qt_messages()
    qapp = QApplication.instance() or QApplication([sys.argv[0]])
    assert isinstance(qapp, QApplication)
    qapp.setApplicationName("Rigdeck")
    qapp.setOrganizationName("Rigdeck")
    qapp.setDesktopFileName("rigdeck")

    if args.screenshot is not None:
        return _screenshot(RigdeckApp(qapp, args.paths), target, args.page, size)

    instance = SingleInstance(instance_key(str(args.paths.config)))
    if not instance.claim():
        print("Rigdeck is already running; its window was brought to the front.")
        return 0
    install_excepthook(str(args.paths.log_file))
    rigdeck = RigdeckApp(qapp, args.paths)
    instance.activated.connect(rigdeck.show_window)
    if args.page:
        rigdeck.window.show_page(args.page)
    if size:
        rigdeck.window.resize(*size)
    if args.tray and rigdeck.tray is not None:
        log.info("started in the tray")
    else:
        rigdeck.show_window()
        log.info("window shown")
    _report_startup_when_painted(rigdeck)
    code = qapp.exec()
    instance.release()
    return code


def _report_startup_when_painted(rigdeck: object) -> None:
    """For bench/startup.py: print the wall time once the window is up, then quit."""
    if not os.environ.get("RIGDECK_STARTUP_PROBE"):
        return
    import time

    from PySide6.QtCore import QTimer

    from ui.application import RigdeckApp

    assert isinstance(rigdeck, RigdeckApp)

    def report() -> None:
        print(f"shown {time.time():.6f}", flush=True)
        rigdeck.quit()

    QTimer.singleShot(0, report)


def _screenshot(
    rigdeck: object, target: Path, page: str | None, size: tuple[int, int] | None
) -> int:
    from PySide6.QtCore import QCoreApplication

    from ui.application import RigdeckApp

    assert isinstance(rigdeck, RigdeckApp)
    window = rigdeck.window
    window.resize(*(size or (1280, 800)))
    if page:
        window.show_page(page)
    window.show()
    for _ in range(5):
        QCoreApplication.processEvents()
    _settle(rigdeck)
    image = window.grab()
    saved = image.save(str(target), "PNG")
    rigdeck.quit()
    if not saved:
        raise UserError(f"could not write the screenshot to {target}")
    print(target)
    return 0


def _settle(rigdeck: object, quiet_s: float = 0.4, limit_s: float = 15.0) -> None:
    """Let background work finish before the grab: pages fill in from the task runner
    (a debounced job may follow another), so wait until it has been idle for `quiet_s`."""
    import time

    from PySide6.QtCore import QEventLoop, QTimer

    from ui.application import RigdeckApp

    assert isinstance(rigdeck, RigdeckApp)
    tasks = rigdeck.services.tasks
    deadline = time.monotonic() + limit_s
    quiet_since = time.monotonic()
    loop = QEventLoop()
    while time.monotonic() < deadline:
        QTimer.singleShot(50, loop.quit)
        loop.exec()
        if tasks.pending:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_s:
            return
    log.warning("screenshot taken with background work still running")
