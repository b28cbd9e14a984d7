"""A Gateway over a real llama-server for the gateway benchmarks, as a user runs it: the
backend is a local process (Rigdeck's process host, the built llama-server) started
through the BackendsService, and the Gateway is `rigdeck serve` in a process of its own,
which finds that backend again (its key read back from the process's environment).
No gateway key exists, so on loopback none is asked for."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from app.engines.plan import LaunchPlan
from app.paths import AppPaths
from app.roles.role import Role
from app.roles.store import RoleStore
from app.runtime.backend import Backend
from app.runtime.backends_service import BackendsService
from app.runtime.hosts import PROCESSES
from app.runtime.setup import build_service
from app.settings import SettingsStore
from tests.realparts.leak_guard import free_port
from tests.realparts.llama_build import ensure_llama_server

REPO = Path(__file__).resolve().parents[1]


@dataclass
class GatewayRig:
    backend: Backend
    service: BackendsService
    url: str
    """The Gateway's base URL (…/v1)."""

    @property
    def backend_url(self) -> str:
        return f"{self.backend.base_url}/v1"

    @property
    def backend_key(self) -> str | None:
        return self.service.api_key(self.backend)


@contextlib.contextmanager
def gateway_rig(folder: Path, plan: LaunchPlan, roles: list[Role]) -> Iterator[GatewayRig]:
    """`plan` running as a process, `roles` saved, and `rigdeck serve` in front of them."""
    home = folder / "home"
    paths = AppPaths.under(home)
    settings = SettingsStore(paths.settings_file)
    settings.set("llama_server_path", str(ensure_llama_server()))
    store = RoleStore(paths.config / "roles")
    for role in roles:
        store.save(role)
    service = build_service(paths, settings)
    backend = service.start(plan, PROCESSES, wait=True, timeout_s=300).backend
    port = free_port()
    env = {**os.environ, "RIGDECK_HOME": str(home), "PYTHONPATH": str(REPO)}
    serve = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port)],
                             env=env, cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert serve.stdout is not None
        line = serve.stdout.readline()
        if "Gateway serving at" not in line:
            raise RuntimeError(f"rigdeck serve did not start: {line!r}")
        time.sleep(0.2)
        yield GatewayRig(backend, service, f"http://127.0.0.1:{port}/v1")
    except BaseException:
        print(f"--- the backend's log:\n{service.log_tail(backend, 60)}", file=sys.stderr)
        raise
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=30)
        service.stop(backend, timeout_s=10)
        service.close()
