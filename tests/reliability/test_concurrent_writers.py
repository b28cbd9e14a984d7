"""Twenty writers at once — ten through the window's code (the Roles feed and the chat's
presets, as `Services.build` makes them), ten `rigdeck roles --import` processes — on the
same folders: no file is ever invalid (a reader checks all along), no role is lost, every
role ends as its last write, and two names that make one file name never both win."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.paths import AppPaths
from app.presets.presets import Preset, PresetStore, RequestSettings
from app.roles.role import Role
from app.roles.store import RoleStore
from tests.reliability.user_files_cli import NO_ENGINE, rigdeck
from ui.services import Services

GUI_WRITERS = 10
CLI_WRITERS = 10
ROUNDS = 3
CLI_ROUNDS = 2
"""Each `rigdeck` start costs about a second of CPU: 40 runs keep the test near a minute."""


def _cli_writer(home: Path, sources: Path, number: int) -> list[str]:
    """Import a role and the shared one, then replace both; what went wrong."""
    failures = []
    for version in range(CLI_ROUNDS):
        own = sources / f"cli-{number}-{version}.toml"
        own.write_text(f'name = "CLI {number}"\nsystem_prompt = "cli {number} v{version}"\n',
                       encoding="utf-8")
        shared = sources / f"shared-{number}-{version}.toml"
        shared.write_text(f'name = "Shared"\nsystem_prompt = "cli {number} v{version}"\n',
                          encoding="utf-8")
        for path in (own, shared):
            args = ["roles", "--import", str(path)] + (["--replace"] if version or
                                                       path is shared else [])
            run = rigdeck(home, *args)
            if run.returncode != 0:
                failures.append(f"{args}: {run.returncode} {run.stderr}")
    return failures


def test_twenty_writers_lose_nothing_and_never_leave_a_bad_file(
        qtbot: QtBot, app_paths: AppPaths, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)
    home = app_paths.config.parent
    sources = tmp_path / "sources"
    sources.mkdir()
    services = Services.build(app_paths)
    roles, presets = services.roles, services.chat.presets
    done = threading.Event()
    seen_problems: list[str] = []

    def reader() -> None:  # what the window and `rigdeck roles` read meanwhile
        store, preset_store = RoleStore(app_paths.config / "roles"), PresetStore(
            app_paths.config / "presets")
        while not done.is_set():
            store.all()
            preset_store.all()
            seen_problems.extend(store.problems + preset_store.problems)

    def gui_writer(number: int) -> None:
        for version in range(ROUNDS):
            roles.save(Role(name=f"GUI {number}", system_prompt=f"gui {number} v{version}"))
            roles.save(Role(name="Shared", system_prompt=f"gui {number} v{version}"))
            presets.save(Preset(name=f"Preset {number}",
                                request=RequestSettings(max_tokens=100 + version)))

    try:
        with ThreadPoolExecutor(max_workers=GUI_WRITERS + CLI_WRITERS + 1) as pool:
            watching = pool.submit(reader)
            cli = [pool.submit(_cli_writer, home, sources, n) for n in range(CLI_WRITERS)]
            gui = [pool.submit(gui_writer, n) for n in range(GUI_WRITERS)]
            for future in gui:
                future.result()
            failures = [f for future in cli for f in future.result()]
            done.set()
            watching.result()
    finally:
        done.set()
        services.shutdown()

    assert failures == []
    assert seen_problems == []  # no reader ever met a half-written file
    store = RoleStore(app_paths.config / "roles")
    final = store.all()
    assert store.problems == []
    for number in range(GUI_WRITERS):
        assert final[f"GUI {number}"].system_prompt == f"gui {number} v{ROUNDS - 1}"
    for number in range(CLI_WRITERS):
        assert final[f"CLI {number}"].system_prompt == f"cli {number} v{CLI_ROUNDS - 1}"
    # the last write to the shared role is some writer's last version
    assert re.fullmatch(rf"gui \d+ v{ROUNDS - 1}|cli \d+ v{CLI_ROUNDS - 1}",
                        final["Shared"].system_prompt)
    preset_store = PresetStore(app_paths.config / "presets")
    assert {preset_store.get(f"Preset {n}").request.max_tokens
            for n in range(GUI_WRITERS)} == {100 + ROUNDS - 1}
    assert preset_store.problems == []
    for folder in ("roles", "presets"):
        left = [p.name for p in (app_paths.config / folder).iterdir() if p.suffix != ".toml"]
        assert left == [".lock"]  # no temporary file left behind
    assert len(list((app_paths.config / "roles").glob("*.toml"))) == (
        GUI_WRITERS + CLI_WRITERS + 1)


def test_two_names_of_one_file_name_never_both_win(app_paths: AppPaths,
                                                   tmp_path: Path) -> None:
    home = app_paths.config.parent
    names = ["Race Me", "race me!", "RACE-ME", "race  me"]
    sources = []
    for number, name in enumerate(names):
        source = tmp_path / f"race-{number}.toml"
        source.write_text(f'name = "{name}"\nsystem_prompt = "{number}"\n', encoding="utf-8")
        sources.append(source)
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        runs = list(pool.map(lambda s: rigdeck(home, "roles", "--import", str(s)), sources))
    won = [names[i] for i, run in enumerate(runs) if run.returncode == 0]
    assert len(won) == 1, [r.stderr for r in runs]
    for run in runs:
        if run.returncode:
            assert run.returncode == 2
            assert "nothing was overwritten" in run.stderr
            assert "Traceback" not in run.stderr
    kept = RoleStore(app_paths.config / "roles").all()
    assert won[0] in kept
    assert kept[won[0]].system_prompt == str(names.index(won[0]))
