"""UI tests run real Qt offscreen; the app is built from the same composition root."""

from collections.abc import Iterator

import pytest
from pytestqt.qtbot import QtBot

from app.paths import AppPaths
from ui.services import Services


@pytest.fixture
def services(qtbot: QtBot, app_paths: AppPaths) -> Iterator[Services]:
    """The services of one app run, shut down (no worker left behind) after the test."""
    built = Services.build(app_paths)
    yield built
    built.shutdown()
