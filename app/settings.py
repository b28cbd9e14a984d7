"""Rigdeck's settings: one typed model, stored as TOML in the platform's config folder.

Every field has a description (shown in the Settings page and `--help` texts). Files are
written atomically (temp file, fsync, rename) so a crash mid-write leaves the old file.
A file that cannot be read is kept as `settings.toml.corrupt-<time>` and replaced by
defaults, with a message the UI shows: the app never fails to start over its settings.
"""

import logging
import os
import tempfile
import time
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import tomli_w
from psygnal import Signal

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1


def _doc(description: str) -> dict[str, str]:
    return {"doc": description}


@dataclass
class Settings:
    """Everything the user can set; each field says what it does."""

    schema_version: int = field(default=SCHEMA_VERSION, metadata=_doc("Layout version."))
    close_to_tray: bool = field(
        default=True,
        metadata=_doc("Closing the window keeps Rigdeck in the tray (where a tray exists)."),
    )
    start_in_tray_at_login: bool = field(
        default=False,
        metadata=_doc("Start Rigdeck in the tray when you log in (an XDG autostart entry on "
                      "Linux, a Run value in the registry on Windows)."),
    )
    theme: str = field(default="system", metadata=_doc("Colours: system, light or dark."))
    last_page: str = field(default="library", metadata=_doc("Page shown when the window opens."))
    window_geometry: str = field(default="", metadata=_doc("Window size and position."))
    model_folders: list[str] = field(
        default_factory=list, metadata=_doc("Folders searched for models and LoRA adapters.")
    )
    sampling_interval_s: float = field(
        default=1.0, metadata=_doc("Seconds between two monitor readings.")
    )
    monitor_enabled: bool = field(
        default=True,
        metadata=_doc("Sample the GPUs and the host while Rigdeck runs, also from the tray."),
    )
    monitor_keep_history: bool = field(
        default=True, metadata=_doc("Keep the last day of monitor history across restarts.")
    )
    monitor_replay_file: str = field(
        default="",
        metadata=_doc("Play a recorded trace instead of the real GPUs (demos, screenshots)."),
    )
    alerts_enabled: bool = field(
        default=True, metadata=_doc("Show desktop notifications when a monitor alert fires.")
    )
    alert_gpu_temp_margin_c: float = field(
        default=5.0, metadata=_doc("Alert when a GPU is this close (°C) to its slowdown threshold.")
    )
    alert_vram_pct: float = field(
        default=95.0, metadata=_doc("Alert when a GPU's memory use passes this percentage.")
    )
    alert_host_ram_pct: float = field(
        default=90.0, metadata=_doc("Alert when the host's RAM use passes this percentage.")
    )
    alert_swap_growth_mib: float = field(
        default=512.0, metadata=_doc("Alert when swap use grows by this many MiB in 5 minutes.")
    )
    alert_throttling: bool = field(
        default=True, metadata=_doc("Alert when a GPU slows its clocks for heat or power.")
    )
    alert_backend: bool = field(
        default=True, metadata=_doc("Alert when a backend dies or runs out of memory.")
    )
    alert_cooldown_s: float = field(
        default=300.0,
        metadata=_doc("Seconds before the same alert may fire again (stops a flapping value)."),
    )
    fit_model_path: str = field(
        default="",
        metadata=_doc("The model the Fit page opens with (the last one picked there)."),
    )
    fit_gpu_memory_mib: str = field(
        default="",
        metadata=_doc(
            "GPU memory the Fit page plans for, MiB per GPU, comma-separated (e.g. 98304); "
            "empty: the GPUs the monitor sees."
        ),
    )
    fit_context: int = field(
        default=0, metadata=_doc("Context the Fit page starts with (0: 4096 tokens).")
    )
    fit_experts: int = field(
        default=0,
        metadata=_doc("Experts per token the Fit page starts with, MoE models (0: the model's)."),
    )

    llamacpp_image: str = field(
        default="ghcr.io/ggml-org/llama.cpp:server-cuda",
        metadata=_doc("Docker image for llama.cpp backends (its entrypoint is llama-server)."),
    )
    vllm_image: str = field(
        default="vllm/vllm-openai",
        metadata=_doc("Docker image for vLLM backends (its entrypoint is vllm serve)."),
    )
    llama_server_path: str = field(
        default="",
        metadata=_doc("llama-server to run as a local process (empty: the one on PATH)."),
    )
    local_host_network: bool = field(
        default=False,
        metadata=_doc("Run containers on the local engine with host networking (engines "
                      "without a bridge network); otherwise ports are published on 127.0.0.1."),
    )
    backend_stop_timeout_s: float = field(
        default=10.0,
        metadata=_doc("Seconds a backend gets to stop by itself before it is killed."),
    )

    @staticmethod
    def description(name: str) -> str:
        """The description of field `name`."""
        return str(next(f for f in fields(Settings) if f.name == name).metadata["doc"])


THEMES = ("system", "light", "dark")


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
    defaults = Settings()
    values: dict[str, Any] = {}
    known = {f.name: f for f in fields(Settings)}
    for key, value in raw.items():
        spec = known.get(key)
        if spec is None:
            log.info("ignoring unknown setting %r", key)
            continue
        expected = type(getattr(defaults, key))
        ok = isinstance(value, expected) or (expected is float and isinstance(value, int))
        if ok and expected is list:
            ok = all(isinstance(item, str) for item in value)
        if not ok or isinstance(value, bool) is not (expected is bool):
            problems.append(f"setting {key!r} had an invalid value {value!r}; using the default")
            continue
        values[key] = float(value) if expected is float else value
    settings = Settings(**values)
    if settings.theme not in THEMES:
        problems.append(f"unknown theme {settings.theme!r}; using 'system'")
        settings.theme = "system"
    return settings


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that a reader sees the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
        if not self.path.exists():
            return Settings()
        try:
            raw = tomllib.loads(self.path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
            backup = self.path.with_name(
                f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}"
            )
            try:
                self.path.replace(backup)
                kept = f"; the old file was kept as {backup}"
            except OSError:
                kept = ""
            self.problems.append(
                f"The settings file could not be read ({exc}){kept}. Defaults are in use."
            )
            log.warning("settings file %s unreadable: %s", self.path, exc)
            return Settings()
        return _from_dict(_migrate(raw), self.problems)

    def get(self, name: str) -> Any:
        return getattr(self.settings, name)

    def set(self, name: str, value: Any) -> None:
        """Change one setting, save the file and tell listeners."""
        if getattr(self.settings, name) == value:
            return
        setattr(self.settings, name, value)
        self.save()
        self.changed.emit(name, value)

    def save(self) -> None:
        write_atomically(self.path, tomli_w.dumps(asdict(self.settings)).encode("utf-8"))

    def on_change(self, callback: Callable[[str, Any], None]) -> None:
        self.changed.connect(callback)
