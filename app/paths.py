"""Where Rigdeck keeps its files: the platform's config, data, log and cache folders.

RIGDECK_HOME (or `--temp-basedir`) puts all four under one folder, so tests and
screenshots never touch the user's real files. The data and log folders hold
conversations and backends' output: they are private to the user (`private_folder`,
`private_file`: 0700 and 0600, an older install's looser modes tightened on open).
"""

import contextlib
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import platformdirs

log = logging.getLogger(__name__)

APP_NAME = "rigdeck"
HOME_ENV = "RIGDECK_HOME"
PRIVATE_FOLDER_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


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


def private_folder(path: Path) -> Path:
    """`path` as a folder only its owner can enter: created 0700 (missing parents get the
    usual mode); an existing one loses its group and other access."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_FOLDER_MODE)
    tighten(path)
    return path


def private_file(path: Path) -> Path:
    """`path` as a file only its owner can read: created empty with 0600 if missing; an
    existing one loses its group and other access (its content untouched)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))
    tighten(path)
    return path


def tighten(path: Path) -> None:
    """Take group and other access off an existing file or folder (missing: nothing)."""
    if os.name != "posix":  # Windows keeps a user's profile private by its ACLs
        return
    try:
        current = stat.S_IMODE(path.stat().st_mode)
        if current & 0o077:
            path.chmod(current & ~0o077)
    except FileNotFoundError:
        return
    except OSError as exc:  # not ours (a shared folder): say so, keep working
        log.warning("cannot make %s private: %s", path, exc.strerror or exc)
