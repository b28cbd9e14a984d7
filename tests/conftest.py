"""Fixtures for every test: isolation from the user's files, and the real parts.

Each test gets its own RIGDECK_HOME under tmp_path, so settings, data and logs never touch
the real folders. The real parts (Docker engine, llama-server image, models) come from
`tests.realparts.fixtures`.
"""

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail

from app.paths import HOME_ENV, AppPaths
from tests.realparts.process_keyring import ProcessKeyring

pytest_plugins = ["tests.realparts.fixtures"]

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # real Qt, no screen needed


@pytest.fixture(autouse=True)
def app_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppPaths:
    """Point Rigdeck's folders at a fresh temporary home for this test."""
    home = tmp_path / "rigdeck-home"
    monkeypatch.setenv(HOME_ENV, str(home))
    # the login item (XDG autostart entry) is written under XDG_CONFIG_HOME
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    return AppPaths.under(home)


@pytest.fixture(autouse=True)
def _no_thread_left_behind() -> Iterator[None]:
    """Fail a test that leaves a thread running (a worker, a sampler, a stream)."""
    before = set(threading.enumerate())
    yield
    leftover = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    for thread in leftover:
        thread.join(timeout=5)
    still = [t.name for t in leftover if t.is_alive()]
    if still:
        pytest.fail(f"test left threads running: {still}")


@pytest.fixture
def working_keyring() -> Iterator[ProcessKeyring]:
    """A keyring that works (in this process), as on a desktop with a Secret Service."""
    previous = keyring.get_keyring()
    backend = ProcessKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def no_keyring() -> Iterator[None]:
    """A machine without a working keyring (no Secret Service, KWallet, ...)."""
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(previous)
