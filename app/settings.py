"""Rigdeck's settings: one typed model, stored as TOML in the platform's config folder.

Every field has a description (shown in the Settings page and `--help` texts). Files are
written atomically (temp file, fsync, rename) so a crash mid-write leaves the old file.
A file that cannot be read is kept as `settings.toml.corrupt-<time>` and replaced by
defaults, with a message the UI shows: the app never fails to start over its settings.
"""

import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import tomli_w
from psygnal import Signal

from app.errors import UserError
from app.user_files import (
    UserFileError,
    folder_lock,
    read_toml,
    saving_failed,
    write_atomically,
)

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1


def _doc(description: str, *, place: tuple[str, str] | None = None,
         limits: tuple[float, float] | None = None, check: Callable[[str], str] | None = None,
         ) -> dict[str, Any]:
    """A field's metadata: its description; where the Settings page shows it (group, the
    control's label); the range a number must lie in; a check of a text value (returns
    what is wrong, or "")."""
    return {"doc": description, "place": place, "limits": limits, "check": check}


IMAGE_NAME = re.compile(
    r"(?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*(?::[0-9]+)?/)?"   # registry host[:port]/
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?")
"""A Docker image reference (distribution's grammar, without the rarer digest kinds)."""


def _image_problem(text: str) -> str:
    if not text:
        return ""  # empty: the engine's default image
    if not IMAGE_NAME.fullmatch(text):
        return (f"{text!r} is not a Docker image name (e.g. "
                "ghcr.io/ggml-org/llama.cpp:server-cuda)")
    return ""


def _executable_problem(text: str) -> str:
    if not text:
        return ""  # empty: llama-server from PATH
    path = Path(text).expanduser()
    if not path.is_absolute():
        return f"{text!r} is not an absolute path"
    if not path.is_file():
        return f"there is no file at {path}"
    if not os.access(path, os.X_OK):
        return f"{path} is not executable (chmod +x)"
    return ""


def _text_file_problem(text: str) -> str:
    if not text:
        return ""  # empty: the text Rigdeck ships
    path = Path(text).expanduser()
    if not path.is_absolute():
        return f"{text!r} is not an absolute path"
    if not path.is_file():
        return f"there is no file at {path}"
    return ""


def _address_problem(text: str) -> str:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return f"{text!r} is not an IP address (e.g. 127.0.0.1, or 0.0.0.0 for every one)"
    return ""


def _theme_problem(text: str) -> str:
    return "" if text in THEMES else f"{text!r} is not a theme; choose {', '.join(THEMES)}"


@dataclass
class Settings:
    """Everything the user can set; each field says what it does and where it is shown."""

    schema_version: int = field(default=SCHEMA_VERSION, metadata=_doc("Layout version."))
    close_to_tray: bool = field(
        default=True,
        metadata=_doc("Closing the window keeps Rigdeck in the tray (where a tray exists).",
                      place=("General", "Keep running in the tray")),
    )
    start_in_tray_at_login: bool = field(
        default=False,
        metadata=_doc("Start Rigdeck in the tray when you log in (an XDG autostart entry on "
                      "Linux, a Run value in the registry on Windows).",
                      place=("General", "Start Rigdeck in the tray at login")),
    )
    theme: str = field(default="system", metadata=_doc(
        "Colours: system, light or dark.", place=("General", "Colours"), check=_theme_problem))
    last_page: str = field(default="library", metadata=_doc("Page shown when the window opens."))
    window_geometry: str = field(default="", metadata=_doc("Window size and position."))
    model_folders: list[str] = field(
        default_factory=list, metadata=_doc("Folders searched for models and LoRA adapters.",
                                            place=("Model folders", "Add folder…"))
    )
    sampling_interval_s: float = field(
        default=1.0, metadata=_doc("Seconds between two monitor readings.",
                                   place=("General", "Monitor interval"), limits=(0.1, 60.0))
    )
    monitor_enabled: bool = field(
        default=True,
        metadata=_doc("Sample the GPUs and the host while Rigdeck runs, also from the tray.",
                      place=("Monitor and alerts", "Sample GPUs and host while Rigdeck runs")),
    )
    monitor_keep_history: bool = field(
        default=True, metadata=_doc(
            "Keep the last day of monitor history across restarts.",
            place=("Monitor and alerts", "Keep the last day of history across restarts"))
    )
    monitor_replay_file: str = field(
        default="",
        metadata=_doc("Play a recorded trace instead of the real GPUs (demos, screenshots)."),
    )
    alerts_enabled: bool = field(
        default=True, metadata=_doc(
            "Show desktop notifications when a monitor alert fires.",
            place=("Monitor and alerts", "Show alerts as desktop notifications"))
    )
    alert_gpu_temp_margin_c: float = field(
        default=5.0, metadata=_doc(
            "Alert when a GPU is this close (°C) to its slowdown threshold.",
            place=("Monitor and alerts", "GPU within"), limits=(0.0, 40.0))
    )
    alert_vram_pct: float = field(
        default=95.0, metadata=_doc("Alert when a GPU's memory use passes this percentage.",
                                    place=("Monitor and alerts", "VRAM above"),
                                    limits=(10.0, 100.0))
    )
    alert_host_ram_pct: float = field(
        default=90.0, metadata=_doc("Alert when the host's RAM use passes this percentage.",
                                    place=("Monitor and alerts", "Host RAM above"),
                                    limits=(10.0, 100.0))
    )
    alert_swap_growth_mib: float = field(
        default=512.0, metadata=_doc("Alert when swap use grows by this many MiB in 5 minutes.",
                                     place=("Monitor and alerts", "Swap grows by"),
                                     limits=(16.0, 65536.0))
    )
    alert_throttling: bool = field(
        default=True, metadata=_doc(
            "Alert when a GPU slows its clocks for heat or power.",
            place=("Monitor and alerts", "Alert when a GPU throttles for heat or power"))
    )
    alert_backend: bool = field(
        default=True, metadata=_doc(
            "Alert when a backend dies or runs out of memory.",
            place=("Monitor and alerts", "Alert when a backend dies or runs out of memory"))
    )
    alert_cooldown_s: float = field(
        default=300.0,
        metadata=_doc("Seconds before the same alert may fire again (stops a flapping value).",
                      place=("Monitor and alerts", "Repeat an alert after"),
                      limits=(0.0, 86400.0)),
    )
    fit_model_path: str = field(
        default="",
        metadata=_doc("The model the Fit page opens with (the last one picked there)."),
    )
    fit_gpu_memory_mib: str = field(
        default="",
        metadata=_doc(
            "GPU memory the Fit page plans for, per GPU, comma-separated (98304 MiB, 96G); "
            "empty: the GPUs the monitor sees."
        ),
    )
    fit_context: int = field(
        default=0, metadata=_doc("Context the Fit page starts with (0: 4096 tokens).",
                                 limits=(0, 1 << 24))
    )
    fit_experts: int = field(
        default=0,
        metadata=_doc("Experts per token the Fit page starts with, MoE models (0: the model's).",
                      limits=(0, 1024)),
    )

    llamacpp_image: str = field(
        default="ghcr.io/ggml-org/llama.cpp:server-cuda",
        metadata=_doc("Docker image for llama.cpp backends (its entrypoint is llama-server).",
                      place=("Engines", "llama.cpp image"), check=_image_problem),
    )
    vllm_image: str = field(
        default="vllm/vllm-openai",
        metadata=_doc("Docker image for vLLM backends (its entrypoint is vllm serve).",
                      place=("Engines", "vLLM image"), check=_image_problem),
    )
    llama_server_path: str = field(
        default="",
        metadata=_doc("llama-server to run as a local process (empty: the one on PATH).",
                      place=("Engines", "llama-server path"), check=_executable_problem),
    )
    local_host_network: bool = field(
        default=False,
        metadata=_doc("Run containers on the local engine with host networking (engines "
                      "without a bridge network); otherwise ports are published on 127.0.0.1.",
                      place=("Hosts", "Host networking")),
    )
    backend_stop_timeout_s: float = field(
        default=10.0,
        metadata=_doc("Seconds a backend gets to stop by itself before it is killed.",
                      place=("Engines", "Stop timeout"), limits=(1.0, 600.0)),
    )
    chat_max_reply_mib: int = field(
        default=16,
        metadata=_doc("The longest reply kept, in MiB (answer and thinking together): a "
                      "server that sends more is cut off there, and the part received kept.",
                      place=("Chat", "Longest reply"), limits=(1, 1024)),
    )
    gateway_address: str = field(
        default="127.0.0.1",
        metadata=_doc("The address the Gateway listens on. 127.0.0.1: this computer only; "
                      "another address (a VM's bridge, 0.0.0.0) lets other machines in, and "
                      "then every request needs a gateway key.",
                      place=("Gateway", "Address"), check=_address_problem),
    )
    gateway_port: int = field(
        default=8765,
        metadata=_doc("The Gateway's port (its base URL is http://ADDRESS:PORT/v1).",
                      place=("Gateway", "Port"), limits=(1, 65535)),
    )
    gateway_autostart: bool = field(
        default=False,
        metadata=_doc("Start the Gateway with the app (in the window and in the tray).",
                      place=("Gateway", "Start with Rigdeck")),
    )
    gateway_queue_limit: int = field(
        default=64,
        metadata=_doc("Requests that may wait for a busy backend's slots; one more is "
                      "answered 429.", place=("Gateway", "Queue length"), limits=(0, 10000)),
    )
    gateway_start_timeout_s: float = field(
        default=300.0,
        metadata=_doc("Seconds a request waits for a backend started on demand (or a free "
                      "slot) before it is answered 503.",
                      place=("Gateway", "Start timeout"), limits=(5.0, 3600.0)),
    )
    gateway_ram_budget_mib: int = field(
        default=0,
        metadata=_doc("RAM in MiB that CPU-only backends started on demand may fill on a host "
                      "together, by the fit planner's estimates (0: not checked).",
                      place=("Gateway", "RAM for CPU backends"), limits=(0, 16 * 1024 * 1024)),
    )
    bench_text: str = field(
        default="",
        metadata=_doc("The text llama-perplexity scores in a bench run (empty: the opening "
                      "of a public-domain novel, shipped with Rigdeck).",
                      place=("Bench", "Perplexity text"), check=_text_file_problem),
    )
    bench_repetitions: int = field(
        default=3,
        metadata=_doc("Measured requests per variant in a bench run (the table shows their "
                      "median and spread).", place=("Bench", "Repetitions"), limits=(1, 50)),
    )

    @staticmethod
    def description(name: str) -> str:
        """The description of field `name`."""
        return str(_field(name).metadata["doc"])


def _field(name: str) -> Any:
    found = next((f for f in fields(Settings) if f.name == name), None)
    if found is None:
        keys = ", ".join(f.name for f in fields(Settings) if f.name != "schema_version")
        raise UserError(f"there is no setting {name!r}; settings: {keys}")
    return found


def setting_place(name: str) -> str:
    """Where the user changes setting `name`, for messages: "Settings → Engines → llama.cpp
    image". Every message that asks for a setting to change says it through this, so
    that a test can hold each one against the Settings page."""
    place = _field(name).metadata["place"]
    if place is None:
        raise ValueError(f"setting {name} is not shown in Settings")
    return settings_control(*place)


def setting_limits(name: str) -> tuple[float, float]:
    """The range a number setting must lie in (its control's range too)."""
    limits = _field(name).metadata["limits"]
    if limits is None:
        raise ValueError(f"setting {name} has no limits")
    return (float(limits[0]), float(limits[1]))


def settings_control(group: str, label: str) -> str:
    """Where a control of the Settings page that is not one setting is ("Settings → Hosts →
    Add host…"), for messages; a test holds every call's words against the page."""
    return f"Settings → {group} → {label}"


def shown_settings() -> dict[str, tuple[str, str]]:
    """The settings the Settings page shows: name → (group, label)."""
    return {f.name: f.metadata["place"] for f in fields(Settings) if f.metadata["place"]}


THEMES = ("system", "light", "dark")
TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")


def check_value(name: str, value: Any) -> Any:
    """`value` for setting `name` if it is of the field's type and within its limits.

    Raises:
        UserError: an unknown setting or a bad value; the message says what is allowed.
    """
    spec = _field(name)
    if name == "schema_version":
        raise UserError("schema_version is set by Rigdeck itself")
    expected = type(getattr(Settings(), name))
    meta = spec.metadata
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    valid = isinstance(value, expected) and isinstance(value, bool) is (expected is bool)
    if valid and expected is list:
        valid = all(isinstance(item, str) for item in value)
    if not valid:
        raise UserError(f"{name} takes {_kind(expected)}, not {value!r}")
    if meta["limits"] is not None and not meta["limits"][0] <= value <= meta["limits"][1]:
        low, high = meta["limits"]
        raise UserError(f"{name} must be between {low:g} and {high:g}, not {value:g}")
    if meta["check"] is not None and (problem := meta["check"](value)):
        raise UserError(f"{name}: {problem}")
    return value


def _kind(expected: type) -> str:
    return {bool: "true or false", int: "a whole number", float: "a number",
            str: "a text", list: "a list of texts"}[expected]


def parse_value(name: str, words: list[str]) -> Any:
    """The value of setting `name` typed on a command line (`rigdeck settings set`): one
    word for a scalar, any number of them for a list.

    Raises:
        UserError: as `check_value`, or text that is not of the setting's type.
    """
    expected = type(getattr(Settings(), _field(name).name))
    if expected is list:
        return check_value(name, list(words))
    if len(words) != 1:
        raise UserError(f"{name} takes one value ({_kind(expected)}), not {len(words)}")
    text = words[0].strip()
    value: Any = text
    if expected is bool:
        if text.lower() not in TRUE_WORDS + FALSE_WORDS:
            raise UserError(f"{name} takes true or false, not {text!r}")
        value = text.lower() in TRUE_WORDS
    elif expected in (int, float):
        try:
            value = expected(text)
        except ValueError:
            raise UserError(f"{name} takes {_kind(expected)}, not {text!r}") from None
    return check_value(name, value)


def _migrate(raw: dict[str, Any]) -> dict[str, Any]:
    """Bring an older file's keys to the current schema (one step per version)."""
    version = raw.get("schema_version", 0)
    if version < 1:
        # Version 0 (before the field existed) named the model folders `folders`.
        if "folders" in raw and "model_folders" not in raw:
            raw["model_folders"] = raw.pop("folders")
        raw["schema_version"] = 1
    return raw


def _from_dict(raw: dict[str, Any], problems: list[str]) -> Settings:
    values: dict[str, Any] = {}
    known = {f.name for f in fields(Settings)}
    for key, value in raw.items():
        if key not in known:
            log.info("ignoring unknown setting %r", key)
            continue
        if key == "schema_version":
            continue
        try:
            values[key] = check_value(key, value)
        except UserError as exc:
            problems.append(f"setting {key!r}: {exc}; using the default")
    return Settings(**values)


class SettingsStore:
    """Loads, holds and saves the settings; emits `changed(name, value)` on each update.

    `problems` lists what went wrong while loading (a corrupt file, invalid values), for
    the UI to show once.
    """

    changed = Signal(str, object)

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems: list[str] = []
        self.settings = self._load()

    def _load(self) -> Settings:
        try:
            raw = read_toml(self.path)
        except UserFileError as exc:
            backup = self.path.with_name(
                f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}"
            )
            try:
                self.path.replace(backup)
                kept = f"; the old file was kept as {backup}"
            except OSError:
                kept = ""
            self.problems.append(
                f"The settings file could not be read ({exc.why}){kept}. Defaults are in use."
            )
            log.warning("settings file %s unreadable: %s", self.path, exc.why)
            return Settings()
        if raw is None:
            return Settings()
        return _from_dict(_migrate(raw), self.problems)

    def get(self, name: str) -> Any:
        return getattr(self.settings, name)

    def set(self, name: str, value: Any) -> None:
        """Change one setting, save the file and tell listeners.

        Under the config folder's lock the file is read again and only this setting is
        changed in it, so a `rigdeck settings set` made meanwhile is not undone.

        Raises:
            UserError: the file cannot be written (a full disk); the old one is unchanged.
        """
        if getattr(self.settings, name) == value:
            return
        with folder_lock(self.path.parent):
            on_disk = self._on_disk()
            setattr(on_disk, name, value)
            self._write(on_disk)
        setattr(self.settings, name, value)
        self.changed.emit(name, value)

    def save(self) -> None:
        """Write every setting as held here.

        Raises:
            UserError: the file cannot be written; the old one is unchanged.
        """
        with folder_lock(self.path.parent):
            self._write(self.settings)

    def _on_disk(self) -> Settings:
        """The settings file as it is now (this store's values where it cannot be read)."""
        try:
            raw = read_toml(self.path)
        except UserFileError:
            raw = None
        if raw is None:
            return Settings(**asdict(self.settings))
        return _from_dict(_migrate(raw), [])

    def _write(self, settings: Settings) -> None:
        try:
            write_atomically(self.path, tomli_w.dumps(asdict(settings)).encode("utf-8"))
        except OSError as exc:
            raise saving_failed("the settings", self.path, exc) from exc

    def on_change(self, callback: Callable[[str, Any], None]) -> None:
        self.changed.connect(callback)
