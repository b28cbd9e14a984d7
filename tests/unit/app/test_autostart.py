"""The login item: the XDG autostart entry is written valid, points at this Rigdeck, and goes."""

import subprocess
import sys
from pathlib import Path

import pytest

from app.autostart import XdgAutostart, login_item_for_this_system, tray_command
from app.errors import UserError


def _exec_line(entry: Path) -> str:
    lines = entry.read_text(encoding="utf-8").splitlines()
    return next(line for line in lines if line.startswith("Exec="))[len("Exec="):]


def _unquote_exec(value: str) -> list[str]:
    """Split an Exec value as the Desktop Entry spec reads it: first the string escapes
    (a doubled backslash), then %% for %, then arguments, double-quoted ones with
    backslash escapes for " ` $ and backslash."""
    text = value.replace("\\\\", "\\").replace("%%", "%")
    arguments: list[str] = []
    current: list[str] | None = None
    quoted = False
    position = 0
    while position < len(text):
        char, position = text[position], position + 1
        if quoted and char == "\\":
            char, position = text[position], position + 1
            assert char in '"`$\\', f"{char!r} may not be escaped"
        elif char == '"':
            quoted = not quoted
            current = current or []
            continue
        elif char == " " and not quoted:
            if current is not None:
                arguments.append("".join(current))
            current = None
            continue
        current = current or []
        current.append(char)
    if current is not None:
        arguments.append("".join(current))
    return arguments


def test_the_tray_command_starts_this_rigdeck_in_the_tray() -> None:
    """From a Python environment: its Python runs `-m app gui --tray` (tests/e2e runs that
    command and checks that it stays in the tray)."""
    command = tray_command()
    # this environment's Python (pythonw.exe on Windows: no console window at login)
    assert Path(command[0]).parent == Path(sys.executable).parent
    assert command[1:] == ["-m", "app", "gui", "--tray"]


def test_a_bundle_registers_its_own_executable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    executable = tmp_path / "opt" / "rigdeck" / "rigdeck"
    executable.parent.mkdir(parents=True)
    executable.touch()
    monkeypatch.setattr(sys, "frozen", True, raising=False)  # as PyInstaller's bootloader sets
    monkeypatch.setattr(sys, "executable", str(executable))
    assert tray_command() == [str(executable), "gui", "--tray"]
    windowless = executable.with_name("rigdeck-gui.exe")  # the Windows bundle has one
    windowless.touch()
    assert tray_command() == [str(windowless), "--tray"]


@pytest.mark.skipif(sys.platform == "win32", reason="Windows has the Run key, tested there")
def test_the_entry_goes_under_xdg_config_home(tmp_path: Path) -> None:
    item = login_item_for_this_system()
    assert isinstance(item, XdgAutostart)
    assert item.path == tmp_path / "xdg-config" / "autostart" / "rigdeck.desktop"


def test_enable_writes_a_valid_entry_and_disable_removes_it(
    tmp_path: Path, packaging_tools: None
) -> None:
    item = XdgAutostart(tmp_path / "autostart")
    assert not item.is_enabled()
    command = ["/opt/my apps/rigdeck", "gui", "--tray", 'say "hi" $HOME 100%']
    item.enable(command)

    assert item.is_enabled()
    done = subprocess.run(["desktop-file-validate", str(item.path)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _unquote_exec(_exec_line(item.path)) == command

    item.disable()
    assert not item.is_enabled()
    assert not item.path.exists()
    item.disable()  # already gone: nothing to do


def test_a_folder_that_cannot_be_written_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "autostart"
    blocker.write_text("a file where the folder should be", encoding="utf-8")
    item = XdgAutostart(blocker)
    with pytest.raises(UserError, match="Cannot write the login entry"):
        item.enable(tray_command())


if sys.platform == "win32":  # the registry exists only there (the Windows CI job runs this)

    def test_the_run_value_is_written_and_removed() -> None:
        import winreg

        from app.autostart import RUN_KEY, WindowsRunKey

        item = WindowsRunKey(value_name="RigdeckTest")  # never the user's own login item
        command = [r"C:\Program Files\Rigdeck\rigdeck-gui.exe", "--tray"]
        item.enable(command)
        try:
            assert item.is_enabled()
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY) as key:
                value, _ = winreg.QueryValueEx(key, "RigdeckTest")
            assert value == subprocess.list2cmdline(command)
        finally:
            item.disable()
        assert not item.is_enabled()
