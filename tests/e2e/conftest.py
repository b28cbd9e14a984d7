"""End-to-end tests start the real `rigdeck` as a subprocess, as a user would."""

import os
import sys
from pathlib import Path

import pytest


@pytest.fixture
def app_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a Rigdeck subprocess: its own home, offscreen Qt."""
    env = dict(os.environ)
    env["RIGDECK_HOME"] = str(tmp_path / "home")
    env["QT_QPA_PLATFORM"] = "offscreen"
    return env


RIGDECK = [sys.executable, "-m", "app"]
