"""endpoints.toml: an entry that is no endpoint is said and kept; a file that cannot be
read is said and never replaced by a save."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.chat.endpoints import EndpointStore
from app.errors import UserError
from app.secrets import SecretStore


def test_a_bad_entry_is_said_and_kept_when_others_are_saved(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.toml"
    path.write_text('[[endpoint]]\nname = 1\nurl = "http://x"\n'
                    '[[endpoint]]\nname = "ok"\nurl = "http://127.0.0.1:9"\n', encoding="utf-8")
    store = EndpointStore(path, SecretStore())
    assert [e.name for e in store.all()] == ["ok"]
    assert store.problems == [f"saved endpoints {path}: entry 1 is no endpoint (a name and a "
                              "url, as text); left in the file as it is"]
    store.save("new", "http://127.0.0.1:8080")
    assert [e.name for e in store.all()] == ["ok", "new"]
    assert 'name = 1' in path.read_text(encoding="utf-8")


def test_an_unreadable_file_is_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.toml"
    path.write_bytes(b'[[endpoint]]\nname = "\xfe"\n')
    store = EndpointStore(path, SecretStore())
    assert store.all() == []
    assert "is not UTF-8 text" in store.problems[0]
    with pytest.raises(UserError, match="fix or remove the file, then save again"):
        store.save("new", "http://127.0.0.1:8080")
    assert path.read_bytes() == b'[[endpoint]]\nname = "\xfe"\n'
