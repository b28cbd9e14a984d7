"""Hostile user files — not UTF-8, wrongly typed, a symlink to /dev/zero, a FIFO, a huge
file — are each said as a problem for that one file, while the others load: in the window
(built from the composition root), `rigdeck roles`, `rigdeck problems`, `chat --role` and
`up --with-roles`; nothing hangs, nothing crashes, no traceback."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.paths import AppPaths
from app.presets.presets import PresetStore
from app.roles.store import RoleStore
from tests.reliability.user_files_cli import NO_ENGINE, rigdeck
from tests.unit.app.library.builders import write_gguf
from ui.notifier import Level
from ui.services import Services

HUGE = 2 << 20


def plant(paths: AppPaths) -> dict[str, str]:
    """Write the hostile files (and good ones beside them); path → why it is refused."""
    roles, presets = paths.config / "roles", paths.config / "presets"
    for folder in (roles, presets, paths.data):
        folder.mkdir(parents=True, exist_ok=True)
    (roles / "good.toml").write_text('name = "Good"\nsystem_prompt = "Be good."\n',
                                     encoding="utf-8")
    (presets / "mine.toml").write_text('name = "Mine"\n[request]\nmax_tokens = 64\n',
                                       encoding="utf-8")
    why: dict[str, str] = {}

    def hostile(path: Path, reason: str) -> Path:
        why[str(path)] = reason
        return path

    hostile(roles / "latin1.toml", "is not UTF-8 text").write_bytes(b'name = "Caf\xe9"\n')
    hostile(roles / "listy.toml", "system_prompt must be text, not a list").write_text(
        'name = "Listy"\nsystem_prompt = ["x"]\n', encoding="utf-8")
    hostile(roles / "zero.toml", "is a character device, not a file").symlink_to("/dev/zero")
    os.mkfifo(hostile(roles / "fifo.toml", "is a FIFO (named pipe), not a file"))
    hostile(roles / "huge.toml", "more than the 1,048,576").write_text(
        'name = "Huge"\nsystem_prompt = "' + "x" * HUGE + '"\n', encoding="utf-8")
    hostile(presets / "latin1.toml", "is not UTF-8 text").write_bytes(b'name = "\xff"\n')
    hostile(presets / "listy.toml", "system_prompt must be text").write_text(
        'name = "Listy"\n[request]\nsystem_prompt = ["x"]\n', encoding="utf-8")
    os.mkfifo(hostile(presets / "fifo.toml", "is a FIFO (named pipe), not a file"))
    hostile(paths.config / "endpoints.toml", "is not UTF-8 text").write_bytes(
        b'[[endpoint]]\nname = "\xfe"\n')
    hostile(paths.config / "hosts.toml", "entry 1: url must be text").write_text(
        '[[host]]\nname = "gpu"\nurl = 5\n', encoding="utf-8")
    hostile(paths.data / "thinking_switch.json",
            "is a character device, not a file").symlink_to("/dev/zero")
    return why


def said_once_each(texts: list[str], why: dict[str, str]) -> None:
    """Every hostile file is named exactly once, with why."""
    for path, reason in why.items():
        naming = [t for t in texts if f"{path}:" in t or f"{path} cannot" in t]
        assert len(naming) == 1, (path, texts)
        assert reason in naming[0]


def test_each_store_lists_its_bad_files_and_loads_the_rest(app_paths: AppPaths) -> None:
    why = plant(app_paths)
    roles = RoleStore(app_paths.config / "roles")
    assert set(roles.all()) >= {"Plain", "Good"}
    assert "Listy" not in roles.all()
    presets = PresetStore(app_paths.config / "presets")
    assert presets.get("Mine").request.max_tokens == 64
    said_once_each(roles.problems + presets.problems,
                   {p: w for p, w in why.items() if "/roles/" in p or "/presets/" in p})


def test_the_window_starts_and_says_each_bad_file_once(
        qtbot: QtBot, app_paths: AppPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)
    why = plant(app_paths)
    services = Services.build(app_paths)
    try:
        warnings = [n.text for n in services.notifier.history if n.level is Level.WARNING]
        said_once_each(warnings, why)
        assert "Good" in services.roles.roles()
        assert "Mine" in services.chat.presets.all()
        assert [t.name for t in services.chat.targets() if t.kind == "endpoint"] == []
    finally:
        services.shutdown()


def test_cli_lists_roles_and_every_problem(app_paths: AppPaths) -> None:
    home = app_paths.config.parent
    why = plant(app_paths)
    listed = rigdeck(home, "roles")
    assert listed.returncode == 0, listed.stderr
    assert "Good " in listed.stdout
    said_once_each([line for line in listed.stdout.splitlines() if line.startswith("problem:")],
                   {p: w for p, w in why.items() if "/roles/" in p})
    as_json = rigdeck(home, "roles", "--json")
    assert len(json.loads(as_json.stdout)["problems"]) == 5
    problems = rigdeck(home, "problems")
    assert problems.returncode == 1
    said_once_each(problems.stdout.splitlines(), why)
    for run in (listed, as_json, problems):
        assert "Traceback" not in run.stdout + run.stderr


def test_chat_with_a_bad_role_says_why_and_a_good_one_works(app_paths: AppPaths) -> None:
    home = app_paths.config.parent
    plant(app_paths)
    bad = rigdeck(home, "chat", "--url", "http://127.0.0.1:9", "--role", "Listy", "hi")
    assert bad.returncode == 2
    assert "no role named 'Listy'" in bad.stderr
    assert "listy.toml cannot be read: system_prompt must be text, not a list" in bad.stderr
    good = rigdeck(home, "chat", "--url", "http://127.0.0.1:9", "--role", "Good", "hi")
    assert good.returncode == 2  # the role was found: the server is what is missing
    assert "nothing answers at http://127.0.0.1:9" in good.stderr
    for run in (bad, good):
        assert "Traceback" not in run.stdout + run.stderr


def test_up_with_roles_leaves_bad_files_out_and_says_why(app_paths: AppPaths,
                                                         tmp_path: Path) -> None:
    home = app_paths.config.parent
    why = plant(app_paths)
    model = write_gguf(tmp_path / "tiny.gguf")
    run = rigdeck(home, "up", "--model", str(model), "--with-roles", "--no-wait")
    assert run.returncode == 2
    left_out = [line for line in run.stdout.splitlines()
                if line.startswith("left out, cannot be read:")]
    said_once_each(left_out, {p: w for p, w in why.items() if "/roles/" in p})
    assert "roles preloaded: none with adapters" in run.stdout
    assert f"cannot reach the Docker engine at {NO_ENGINE}" in run.stderr  # where Docker starts
    assert "Traceback" not in run.stdout + run.stderr
