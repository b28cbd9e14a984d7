"""User files: reads refuse what is no small regular UTF-8 file, writes are atomic and
private, and the folder lock keeps two writers apart."""

from __future__ import annotations

import os
import re
import socket
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from app.user_files import (
    LOCK_NAME,
    MAX_USER_FILE,
    UserFileError,
    atomic_output,
    folder_lock,
    read_text,
    read_toml,
    write_atomically,
)


def test_a_missing_file_is_none_and_a_good_one_is_read(tmp_path: Path) -> None:
    assert read_text(tmp_path / "absent.toml") is None
    (tmp_path / "ok.toml").write_text('name = "Ok"\n', encoding="utf-8")
    assert read_toml(tmp_path / "ok.toml") == {"name": "Ok"}


@pytest.mark.parametrize(("make", "why"), [
    (lambda p: p.symlink_to("/dev/zero"), "is a character device, not a file"),
    (os.mkfifo, "is a FIFO (named pipe), not a file"),
    (lambda p: p.mkdir(), "is a folder, not a file"),
    (lambda p: p.write_bytes(b"x" * (MAX_USER_FILE + 1)), "more than the 1,048,576"),
    (lambda p: p.write_bytes(b'name = "Caf\xe9"\n'), "is not UTF-8 text (byte 0xe9 at offset 11)"),
    (lambda p: p.symlink_to(p.parent / "gone"), "which does not exist"),
], ids=["dev-zero", "fifo", "folder", "huge", "latin-1", "dangling-symlink"])
def test_what_is_no_small_utf8_file_is_refused_without_reading_it(
        tmp_path: Path, make: Callable[[Path], object], why: str) -> None:
    path = tmp_path / "role.toml"
    make(path)
    with pytest.raises(UserFileError, match=re.escape(why)) as caught:
        read_text(path)
    assert caught.value.path == path
    assert str(caught.value).startswith(str(path))


def test_a_socket_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
        with pytest.raises(UserFileError, match="is a socket"):
            read_text(path)
    finally:
        server.close()


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("name = [", encoding="utf-8")
    with pytest.raises(UserFileError, match=r"bad\.toml: is not valid TOML"):
        read_toml(tmp_path / "bad.toml")


def test_writes_are_private_and_leave_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "made" / "roles" / "x.toml"
    write_atomically(target, b"one")
    write_atomically(target, b"two")
    assert target.read_bytes() == b"two"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    assert [p.name for p in target.parent.iterdir()] == ["x.toml"]


class WriterDiedError(Exception):
    """A writer stopping half way (a crash, a full disk)."""


def _write_half(target: Path) -> None:
    with atomic_output(target) as handle:
        handle.write(b"half")
        raise WriterDiedError


def test_a_failed_write_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "x.toml"
    write_atomically(target, b"old")
    with pytest.raises(WriterDiedError):
        _write_half(target)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.toml"]


def test_the_folder_lock_keeps_read_modify_writes_apart(tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    write_atomically(counter, b"0")

    def add_one() -> None:
        for _ in range(25):
            with folder_lock(tmp_path), folder_lock(tmp_path):  # a holder may take it again
                value = int(counter.read_bytes())
                write_atomically(counter, str(value + 1).encode())

    threads = [threading.Thread(target=add_one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert int(counter.read_bytes()) == 8 * 25
    assert (tmp_path / LOCK_NAME).exists()
