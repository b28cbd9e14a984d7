"""Builds the BackendsService from settings and hosts.toml (shared by the CLI and the UI),
and checks the settings it reads."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from app.engines.recipes import DEFAULT_IMAGES, image_setting
from app.fit.calibration import CalibrationStore
from app.paths import AppPaths
from app.runtime.backends_service import BackendsService
from app.runtime.hosts import LOCAL, HostsStore, local_host, processes_host
from app.runtime.keys import KeyKeeper
from app.runtime.process_runtime import llama_server_version
from app.runtime.saved_plans import SavedPlans
from app.secrets import SecretStore
from app.settings import SettingsStore, parse_value


def hosts_store(paths: AppPaths) -> HostsStore:
    return HostsStore(paths.config / "hosts.toml")


def saved_plans(paths: AppPaths) -> SavedPlans:
    return SavedPlans(paths.config / "saved_plans.toml")


def build_service(paths: AppPaths, settings: SettingsStore | None = None, *,
                  host_network: bool | None = None,
                  secrets: SecretStore | None = None) -> BackendsService:
    """The service for the local engine, local processes and the user's remote hosts."""
    settings = settings or SettingsStore(paths.settings_file)
    local_net = bool(settings.get("local_host_network")) if host_network is None else host_network
    hosts = [local_host(local_net), processes_host()]
    hosts += [replace(h) for h in hosts_store(paths).load()]
    return BackendsService(
        hosts, KeyKeeper(secrets or SecretStore()),
        images=configured_images(settings),
        run_dir=paths.data / "processes", llama_server_path=settings.get("llama_server_path"),
        hosts_store=hosts_store(paths), calibration=CalibrationStore(paths.data),
        saved_plans=saved_plans(paths))


def configured_images(settings: SettingsStore) -> dict[str, str]:
    """The image of each engine: the one set in the settings, else the engine's default."""
    chosen = {engine: settings.get(image_setting(engine)) for engine in DEFAULT_IMAGES}
    return {**DEFAULT_IMAGES, **{engine: image for engine, image in chosen.items() if image}}


def follow_settings(service: BackendsService, settings: SettingsStore) -> None:
    """Keep a long-lived service (the window's) in step with the settings it was built
    from: a new image, llama-server or local networking applies to the next start."""
    images = {image_setting(engine): engine for engine in DEFAULT_IMAGES}

    def on_change(name: str, value: Any) -> None:
        if name in images:
            service.set_image(images[name], str(value))
        elif name == "llama_server_path":
            service.set_llama_server_path(str(value))
        elif name == "local_host_network":
            service.set_host_network(LOCAL, bool(value))

    settings.on_change(on_change)


def checked_setting(name: str, words: list[str]) -> tuple[Any, str]:
    """The value of setting `name` from what the user typed, checked as far as it can be
    here, and a note on what was found ("llama-server version: …"). The CLI and the
    Settings page both use it, so they accept and refuse the same values with the same
    words. Blocking (it may run the chosen llama-server): not on the GUI thread.

    Raises:
        UserError: the value is refused; the message says why.
    """
    value = parse_value(name, words)
    if name == "llama_server_path" and value:
        return value, llama_server_version(value)
    return value, ""
