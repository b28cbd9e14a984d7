"""Every message that asks the user to change a setting names a control the Settings page
really shows: messages say where through `setting_place` / `settings_control` only (no
"… in Settings" typed by hand), and each place they can name is found on the page, in the
group of that title, as a control or row label of those words."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from PySide6.QtWidgets import QAbstractButton, QGroupBox, QLabel, QWidget
from pytestqt.qtbot import QtBot

from app.settings import Settings, shown_settings
from ui.pages.settings_page import SettingsPage
from ui.services import Services

REPO = Path(__file__).resolve().parents[3]
SOURCES = sorted([*REPO.glob("app/**/*.py"), *REPO.glob("ui/**/*.py")])
NAMING_SETTINGS = re.compile(r"\bSettings\b")
SETTINGS_SET = re.compile(r"rigdeck settings set (\w+)")


def _docstrings(tree: ast.AST) -> set[int]:
    """Strings standing as statements: docstrings of modules, classes, functions and (after
    an assignment) of names; they explain the code and are never shown."""
    return {id(node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)}


def _texts(path: Path) -> list[tuple[int, str]]:
    """The string constants of a module that are not docstrings, with their lines."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = _docstrings(tree)
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docs]


def _control_calls() -> set[tuple[str, str]]:
    """The (group, label) of every settings_control("…", "…") call in the code."""
    found = set()
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "settings_control":
                args = [a.value for a in node.args if isinstance(a, ast.Constant)]
                if len(args) == 2:  # the definition's own use passes names, not words
                    found.add((str(args[0]), str(args[1])))
    return found


def test_no_message_names_the_settings_by_hand() -> None:
    typed = [f"{path.relative_to(REPO)}:{line}: {text!r}"
             for path in SOURCES if path.name != "settings.py" or path.parent.name != "app"
             for line, text in _texts(path)
             if NAMING_SETTINGS.search(text) and text != "Settings"]
    assert typed == [], "use setting_place() or settings_control():\n" + "\n".join(typed)


def test_every_setting_a_command_line_hint_names_exists() -> None:
    named = {key for path in SOURCES for _line, text in _texts(path)
             for key in SETTINGS_SET.findall(text)}
    assert named  # the hints exist (local_host_network at least)
    assert named <= set(shown_settings()), named - set(shown_settings())


def _words_in(group: QGroupBox) -> set[str]:
    words = {w.text() for w in group.findChildren(QLabel)}
    words |= {w.text() for w in group.findChildren(QAbstractButton)}
    return words


@pytest.fixture
def page(qtbot: QtBot, services: Services) -> SettingsPage:
    widget = SettingsPage(services)
    qtbot.add_widget(widget)
    widget.show()
    return widget


def test_every_place_a_message_can_name_is_on_the_settings_page(page: SettingsPage) -> None:
    groups: dict[str, QGroupBox] = {g.title(): g for g in page.findChildren(QGroupBox)}
    places = {*shown_settings().values(), *_control_calls()}
    assert ("Hosts", "Add host…") in places
    assert ("Engines", "llama.cpp image") in places
    missing = [f"{group} → {label}" for group, label in sorted(places)
               if group not in groups
               or not any(w.startswith(label) for w in _words_in(groups[group]))]
    assert missing == []


def test_each_shown_setting_has_its_description_as_a_tooltip(page: SettingsPage) -> None:
    tips = {w.toolTip() for w in page.findChildren(QWidget)}
    undescribed = [name for name in shown_settings()
                   if not any(Settings.description(name) in tip for tip in tips)]
    assert undescribed == []
