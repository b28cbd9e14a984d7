"""The Linux packages, built from a clean checkout, installed into a fresh tree and run there."""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QImage

from app import __version__
from app.cli.main import build_parser
from app.library.library import PROCESS_MIN_READS
from tests.packaging.conftest import LinuxPackages, install_deb
from tests.realparts.gguf_factory import TinyModelSpec, write_tiny_model

pytestmark = pytest.mark.packaging

VENV_RIGDECK = [sys.executable, "-m", "app"]


@pytest.fixture(scope="session")
def installed_root(
    linux_packages: LinuxPackages, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A fresh directory tree with the .deb installed into it."""
    root = tmp_path_factory.mktemp("installed")
    install_deb(linux_packages.deb, root)
    return root


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A user's environment: own Rigdeck folders, offscreen Qt, no display."""
    values = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    values["RIGDECK_HOME"] = str(tmp_path / "home")
    values["QT_QPA_PLATFORM"] = "offscreen"
    return values


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)


def test_packages_are_named_for_the_version(linux_packages: LinuxPackages) -> None:
    assert linux_packages.deb.name == f"rigdeck_{__version__}_amd64.deb"
    assert linux_packages.tarball.name == f"rigdeck-{__version__}-linux-x86_64.tar.gz"
    fields = subprocess.run(
        ["dpkg-deb", "--field", str(linux_packages.deb), "Package", "Version"],
        capture_output=True, text=True, check=True,
    ).stdout
    assert fields.split() == ["Package:", "rigdeck", "Version:", __version__]


def test_the_installed_command_prints_the_version(
    installed_root: Path, env: dict[str, str]
) -> None:
    launcher = installed_root / "usr" / "bin" / "rigdeck"
    assert launcher.is_symlink()
    assert launcher.resolve() == installed_root / "opt" / "rigdeck" / "rigdeck"
    done = _run([str(launcher), "--version"], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"rigdeck {__version__}"


def _pixels(path: Path) -> np.ndarray:
    image = QImage(str(path)).convertToFormat(QImage.Format.Format_RGB32)
    assert not image.isNull(), f"{path} is not an image"
    data = np.frombuffer(bytes(image.constBits()), dtype=np.uint8)  # a copy: image is freed
    return data.reshape(image.height(), image.bytesPerLine())


@pytest.mark.parametrize("page", ["library", "monitor", "settings"])
def test_the_installed_app_shows_the_main_window(
    installed_root: Path, env: dict[str, str], tmp_path: Path, page: str
) -> None:
    """The installed app draws the same window as the app run from the checkout."""
    installed_shot, venv_shot = tmp_path / "installed.png", tmp_path / "venv.png"
    arguments = ["gui", "--page", page, "--size", "1100x680", "--screenshot"]
    installed = _run([str(installed_root / "usr" / "bin" / "rigdeck"), *arguments,
                      str(installed_shot)], env)
    assert installed.returncode == 0, installed.stderr
    venv = _run([*VENV_RIGDECK, *arguments, str(venv_shot)], env)
    assert venv.returncode == 0, venv.stderr
    ours, reference = _pixels(installed_shot), _pixels(venv_shot)
    assert ours.shape == reference.shape == (680, 1100 * 4)
    # the Monitor's live graphs differ between two runs; the window around them must not
    same = float(np.mean(ours == reference))
    assert same > (0.9 if page == "monitor" else 0.995), f"only {same:.1%} of the bytes match"


def _commands() -> list[str]:
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return sorted(action.choices)
    raise AssertionError("rigdeck has no subcommands")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("models") / "tiny.gguf",
                            TinyModelSpec(arch="qwen3"))


def _real_invocation(command: str, model: Path) -> list[str]:
    """Arguments that make `command` do its work (or fail the way a user would see)."""
    return {
        "scan": ["scan", str(model.parent)],
        "show": ["show", str(model)],
        "fit": ["fit", str(model), "--gpu-memory", "24000"],
        "monitor": ["monitor", "--seconds", "1", "--interval", "0.5"],
        "chat": ["chat", "--list"],
        "ps": ["ps"],
        "logs": ["logs", "no-such-backend"],
        "down": ["down", "no-such-backend"],
        "up": ["up", "--model", str(model.parent / "missing.gguf")],
        "version": ["version"],
        "gui": ["gui", "--size", "nonsense"],
    }.get(command, [command, "--help"])


def test_every_cli_command_runs_in_the_installed_app(
    installed_root: Path, env: dict[str, str], tiny_model: Path
) -> None:
    """Each subcommand ends as it does from the checkout: same exit status, no traceback."""
    installed = str(installed_root / "usr" / "bin" / "rigdeck")
    commands = _commands()
    assert {"scan", "show", "fit", "up", "down", "ps", "logs", "chat", "monitor"} <= set(commands)
    for command in commands:
        arguments = _real_invocation(command, tiny_model)
        ours = _run([installed, *arguments], env)
        reference = _run([*VENV_RIGDECK, *arguments], env)
        assert "Traceback" not in ours.stderr, f"{arguments}: {ours.stderr}"
        assert ours.returncode == reference.returncode, (arguments, ours.stderr)
        help_run = _run([installed, command, "--help"], env)
        assert help_run.returncode == 0, help_run.stderr
        assert help_run.stdout.startswith(f"usage: rigdeck {command}"), help_run.stdout
    scan = _run([installed, "scan", str(tiny_model.parent)], env)
    assert "tiny.gguf" in scan.stdout or "qwen3" in scan.stdout.lower(), scan.stdout


def test_a_large_scan_reads_with_worker_processes_in_the_installed_app(
    installed_root: Path, env: dict[str, str], tmp_path: Path
) -> None:
    """From PROCESS_MIN_READS files a scan reads in worker processes, which the bundle
    starts by running itself again: the result is the checkout's, and nothing else runs."""

    folder = tmp_path / "many"
    first = write_tiny_model(folder / "model-000.gguf", TinyModelSpec(arch="qwen3"))
    for index in range(1, PROCESS_MIN_READS + 2):
        (folder / f"model-{index:03d}.gguf").write_bytes(first.read_bytes())
    installed = str(installed_root / "usr" / "bin" / "rigdeck")
    ours = _run([installed, "scan", "--json", str(folder)], env)
    reference = _run([*VENV_RIGDECK, "scan", "--json", str(folder)], env)
    assert ours.returncode == 0, ours.stderr
    assert "Traceback" not in ours.stderr
    found = json.loads(ours.stdout)
    assert len(found) == PROCESS_MIN_READS + 2
    assert all(entry["error"] is None and entry["architecture"] == "qwen3" for entry in found)
    assert found == json.loads(reference.stdout)


def test_the_menu_entry_and_icons_are_installed(installed_root: Path) -> None:
    share = installed_root / "usr" / "share"
    entry = share / "applications" / "rigdeck.desktop"
    done = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    for size in (16, 32, 48, 64, 128, 256):
        icon = QImage(str(share / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "rigdeck.png"))
        assert (icon.width(), icon.height()) == (size, size)
    assert (share / "icons" / "hicolor" / "scalable" / "apps" / "rigdeck.svg").exists()


def test_removing_the_package_leaves_user_data(
    linux_packages: LinuxPackages, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    install_deb(linux_packages.deb, root)
    settings = root / "home" / "ada" / ".config" / "rigdeck" / "settings.toml"
    settings.parent.mkdir(parents=True)
    settings.write_text('theme = "dark"\n', encoding="utf-8")
    done = subprocess.run(["dpkg", f"--root={root}", "--purge", "rigdeck"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert not (root / "opt" / "rigdeck").exists()
    assert not (root / "usr" / "bin" / "rigdeck").exists()
    assert settings.read_text(encoding="utf-8") == 'theme = "dark"\n'


def test_the_tarball_runs_where_it_is_unpacked(
    linux_packages: LinuxPackages, tmp_path: Path, env: dict[str, str]
) -> None:
    subprocess.run(["tar", "-xzf", str(linux_packages.tarball), "-C", str(tmp_path)], check=True)
    top = tmp_path / f"rigdeck-{__version__}-linux-x86_64"
    done = _run([str(top / "rigdeck"), "--version"], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"rigdeck {__version__}"
    assert (top / "share" / "applications" / "rigdeck.desktop").exists()


@pytest.mark.parametrize(("arguments", "logged"), [
    (["gui"], "window shown"),
    (["gui", "--tray"], "started in the tray"),
])
def test_the_installed_app_opens_on_a_real_display(
    installed_root: Path, env: dict[str, str], tray_display: str,
    arguments: list[str], logged: str,
) -> None:
    """On X11 (the bundled xcb plugin with the system's xcb libraries), with a tray."""
    done = _run([str(installed_root / "usr" / "bin" / "rigdeck"), *arguments],
                dict(env, DISPLAY=tray_display, QT_QPA_PLATFORM="xcb",
                     RIGDECK_STARTUP_PROBE="1"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("shown "), done.stdout + done.stderr
    log = (Path(env["RIGDECK_HOME"]) / "logs" / "rigdeck.log").read_text(encoding="utf-8")
    assert logged in log
