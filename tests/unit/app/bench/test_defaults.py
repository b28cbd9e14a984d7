"""The settings' perplexity text and repetitions are where a bench run starts: the CLI's
defaults (a flag still wins), and a text that is not a file is refused when it is set."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.bench.service import bench_defaults
from app.cli.commands.bench import _settings
from app.cli.main import build_parser
from app.errors import UserError
from app.paths import AppPaths
from app.runtime.setup import checked_setting
from app.settings import SettingsStore


def _store(app_paths: AppPaths) -> SettingsStore:
    return SettingsStore(app_paths.settings_file)


def test_the_cli_starts_from_the_settings_and_a_flag_wins(app_paths: AppPaths,
                                                           tmp_path: Path) -> None:
    text = tmp_path / "novel.txt"
    text.write_text("It was a dark and stormy night.", encoding="utf-8")
    store = _store(app_paths)
    store.set("bench_repetitions", 5)
    store.set("bench_text", str(text))
    defaults = bench_defaults(store)

    plain = _settings(build_parser().parse_args(["bench", "m.gguf"]), defaults)
    assert (plain.repetitions, plain.text) == (5, str(text))
    given = _settings(build_parser().parse_args(["bench", "m.gguf", "--reps", "2"]), defaults)
    assert given.repetitions == 2


def test_unset_settings_give_the_shipped_text_and_three_repetitions(app_paths: AppPaths) -> None:
    defaults = bench_defaults(_store(app_paths))
    assert (defaults.repetitions, defaults.text) == (3, "")


def test_a_text_that_is_no_file_is_refused() -> None:
    with pytest.raises(UserError, match=r"there is no file at /no/such\.txt"):
        checked_setting("bench_text", ["/no/such.txt"])  # the CLI's and the page's check
