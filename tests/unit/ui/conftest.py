"""UI tests run real Qt offscreen; the app is built from the same composition root."""

from collections.abc import Iterator

import keyring
import pytest
from keyring.backends import fail
from pytestqt.qtbot import QtBot

from app.paths import AppPaths
from ui.services import Services


@pytest.fixture
def services(qtbot: QtBot, app_paths: AppPaths) -> Iterator[Services]:
    """The services of one app run, shut down (no worker left behind) after the test."""
    built = Services.build(app_paths)
    yield built
    built.shutdown()


@pytest.fixture
def no_keyring() -> Iterator[None]:
    """A machine without a working keyring (no Secret Service, KWallet, ...)."""
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(previous)
