"""Builds the BackendsService from settings and hosts.toml (shared by the CLI and the UI)."""

from __future__ import annotations

from dataclasses import replace

from app.paths import AppPaths
from app.runtime.backends_service import BackendsService
from app.runtime.hosts import HostsStore, local_host, processes_host
from app.runtime.keys import KeyKeeper
from app.secrets import SecretStore
from app.settings import SettingsStore


def hosts_store(paths: AppPaths) -> HostsStore:
    return HostsStore(paths.config / "hosts.toml")


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
        images={"llamacpp": settings.get("llamacpp_image"), "vllm": settings.get("vllm_image")},
        run_dir=paths.data / "processes", llama_server_path=settings.get("llama_server_path"))
