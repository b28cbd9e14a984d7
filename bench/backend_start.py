"""Start → ready for the tiny model: Rigdeck (BackendsService.start + wait_ready) against
`docker run` of the same image and arguments by hand, /health polled the same way.

Run: DOCKER_HOST=unix:///run/rigdeck-test-docker.sock .venv/bin/python -m bench.backend_start
(after `python -m tests.realparts.prepare`). Prints the medians and the ratio (goal <= 1.1).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import docker
import httpx

from app.engines.plan import LaunchPlan
from app.engines.recipes import launch_spec
from app.runtime.backends_service import BackendsService
from app.runtime.hosts import Host
from app.runtime.keys import KeyKeeper
from app.secrets import SecretStore
from tests.realparts.backend_image import IMAGE
from tests.realparts.gguf_factory import TinyModelSpec, write_tiny_model
from tests.realparts.leak_guard import free_port

RUNS = 9
TIMEOUT_S = 120.0


def _by_hand(client: docker.DockerClient, plan: LaunchPlan) -> float:
    port = free_port()
    spec = launch_spec(plan, port=port, image=IMAGE)
    started = time.perf_counter()
    container = client.containers.run(
        IMAGE, list(spec.args), detach=True, network_mode="host",
        environment={spec.api_key_env: "bench"},
        volumes={m.source: {"bind": m.target, "mode": "ro"} for m in spec.mounts})
    try:
        with httpx.Client(timeout=2.0, trust_env=False) as http:
            delays = BackendsService.poll_delays()  # the same schedule as Rigdeck's
            deadline = time.monotonic() + TIMEOUT_S
            while time.monotonic() < deadline:
                try:
                    if http.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                        return time.perf_counter() - started
                except httpx.HTTPError:
                    pass
                time.sleep(next(delays))
        raise RuntimeError("not ready by hand")
    finally:
        container.remove(force=True)


def _rigdeck(service: BackendsService, plan: LaunchPlan) -> float:
    started = time.perf_counter()
    backend = service.start(plan, "local", wait=True, timeout_s=TIMEOUT_S).backend
    elapsed = time.perf_counter() - started
    service.stop(backend, timeout_s=2)
    return elapsed


def main() -> None:
    url = os.environ.get("DOCKER_HOST", "unix:///run/rigdeck-test-docker.sock")
    with tempfile.TemporaryDirectory() as folder:
        model = write_tiny_model(Path(folder) / "tiny.gguf", TinyModelSpec())
        plan = LaunchPlan.from_dict({"model": str(model), "name": "bench", "context": 512,
                                     "threads": 1})
        client = docker.DockerClient(base_url=url)
        service = BackendsService([Host("local", url, host_network=True)],
                                  KeyKeeper(SecretStore()), images={"llamacpp": IMAGE})
        try:
            hand, ours = [], []
            for _ in range(RUNS):  # interleaved, so drift hits both alike
                hand.append(_by_hand(client, plan))
                ours.append(_rigdeck(service, plan))
        finally:
            service.close()
            client.close()
    h, r = statistics.median(hand), statistics.median(ours)
    print(f"docker run by hand: median {h:.3f} s  {[round(x, 3) for x in hand]}")
    print(f"Rigdeck:            median {r:.3f} s  {[round(x, 3) for x in ours]}")
    print(f"ratio Rigdeck / by hand: {r / h:.2f} (goal <= 1.1)")


if __name__ == "__main__":
    main()
