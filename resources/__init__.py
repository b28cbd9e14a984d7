"""Data files shipped with Rigdeck: icons, styles, default presets and roles (no code)."""

from importlib.resources import files
from pathlib import Path


def resource_path(*parts: str) -> Path:
    """Path of a file under resources/, e.g. resource_path("icons", "rigdeck.svg")."""
    return Path(str(files(__name__).joinpath(*parts)))
