"""Start Rigdeck in the tray at login: an XDG autostart entry (Linux) or a Run value (Windows).

The Settings page switches it; this module only writes and removes the login item, so
it can be tested without Qt. The command it registers is the one this Rigdeck was
started with: the bundle's executable when installed from a package, else this Python
with `-m app`, followed by `gui --tray`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Protocol

from app.errors import UserError

ENTRY_NAME = "rigdeck.desktop"
RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
RUN_VALUE = "Rigdeck"  # packaging/windows/rigdeck.nsi removes this value on uninstall


class LoginItem(Protocol):
    """Where the login start is registered; `where` tells the user (shown in Settings)."""

    @property
    def where(self) -> str: ...

    def is_enabled(self) -> bool: ...

    def enable(self, command: list[str]) -> None: ...

    def disable(self) -> None: ...


def tray_command() -> list[str]:
    """The command line that starts this Rigdeck in the tray."""
    if getattr(sys, "frozen", False):  # a PyInstaller bundle
        executable = Path(sys.executable)
        windowless = executable.with_name("rigdeck-gui.exe")
        if windowless.exists():  # Windows: no console window at login
            return [str(windowless), "--tray"]
        return [str(executable), "gui", "--tray"]
    python = Path(sys.executable)
    windowless_python = python.with_name("pythonw.exe")
    if windowless_python.exists():
        python = windowless_python
    return [str(python), "-m", "app", "gui", "--tray"]


def _desktop_exec_quote(argument: str) -> str:
    """One argument of a desktop entry's Exec key, quoted as the Desktop Entry spec asks."""
    if argument and not any(c in argument for c in ' \t\n"\'\\><~|&;$*?#()`%='):
        return argument
    escaped = "".join("\\" + c if c in '"`$\\' else c for c in argument)
    # the whole value is then a desktop-entry string, where a backslash is written twice
    return '"' + escaped.replace("\\", "\\\\").replace("%", "%%") + '"'


class XdgAutostart:
    """`$XDG_CONFIG_HOME/autostart/rigdeck.desktop`, which desktops run at login."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / ENTRY_NAME

    @property
    def where(self) -> str:
        return str(self.path)

    def is_enabled(self) -> bool:
        return self.path.exists()

    def enable(self, command: list[str]) -> None:
        """Write the entry.

        Raises:
            UserError: the autostart folder cannot be written.
        """
        text = "\n".join([
            "[Desktop Entry]",
            "Type=Application",
            "Name=Rigdeck",
            "Comment=Start Rigdeck in the tray at login",
            "Exec=" + " ".join(_desktop_exec_quote(a) for a in command),
            "Icon=rigdeck",
            "Terminal=false",
            "X-GNOME-Autostart-enabled=true",
            "",
        ])
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UserError(f"Cannot write the login entry {self.path}: {exc.strerror}") from exc

    def disable(self) -> None:
        """Remove the entry (nothing to do when it is not there).

        Raises:
            UserError: the entry exists but cannot be removed.
        """
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            raise UserError(f"Cannot remove the login entry {self.path}: {exc.strerror}") from exc


class WindowsRunKey:
    """The `Rigdeck` value under HKCU\\...\\CurrentVersion\\Run, which Windows runs at login."""

    def __init__(self, value_name: str = RUN_VALUE) -> None:
        self.value_name = value_name

    @property
    def where(self) -> str:
        return f"HKEY_CURRENT_USER\\{RUN_KEY}\\{self.value_name}"

    def is_enabled(self) -> bool:
        if sys.platform == "win32":
            import winreg

            try:
                with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY) as key:
                    winreg.QueryValueEx(key, self.value_name)
            except FileNotFoundError:
                return False
            return True
        return False

    def enable(self, command: list[str]) -> None:
        """Set the Run value to the command line.

        Raises:
            UserError: not Windows, or the registry refused the write.
        """
        if sys.platform == "win32":
            import winreg

            try:
                with winreg.CreateKey(winreg.HKEY_CURRENT_USER, RUN_KEY) as key:
                    winreg.SetValueEx(key, self.value_name, 0, winreg.REG_SZ,
                                      subprocess.list2cmdline(command))
            except OSError as exc:
                raise UserError(f"Cannot write the login item {self.where}: {exc}") from exc
        else:
            raise UserError("The Windows Run key exists only on Windows")

    def disable(self) -> None:
        """Delete the Run value (nothing to do when it is not there).

        Raises:
            UserError: the registry refused the change.
        """
        if sys.platform == "win32":
            import winreg

            try:
                with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY, 0,
                                    winreg.KEY_SET_VALUE) as key:
                    winreg.DeleteValue(key, self.value_name)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise UserError(f"Cannot remove the login item {self.where}: {exc}") from exc


def login_item_for_this_system() -> LoginItem | None:
    """The login item of this platform; None where Rigdeck does not know one (macOS)."""
    if sys.platform == "win32":
        return WindowsRunKey()
    if sys.platform == "darwin":
        return None
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return XdgAutostart(Path(config_home) / "autostart")
