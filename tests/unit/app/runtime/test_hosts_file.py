"""hosts.toml: wrongly typed entries are said and kept; an unreadable file is not replaced."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.errors import UserError
from app.runtime.hosts import Host, HostsStore


def test_wrong_types_are_said_per_entry_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "hosts.toml"
    path.write_text('[[host]]\nname = "gpu"\nurl = 5\n'
                    '[[host]]\nname = "box"\nurl = "ssh://box"\nhost_network = "yes"\n'
                    '[[host]]\nname = "ok"\nurl = "ssh://ok"\n', encoding="utf-8")
    store = HostsStore(path)
    assert [h.name for h in store.load()] == ["ok"]
    assert [p.split(": ", 1)[1] for p in store.problems] == [
        "entry 1: url must be text; left in the file as it is",
        "entry 2: host_network must be true or false; left in the file as it is"]
    store.add(Host("new", "ssh://new"))
    assert [h.name for h in store.load()] == ["ok", "new"]
    assert len(store.problems) == 2  # still there, untouched


@pytest.mark.parametrize("content", [b"[[host]\n", b'[[host]]\nname = "\xff"\n', b"host = 3\n"])
def test_an_unreadable_file_is_not_replaced(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "hosts.toml"
    path.write_bytes(content)
    store = HostsStore(path)
    assert store.load() == []
    assert store.problems
    with pytest.raises(UserError, match="fix or remove the file"):
        store.add(Host("new", "ssh://new"))
    assert path.read_bytes() == content
