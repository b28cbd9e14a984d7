"""The user's files (roles, presets, saved endpoints, hosts, settings, the thinking-switch
memory), read and written one way, so that no file a user keeps is ever lost or half-read.

- A write is atomic: a temp file in the same folder, fsync, rename (then the folder is
  synced), so a crash or a full disk leaves the old file whole. Files are 0600; a folder
  Rigdeck creates for them is 0700.
- A read-modify-write (add an endpoint, import a role) holds the folder's advisory lock, a
  `.lock` file in it (`fcntl.flock` on POSIX, `msvcrt.locking` on Windows), shared by the
  window and every `rigdeck` command, so neither loses the other's change. Plain reads
  need no lock: a rename is never seen half done.
- A read takes a regular file only (a symlink to /dev/zero, a FIFO or a socket is refused
  without being read or blocked on), up to a size limit, as UTF-8; anything else is a
  `UserFileError` naming the file, which each store lists in its `problems` while the
  other files load.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
import threading
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, TypeVar

from app.errors import UserError

T = TypeVar("T")

MAX_USER_FILE = 1 << 20
"""The largest role, preset, endpoints, hosts or settings file read (1 MiB): the real ones
are a few hundred bytes."""
LOCK_NAME = ".lock"
FILE_MODE = 0o600
FOLDER_MODE = 0o700


class UserFileError(UserError):
    """A user file that cannot be read: what it is (`path`) and why, in words."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(f"{path}: {why}")
        self.path = path
        self.why = why


def _kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
             (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"))
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def read_bytes(path: Path, *, limit: int = MAX_USER_FILE) -> bytes | None:
    """The bytes of the regular file at `path` (symlinks followed), or None if there is none.

    Raises:
        UserFileError: not a regular file, larger than `limit`, or unreadable.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            raise UserFileError(path, f"is a symlink to {path.readlink()}, which does "
                                        "not exist") from None
        return None
    except OSError as exc:
        raise UserFileError(path, f"cannot be read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise UserFileError(path, f"is {_kind(info.st_mode)}, not a file; not read")
    if info.st_size > limit:
        raise UserFileError(path, f"is {info.st_size:,} bytes, more than the {limit:,} "
                                    "such a file may have; not read")
    try:
        # O_NONBLOCK: should the file be swapped for a FIFO after the check, open does not
        # wait for a writer; fstat then refuses it.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise UserFileError(path, f"cannot be read: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise UserFileError(path, f"is {_kind(info.st_mode)}, not a file; not read")
        try:
            data = handle.read(limit + 1)
        except OSError as exc:
            raise UserFileError(path, f"cannot be read: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise UserFileError(path, f"is more than the {limit:,} bytes such a file may "
                                    "have; not read")
    return data


def read_text(path: Path, *, limit: int = MAX_USER_FILE) -> str | None:
    """The UTF-8 text of the file at `path`, or None if there is none.

    Raises:
        UserFileError: as `read_bytes`, or bytes that are not UTF-8.
    """
    data = read_bytes(path, limit=limit)
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserFileError(path, f"is not UTF-8 text (byte {exc.object[exc.start]:#04x} "
                                    f"at offset {exc.start})") from None


def read_toml(path: Path, *, limit: int = MAX_USER_FILE) -> dict[str, Any] | None:
    """The TOML document at `path`, or None if there is no file.

    Raises:
        UserFileError: as `read_text`, or text that is not TOML.
    """
    text = read_text(path, limit=limit)
    if text is None:
        return None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserFileError(path, f"is not valid TOML: {exc}") from None


def make_folder(folder: Path) -> None:
    """Create `folder` (0700) and its parents if missing; an existing one is left as is."""
    folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)


def _sync_folder(folder: Path) -> None:
    if sys.platform == "win32":
        return  # a rename on NTFS is journaled; a folder cannot be opened to fsync
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_output(path: Path, *, mode: int = FILE_MODE,
                  create_folder: bool = True) -> Iterator[IO[bytes]]:
    """A binary handle whose bytes replace `path` only when the block ends without error.
    `create_folder` False: a file the user named outside Rigdeck's folders, whose folder
    must be there already.

    Raises:
        OSError: the folder cannot be made or the file written (a full disk); `path` is
            then exactly as it was.
    """
    if create_folder:
        make_folder(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).chmod(mode)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def write_atomically(path: Path, data: bytes, *, mode: int = FILE_MODE,
                     create_folder: bool = True) -> None:
    """Write `data` to `path` so that a reader sees the old or the new file, never half.

    Raises:
        OSError: as `atomic_output`; `path` is then exactly as it was.
    """
    with atomic_output(path, mode=mode, create_folder=create_folder) as handle:
        handle.write(data)


_held = threading.local()


def _lock_fd(fd: int) -> None:
    if sys.platform == "win32":
        import msvcrt

        while True:  # LK_LOCK gives up after 10 tries a second apart: keep waiting
            try:
                msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
                return
            except OSError:
                continue
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX)


def _unlock_fd(fd: int) -> None:
    if sys.platform == "win32":
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_UN)


@contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold `folder`'s lock for a read-modify-write; other threads and processes (the
    window, `rigdeck` commands) wait. A thread may take it again while holding it.

    Raises:
        OSError: the folder or its lock file cannot be made.
    """
    make_folder(folder)
    key = os.path.realpath(folder)
    counts: dict[str, int] = _held.__dict__.setdefault("counts", {})
    if counts.get(key):
        counts[key] += 1
        try:
            yield
        finally:
            counts[key] -= 1
        return
    # flock locks an open file description: each taker opens its own, so two threads of
    # one process exclude each other as two processes do.
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        _lock_fd(fd)
        counts[key] = 1
        try:
            yield
        finally:
            del counts[key]
            _unlock_fd(fd)
    finally:
        os.close(fd)


def saving_failed(what: str, path: Path, exc: OSError) -> UserError:
    """The message for a write that failed: the old file is untouched (atomic writes)."""
    return UserError(f"cannot save {what} to {path}: {exc.strerror or exc}; the file "
                     "there is unchanged")


def read_folder(folder: Path, parse: Callable[[str, str], T], what: str,
                errors: tuple[type[Exception], ...]) -> tuple[dict[Path, T], dict[Path, str]]:
    """Every `*.toml` of `folder` parsed by `parse(text, source)`: those read (path → value)
    and those not (path → why), so one bad file is a problem of its own, never a crash.
    `errors`: what `parse` raises for a file that is not a `what`."""
    found: dict[Path, T] = {}
    bad: dict[Path, str] = {}
    if folder.is_dir():
        for path in sorted(folder.glob("*.toml")):
            try:
                text = read_text(path)
                if text is not None:
                    found[path] = parse(text, str(path))
            except UserFileError as exc:
                bad[path] = f"{what} file {exc}"
            except errors as exc:
                bad[path] = str(exc)
    return found, bad
