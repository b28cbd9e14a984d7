"""One version number: app.__version__ is what pyproject, the metadata and the CHANGELOG say."""

import importlib.metadata
import tomllib
from pathlib import Path

from app import __version__

ROOT = Path(__file__).resolve().parents[3]


def test_pyproject_takes_the_version_from_the_app() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "app.__version__"}


def test_the_installed_metadata_has_the_same_version() -> None:
    assert importlib.metadata.version("rigdeck") == __version__


def test_the_changelog_starts_with_this_version() -> None:
    lines = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8").splitlines()
    first_release = next(line for line in lines if line.startswith("## "))
    assert first_release.split()[1] == __version__
