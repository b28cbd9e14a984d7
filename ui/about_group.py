"""The About box at the foot of the Settings page: Rigdeck's version and what it runs on.

The version is `app.__version__`, the same number `rigdeck --version` prints and the
installers carry in their names; where Rigdeck runs from tells a bundle from a checkout
when a user reports a problem.
"""

import platform
import sys
from pathlib import Path

import PySide6
from PySide6.QtCore import Qt, qVersion
from PySide6.QtWidgets import QGroupBox, QLabel, QVBoxLayout

from app import __version__


def installed_at() -> str:
    """The folder of the bundle (installed packages) or of the checkout (a venv)."""
    if getattr(sys, "frozen", False):
        return f"{Path(sys.executable).parent} (installed bundle)"
    import app

    return f"{Path(app.__file__).resolve().parent.parent} (Python environment {sys.prefix})"


def about_group() -> QGroupBox:
    """A group box naming the version, Python, Qt and the install folder."""
    group = QGroupBox("About Rigdeck")
    layout = QVBoxLayout(group)
    label = QLabel(
        f"<b>Rigdeck {__version__}</b> — a control panel for a local AI workstation.<br>"
        f"Python {platform.python_version()} · Qt {qVersion()} · "
        f"PySide6 {PySide6.__version__} · {platform.system()} {platform.machine()}<br>"
        f"Runs from {installed_at()}"
    )
    label.setObjectName("aboutLabel")
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    layout.addWidget(label)
    return group
