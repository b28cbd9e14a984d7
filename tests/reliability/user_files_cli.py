"""`rigdeck` as a user runs it, for the user-file tests: a subprocess with its own home and
an engine address where no engine is, so nothing here reaches a Docker engine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from app.paths import HOME_ENV

NO_ENGINE = "unix:///nonexistent/rigdeck-no-engine.sock"
CLI_TIMEOUT_S = 120
"""Far above a command's run (a second or two); a FIFO read would hang past it."""


def rigdeck(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `rigdeck ARGS` with RIGDECK_HOME=`home`; stdout and stderr as text."""
    env = {**os.environ, HOME_ENV: str(home), "DOCKER_HOST": NO_ENGINE}
    return subprocess.run([sys.executable, "-m", "app", *args], env=env, capture_output=True,
                          text=True, timeout=CLI_TIMEOUT_S,
                          cwd=Path(__file__).resolve().parents[2])
