"""Fixtures for every test: isolation from the user's files, and the real parts.

Each test gets its own RIGDECK_HOME under tmp_path, so settings, data and logs never touch
the real folders. The real parts (Docker engine, llama-server image, models) come from
`tests.realparts.fixtures`.
"""

import os
from pathlib import Path

import pytest

from app.paths import HOME_ENV, AppPaths

pytest_plugins = ["tests.realparts.fixtures"]

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # real Qt, no screen needed


@pytest.fixture(autouse=True)
def app_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppPaths:
    """Point Rigdeck's folders at a fresh temporary home for this test."""
    home = tmp_path / "rigdeck-home"
    monkeypatch.setenv(HOME_ENV, str(home))
    return AppPaths.under(home)
