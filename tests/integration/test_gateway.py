"""The Gateway against real llama-server containers, checked with the official `openai`
Python client: model ids for the backend and its roles, streams to a role and to the base
(greedy, so each role's adapter and system prompt show in the very first tokens), OpenAI's
errors for an unknown model and a wrong key, a backend killed mid-stream, and starts on
demand with an idle stop.

The tiny model's weights are random: what is compared is the Gateway's answer with what
the backend itself answers to the request the role stands for.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import httpx
import keyring
import openai
import pytest

from app.chat.service import ChatService
from app.engines.plan import LaunchPlan
from app.gateway.records import RequestRecord
from app.gateway.service import Gateway, build_gateway
from app.paths import AppPaths
from app.roles.role import Role, RoleAdapter
from app.roles.store import RoleStore
from app.runtime.backend import BackendState
from app.runtime.backends_service import BackendsService
from app.runtime.hosts import Host
from app.runtime.keys import KeyKeeper
from app.runtime.saved_plans import SavedPlans
from app.secrets import SecretStore
from app.settings import SettingsStore
from tests.realparts.docker_engine import DockerEngine
from tests.realparts.fixtures import TinyGgufFactory
from tests.realparts.gguf_factory import LORA_TARGETS, TinyModelSpec
from tests.realparts.process_keyring import ProcessKeyring

pytestmark = pytest.mark.integration

GREEDY: dict[str, float | int] = {"temperature": 0.0, "top_k": 1}
SCALE = 16.0
READY_S = 180.0
COACH_PROMPT = "You are a sports coach."


@dataclass
class Rig:
    gateway: Gateway
    service: BackendsService
    paths: AppPaths
    url: str
    key: str
    settings: SettingsStore

    def client(self, key: str | None = None) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url, api_key=key or self.key, max_retries=0,
                             timeout=120.0)

    def backend_url_and_key(self, name: str = "tiny") -> tuple[str, str | None]:
        backend = self.service.find(name)
        return backend.base_url, self.service.api_key(backend)


@pytest.fixture(scope="module")
def rig(docker_engine: DockerEngine, llama_server_image: str,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    previous = keyring.get_keyring()
    keyring.set_keyring(ProcessKeyring())
    home = tmp_path_factory.mktemp("gateway-home")
    paths = AppPaths.under(home)
    models = TinyGgufFactory(tmp_path_factory.mktemp("gateway-models"))
    spec = TinyModelSpec()
    model = models(spec, filename="tiny.gguf")
    coach = models.lora(spec, rank=8, targets=LORA_TARGETS, seed=11, filename="coach.gguf")
    tutor = models.lora(spec, rank=8, targets=LORA_TARGETS, seed=22, filename="tutor.gguf")
    roles = RoleStore(paths.config / "roles")
    roles.save(Role("Coach", adapters=(RoleAdapter(str(coach), SCALE),),
                    system_prompt=COACH_PROMPT, sampling=GREEDY, thinking=False))
    roles.save(Role("Tutor", adapters=(RoleAdapter(str(tutor), SCALE),), sampling=GREEDY))
    settings = SettingsStore(paths.settings_file)
    secrets = SecretStore()
    service = BackendsService([Host("local", docker_engine.base_url, host_network=True)],
                              KeyKeeper(secrets), images={"llamacpp": llama_server_image},
                              run_dir=home / "run", saved_plans=SavedPlans(
                                  paths.config / "saved_plans.toml"))
    chat = ChatService(paths, secrets, service)
    gateway = build_gateway(paths, settings, service, chat=chat, roles=roles, secrets=secrets)
    key = gateway.keys.create("pytest")
    plan = LaunchPlan(model=str(model), name="tiny", adapters=(str(coach), str(tutor)),
                      context=3 * 1024, parallel=3)
    service.start(plan, "local", wait=True, timeout_s=READY_S)
    url = gateway.start("127.0.0.1", 0)
    try:
        yield Rig(gateway, service, paths, url, key, settings)
    finally:
        gateway.close()
        for backend in service.refresh():
            if backend.name in ("tiny", "other"):  # the engine may run other tests' too
                service.stop(backend, timeout_s=5)
        chat.close()
        service.close()
        keyring.set_keyring(previous)


def direct(rig: Rig, body: dict[str, Any]) -> dict[str, Any]:
    """The backend's own answer to `body` (its key, its port: what the Gateway hides)."""
    url, key = rig.backend_url_and_key()
    with httpx.Client(timeout=120.0, trust_env=False) as client:
        answer = client.post(f"{url}/v1/chat/completions", json=body,
                             headers={"Authorization": f"Bearer {key}"})
    answer.raise_for_status()
    result: dict[str, Any] = answer.json()
    return result


def last_record(rig: Rig, model: str) -> RequestRecord:
    """The newest record of `model`: written once the Gateway has ended the stream, a
    moment after the client read its last event."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        record = rig.gateway.records.recent(1)[0]
        if record.model == model:
            return record
        time.sleep(0.05)
    raise AssertionError(f"no record of {model}: {rig.gateway.records.recent(3)}")


def streamed(client: openai.OpenAI, model: str, prompt: str, **extra: Any) -> str:
    stream = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": prompt}], max_tokens=12,
        stream=True, extra_body={"chat_template_kwargs": {"enable_thinking": False},
                                 **GREEDY, **extra})
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    return "".join(pieces)


def test_models_lists_the_backend_and_each_role_with_base_and_backend(rig: Rig) -> None:
    with rig.client() as client:
        ids = [m.id for m in client.models.list()]
    assert "tiny" in ids
    # the two roles with their adapters, and the shipped prompt-only roles on its base
    # (named `role@backend` where another backend on the engine could serve them too)
    assert {"coach", "tutor", "sports-coach@tiny", "physics-tutor@tiny"} <= set(ids) or \
        {"coach", "tutor", "sports-coach", "physics-tutor"} <= set(ids)
    assert "plain" not in ids  # it changes nothing: it is the base model
    with httpx.Client(trust_env=False) as plain:
        listing = plain.get(f"{rig.url}/models",
                            headers={"Authorization": f"Bearer {rig.key}"}).json()
    described = {m["id"]: m["rigdeck"] for m in listing["data"]}
    assert described["coach"] == {"base": "tiny.gguf", "role": "Coach", "backend": "tiny",
                                  "host": "local", "engine": "llamacpp", "running": True}
    assert described["tiny"]["role"] is None


def test_a_role_gets_its_adapter_and_system_prompt_and_the_base_gets_neither(rig: Rig) -> None:
    prompt = "Hello there"
    with rig.client() as client:
        base = streamed(client, "tiny", prompt)
        coach = streamed(client, "coach", prompt)
        tutor = streamed(client, "tutor", prompt)
        again = streamed(client, "coach", prompt)
    assert len({base, coach, tutor}) == 3, (base, coach, tutor)
    assert again == coach  # greedy, one server process: swapping back gives the same answer
    user = [{"role": "user", "content": prompt}]
    common = {"max_tokens": 12, **GREEDY, "chat_template_kwargs": {"enable_thinking": False},
              "cache_prompt": False}
    as_coach = direct(rig, {**common, "lora": [{"id": 0, "scale": SCALE}, {"id": 1, "scale": 0}],
                            "messages": [{"role": "system", "content": COACH_PROMPT}, *user]})
    no_prompt = direct(rig, {**common, "lora": [{"id": 0, "scale": SCALE}, {"id": 1, "scale": 0}],
                             "messages": user})
    as_base = direct(rig, {**common, "lora": [{"id": 0, "scale": 0}, {"id": 1, "scale": 0}],
                           "messages": user})
    assert as_coach["choices"][0]["message"]["content"] == coach
    assert as_base["choices"][0]["message"]["content"] == base
    # the system prompt is in what the server read: more prompt tokens than without it
    assert as_coach["timings"]["prompt_n"] > no_prompt["timings"]["prompt_n"]


def test_the_request_s_own_sampling_beats_the_role_s(rig: Rig) -> None:
    with rig.client() as client:
        greedy = client.chat.completions.create(
            model="coach", messages=[{"role": "user", "content": "Count"}], max_tokens=16)
        hot = [client.chat.completions.create(
            model="coach", messages=[{"role": "user", "content": "Count"}], max_tokens=16,
            temperature=5.0, extra_body={"top_k": 0, "seed": seed}).choices[0].message.content
            for seed in (1, 2, 3)]
    assert greedy.choices[0].message.content not in hot or len(set(hot)) > 1


def test_unknown_model_is_404_and_a_wrong_key_401_in_openai_s_error_format(rig: Rig) -> None:
    with rig.client() as client, pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="no-such-model",
                                       messages=[{"role": "user", "content": "Hi"}])
    assert missing.value.code == "model_not_found"
    assert "GET /v1/models" in missing.value.message
    with rig.client("rdk-wrong") as client, pytest.raises(openai.AuthenticationError) as refused:
        client.models.list()
    assert refused.value.code == "invalid_api_key"


def test_requests_are_recorded_with_tokens_time_to_first_token_and_speed(rig: Rig) -> None:
    with rig.client() as client:
        streamed(client, "tutor", "Record me")
    record = last_record(rig, "tutor")
    assert (record.client, record.model, record.role, record.backend) == \
        ("pytest", "tutor", "Tutor", "tiny")
    assert record.status == 200
    assert record.outcome == "ok"
    assert record.completion_tokens == 12
    assert record.ttft_s is not None
    assert 0 < record.ttft_s < 60
    assert record.tokens_per_s is not None
    assert record.tokens_per_s > 0
    usage = {(u.client, u.role): u for u in rig.gateway.records.usage()}
    assert usage[("pytest", "Tutor")].completion_tokens >= 12


def test_a_backend_killed_mid_stream_ends_the_stream_with_an_error_and_restarts_on_demand(
        rig: Rig, docker_client: docker.DockerClient) -> None:
    backend = rig.service.find("tiny")
    with rig.client() as client:
        stream = client.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": "Talk"}], max_tokens=2000,
            stream=True, extra_body={"ignore_eos": True, **GREEDY})
        def read_and_kill() -> None:
            for number, _chunk in enumerate(stream):
                if number == 3:
                    docker_client.containers.get(backend.ref).kill()

        with pytest.raises(openai.APIError) as cut:
            read_and_kill()
        assert "went away mid-stream" in str(cut.value)
        again = streamed(client, "coach", "Hello there")
    assert again
    restarted = rig.service.find("tiny")
    assert restarted.ref != backend.ref
    assert restarted.state is BackendState.READY


def test_a_stopped_backend_starts_on_demand_and_stops_after_its_idle_time(rig: Rig) -> None:
    rig.service.stop(rig.service.find("tiny"), timeout_s=5)
    with rig.client() as client:
        assert "tiny" in [m.id for m in client.models.list()]  # still listed: on demand
        assert streamed(client, "tiny", "Wake up")
    assert rig.service.find("tiny").state is BackendState.READY
    rig.gateway.saved.set_ttl("tiny", 2)
    try:
        deadline = time.monotonic() + 30
        while rig.service.get("local", "tiny") is not None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert rig.service.get("local", "tiny") is None, "not stopped after its idle time"
    finally:
        rig.gateway.saved.set_ttl("tiny", 0)
    with rig.client() as client:
        assert streamed(client, "tutor", "Back again")  # and a role starts it again


def test_a_plan_that_does_not_fit_beside_a_busy_one_is_refused_with_what_does_not_fit(
        rig: Rig, tiny_gguf: TinyGgufFactory) -> None:
    other = LaunchPlan(model=str(tiny_gguf(filename="other.gguf")), name="other", context=1024)
    started = rig.service.start(other, "local", wait=True, timeout_s=READY_S).backend
    rig.service.stop(started, timeout_s=5)  # now only its saved plan: on demand
    with rig.client() as client:
        streamed(client, "tiny", "Up")  # tiny runs
    rig.settings.set("gateway_ram_budget_mib", 1)  # nothing fits beside anything
    done = threading.Event()
    errors: list[BaseException] = []

    def long_reply() -> None:
        try:
            with rig.client() as client:
                for _ in client.chat.completions.create(
                        model="tiny", messages=[{"role": "user", "content": "Go on"}],
                        max_tokens=2500, stream=True,
                        extra_body={"ignore_eos": True, **GREEDY}):
                    if done.is_set():
                        break
        except BaseException as exc:  # reported below
            errors.append(exc)

    worker = threading.Thread(target=long_reply)
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while not rig.gateway.busy(rig.service.find("tiny")) and time.monotonic() < deadline:
            time.sleep(0.05)
        with rig.client() as client, pytest.raises(openai.InternalServerError) as refused:
            streamed(client, "other", "Me too")
        assert refused.value.status_code == 503
        assert "other does not fit on local" in refused.value.message
        assert "tiny (busy)" in refused.value.message
        assert "Settings → Gateway → RAM for CPU backends" in refused.value.message
    finally:
        done.set()
        worker.join(timeout=60)
        rig.settings.set("gateway_ram_budget_mib", 0)
    assert not errors
    with rig.client() as client:  # idle now, with the budget off: it starts
        assert streamed(client, "other", "Me too")
    rig.service.stop(rig.service.find("other"), timeout_s=5)


def test_the_openai_npm_client_lists_models_and_streams_a_role(rig: Rig, openai_npm: Path,
                                                                tmp_path: Path) -> None:
    (tmp_path / "node_modules").symlink_to(openai_npm)
    script = tmp_path / "client.mjs"
    script.write_text("""
import OpenAI from "openai";
const client = new OpenAI({ baseURL: process.argv[2], apiKey: process.argv[3], maxRetries: 0 });
const ids = [];
for await (const model of client.models.list()) ids.push(model.id);
const stream = await client.chat.completions.create({
  model: "coach", messages: [{ role: "user", content: "Hello there" }], max_tokens: 12,
  stream: true, temperature: 0, top_k: 1, chat_template_kwargs: { enable_thinking: false } });
let text = "";
for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
console.log(JSON.stringify({ ids, text }));
""", encoding="utf-8")
    done = subprocess.run(["node", str(script), rig.url, rig.key], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout)
    assert {"tiny", "coach"} <= set(said["ids"])
    with rig.client() as client:
        assert said["text"] == streamed(client, "coach", "Hello there")


def test_embeddings_reach_a_backend_that_serves_them(rig: Rig, tiny_gguf: TinyGgufFactory
                                                     ) -> None:
    plan = LaunchPlan(model=str(tiny_gguf(filename="embed.gguf")), name="embed", context=512,
                      extra_args=("--embeddings", "--pooling", "mean"))
    backend = rig.service.start(plan, "local", wait=True, timeout_s=READY_S).backend
    try:
        with rig.client() as client:
            vectors = client.embeddings.create(model="embed", input=["one", "two"])
            assert len(vectors.data) == 2
            assert len(vectors.data[0].embedding) == TinyModelSpec().hidden_size
            with pytest.raises(openai.APIStatusError) as refused:  # tiny: no --embeddings
                client.embeddings.create(model="tiny", input="one")
        assert refused.value.status_code in (400, 404, 501)
    finally:
        rig.service.stop(backend, timeout_s=5)
