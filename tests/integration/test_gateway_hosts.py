"""The Gateway in front of backends on two hosts: this machine's engine and a second one over
a real ssh:// transport. One name on both hosts is two model ids, `host/name`, each reaching
its own backend; the official `openai` client sees no difference."""

from __future__ import annotations

import time
from collections.abc import Iterator

import keyring
import openai
import pytest

from app.chat.service import ChatService
from app.engines.plan import LaunchPlan
from app.gateway.service import build_gateway
from app.paths import AppPaths
from app.roles.store import RoleStore
from app.runtime.backends_service import BackendsService
from app.runtime.hosts import Host
from app.runtime.keys import KeyKeeper
from app.runtime.saved_plans import SavedPlans
from app.secrets import SecretStore
from app.settings import SettingsStore
from tests.integration.backends_support import READY_TIMEOUT_S
from tests.realparts.docker_engine import DockerEngine
from tests.realparts.fixtures import TinyGgufFactory
from tests.realparts.leak_guard import LeakGuard
from tests.realparts.process_keyring import ProcessKeyring
from tests.realparts.remote_host import RemoteHost

pytestmark = pytest.mark.integration


@pytest.fixture
def two_host_service(docker_engine: DockerEngine, remote_host: RemoteHost,
                     llama_server_image: str, app_paths: AppPaths,
                     leak_guard: LeakGuard) -> Iterator[BackendsService]:
    del leak_guard  # requested so that it watches for what the test leaves behind
    hosts = [Host("local", docker_engine.base_url, host_network=True),
             Host("second", remote_host.url, host_network=True)]
    service = BackendsService(hosts, KeyKeeper(SecretStore()),
                              images={"llamacpp": llama_server_image},
                              run_dir=app_paths.data / "run",
                              saved_plans=SavedPlans(app_paths.config / "saved_plans.toml"))
    try:
        yield service
    finally:
        for backend in service.refresh():
            if backend.name == "tiny":
                service.stop(backend, timeout_s=5)
        service.close()


def test_one_gateway_reaches_a_backend_on_each_host(
        two_host_service: BackendsService, app_paths: AppPaths, tiny_gguf: TinyGgufFactory
) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(ProcessKeyring())
    model = tiny_gguf(filename="tiny.gguf")
    plan = LaunchPlan(model=str(model), name="tiny", context=512, threads=1)
    for host in ("local", "second"):
        two_host_service.start(plan, host, wait=True, timeout_s=READY_TIMEOUT_S)
    secrets = SecretStore()
    chat = ChatService(app_paths, secrets, two_host_service)
    gateway = build_gateway(app_paths, SettingsStore(app_paths.settings_file),
                            two_host_service, chat=chat,
                            roles=RoleStore(app_paths.config / "roles"), secrets=secrets)
    try:
        key = gateway.keys.create("agent")
        url = gateway.start("127.0.0.1", 0)
        with openai.OpenAI(base_url=url, api_key=key, max_retries=0, timeout=120) as client:
            ids = [m.id for m in client.models.list()]
            assert {"local/tiny", "second/tiny"} <= set(ids)
            for model_id in ("local/tiny", "second/tiny"):
                reply = client.chat.completions.create(
                    model=model_id, messages=[{"role": "user", "content": "Hello"}],
                    max_tokens=4, extra_body={"ignore_eos": True})
                assert reply.choices[0].message.content
        # a record is written once its answer is out: a moment after the client has it
        deadline = time.monotonic() + 10
        while len(gateway.records.recent(2)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        hosts = {(r.model, r.host) for r in gateway.records.recent(2)}
        assert hosts == {("local/tiny", "local"), ("second/tiny", "second")}
    finally:
        gateway.close()
        chat.close()
        keyring.set_keyring(previous)
