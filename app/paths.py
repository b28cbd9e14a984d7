"""Where Rigdeck keeps its files: the platform's config, data, log and cache folders.

RIGDECK_HOME (or `--temp-basedir`) puts all four under one folder, so tests and
screenshots never touch the user's real files.
"""

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "rigdeck"
HOME_ENV = "RIGDECK_HOME"


@dataclass(frozen=True)
class AppPaths:
    """The four folders, created on first use by whoever writes there."""

    config: Path
    data: Path
    logs: Path
    cache: Path

    @property
    def settings_file(self) -> Path:
        return self.config / "settings.toml"

    @property
    def log_file(self) -> Path:
        return self.logs / "rigdeck.log"

    @classmethod
    def under(cls, base: Path) -> "AppPaths":
        """All folders below one base folder (tests, `--temp-basedir`)."""
        return cls(base / "config", base / "data", base / "logs", base / "cache")

    @classmethod
    def default(cls) -> "AppPaths":
        """RIGDECK_HOME if set, else the platform's folders for this user."""
        home = os.environ.get(HOME_ENV)
        if home:
            return cls.under(Path(home))
        return cls(
            Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
            Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
            Path(platformdirs.user_log_dir(APP_NAME, appauthor=False)),
            Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)),
        )
