"""`rigdeck roles`: the list (text and JSON), import and export, and the user's mistakes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli.main import main
from tests.unit.app.library.builders import write_gguf_lora


def test_roles_json_lists_shipped_roles(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["roles", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["roles"]
    assert [r["name"] for r in rows][:4] == ["Plain", "Sports coach", "Physics tutor", "Coder"]
    assert rows[1]["system_prompt"].startswith("You are an encouraging sports coach")
    assert "available" not in rows[0]  # no backend asked


def test_import_export_and_text_listing(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    adapter = write_gguf_lora(tmp_path / "chef.gguf")
    source = tmp_path / "chef.toml"
    source.write_text(f'name = "Chef"\nsystem_prompt = "Cook."\n[[adapters]]\n'
                      f'path = "{adapter}"\nscale = 0.5\n', encoding="utf-8")
    assert main(["roles", "--import", str(source)]) == 0
    assert main(["roles"]) == 0
    out = capsys.readouterr().out
    assert f"Chef                     adapters: {adapter} (scale 0.5)" in out
    assert main(["roles", "--import", str(source)]) == 2
    assert "already exists" in capsys.readouterr().err
    target = tmp_path / "out.toml"
    assert main(["roles", "--export", "Chef", "-o", str(target)]) == 0
    assert 'system_prompt = "Cook."' in target.read_text()


@pytest.mark.parametrize(("argv", "message"), [
    (["roles", "--export", "Nobody", "-o", "x.toml"], "no role named 'Nobody'"),
    (["roles", "--export", "Plain"], "--export needs -o FILE"),
    (["roles", "--import", "/nonexistent/role.toml"], "cannot read role file"),
    (["roles", "--url", "http://127.0.0.1:9"], "nothing answers at http://127.0.0.1:9"),
    (["chat", "--url", "http://127.0.0.1:9", "--role", "Nobody", "hi"], "no role named"),
])
def test_mistakes_are_messages_and_exit_2(argv: list[str], message: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_import_refuses_a_name_that_makes_another_roles_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mine, theirs = tmp_path / "mine.toml", tmp_path / "theirs.toml"
    mine.write_text('name = "My Role"\nsystem_prompt = "Mine."\n', encoding="utf-8")
    theirs.write_text('name = "my role!"\nsystem_prompt = "Theirs."\n', encoding="utf-8")
    assert main(["roles", "--import", str(mine)]) == 0
    capsys.readouterr()
    assert main(["roles", "--import", str(theirs), "--replace"]) == 2
    err = capsys.readouterr().err
    assert "the file of your role 'My Role'" in err
    assert "nothing was overwritten: give the role another name" in err
    assert main(["roles", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["roles"]}
    assert rows["My Role"]["system_prompt"] == "Mine."
    assert "my role!" not in rows
