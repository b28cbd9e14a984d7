"""A missing real part skips a test on a developer machine and fails it in CI."""

from __future__ import annotations

import pytest

from tests.realparts import PartMissing
from tests.realparts.fixtures import require_part


def _missing() -> str:
    raise PartMissing("dockerd is not installed")


def test_a_missing_part_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="dockerd is not installed"):
        require_part(_missing)


def test_a_missing_part_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="dockerd is not installed"):
        require_part(_missing)


def test_a_present_part_is_returned() -> None:
    assert require_part(lambda: 42) == 42
