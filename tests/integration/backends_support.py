"""Shared helpers for the backends integration tests: a service on the test engine, the
`rigdeck` CLI as a subprocess, one chat request."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from app.runtime.backends_service import BackendsService
from app.runtime.hosts import Host
from app.runtime.keys import KeyKeeper
from app.secrets import SecretStore

REPO = Path(__file__).resolve().parents[2]
CLI_TIMEOUT_S = 300.0
READY_TIMEOUT_S = 180.0


def make_service(hosts: list[Host], image: str, run_dir: Path) -> BackendsService:
    return BackendsService(hosts, KeyKeeper(SecretStore()), images={"llamacpp": image},
                           run_dir=run_dir)


def write_home(home: Path, image: str) -> None:
    """A RIGDECK_HOME whose settings use the test image and host networking."""
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "settings.toml").write_text(
        f'llamacpp_image = "{image}"\nlocal_host_network = true\n', encoding="utf-8")


def cli_env(home: Path, docker_host: str) -> dict[str, str]:
    return {**os.environ, "RIGDECK_HOME": str(home), "DOCKER_HOST": docker_host,
            "PYTHONPATH": str(REPO)}


def rigdeck(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m app ARGS` as a separate process, the way a user's shell would."""
    return subprocess.run([sys.executable, "-m", "app", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=CLI_TIMEOUT_S)


def label_args(labels: dict[str, str]) -> list[str]:
    return [arg for key, value in labels.items() for arg in ("--label", f"{key}={value}")]


def chat(base_url: str, api_key: str | None) -> httpx.Response:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": "Hello"}],
                            "max_tokens": 8, "temperature": 0.0, "ignore_eos": True,
                            "chat_template_kwargs": {"enable_thinking": False}}
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    with httpx.Client(base_url=base_url, timeout=120.0, trust_env=False) as client:
        return client.post("/v1/chat/completions", json=body, headers=headers)
