"""Roles against a real llama-server: two real GGUF LoRA adapters preloaded by the launch
flags Rigdeck writes, swapped per request without a restart.

The tiny model's weights are random, so the test compares greedy outputs (temperature 0,
top_k 1): the adapters (seeds 11 and 22, every attention projection, role scale 16) move
the very first tokens, so base, role A and role B answer differently. The server's own
/slots (with LLAMA_SERVER_SLOTS_DEBUG=1) shows the prompt and LoRA scales it really used.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import httpx
import psutil
import pytest

from app.chat.client import ChatClient
from app.chat.endpoints import EndpointStore
from app.chat.history import HistoryStore
from app.chat.session import ReplyRun, TurnSettings, build_request, detect_support
from app.engines import llamacpp
from app.engines.plan import LaunchPlan
from app.errors import UserError
from app.library.loader import load_entry
from app.paths import AppPaths
from app.roles.binding import bind_role, read_adapters
from app.roles.launch import plan_with_roles, relaunch_with_roles
from app.roles.role import Role, RoleAdapter, RoleError
from app.roles.served import LoraApi
from app.roles.store import RoleStore
from app.runtime.backend import Backend
from app.runtime.backends_service import BackendsService
from app.runtime.hosts import PROCESSES, processes_host
from app.runtime.keys import KeyKeeper
from app.secrets import SecretStore
from tests.realparts.fixtures import TinyGgufFactory
from tests.realparts.gguf_factory import LORA_TARGETS, TinyModelSpec
from tests.realparts.leak_guard import LeakGuard
from tests.unit.app.chat.llama_process import llama_server

pytestmark = pytest.mark.integration

GREEDY: dict[str, float | int] = {"temperature": 0.0, "top_k": 1}
SCALE = 16.0


@dataclass
class Rig:
    url: str
    roles: dict[str, Role]
    other_adapter: Path
    """A compatible adapter that was not preloaded."""


def lora_flags(plan: LaunchPlan) -> list[str]:
    """The `--lora …` part of the command line Rigdeck's recipe writes for `plan`."""
    args = list(llamacpp.recipe(plan, port=8080, in_container=False).args)
    first = args.index("--lora")
    return args[first:args.index("--lora-init-without-apply") + 1]


@pytest.fixture(scope="module")
def rig(llama_server_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    factory = TinyGgufFactory(tmp_path_factory.mktemp("role-models"))
    spec = TinyModelSpec()
    model = factory(spec)
    coach = factory.lora(spec, rank=8, targets=LORA_TARGETS, seed=11, filename="coach.gguf")
    tutor = factory.lora(spec, rank=8, targets=LORA_TARGETS, seed=22, filename="tutor.gguf")
    other = factory.lora(spec, rank=8, targets=LORA_TARGETS, seed=33, filename="other.gguf")
    roles = {
        "Coach": Role("Coach", adapters=(RoleAdapter(str(coach), SCALE),),
                      system_prompt="You are a sports coach.", sampling=GREEDY),
        "Tutor": Role("Tutor", adapters=(RoleAdapter(str(tutor), SCALE),),
                      system_prompt="You are a physics tutor.", sampling=GREEDY),
        "Plain": Role("Plain", sampling=GREEDY),
    }
    launch = plan_with_roles(LaunchPlan(model=str(model)), roles.values(),
                             model=load_entry(model), adapters=read_adapters(roles.values()))
    assert launch.roles == ("Coach", "Tutor")
    with llama_server(llama_server_binary, model, extra=lora_flags(launch.plan),
                      env={"LLAMA_SERVER_SLOTS_DEBUG": "1"}) as url:
        yield Rig(url, roles, other)


def server_pid(url: str) -> int:
    port = urlparse(url).port
    pids = {c.pid for c in psutil.net_connections("tcp")
            if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN}
    assert len(pids) == 1, pids
    pid = pids.pop()
    assert pid is not None
    return pid


def ask(url: str, role: Role, prompt: str = "Hello there") -> tuple[str, str]:
    """One greedy reply under `role`, through the same code the Chat page uses."""
    store = HistoryStore(None)
    try:
        chat = store.create_conversation(prompt)
        store.add_message(chat.id, "user", prompt)
        with LoraApi(url) as api, ChatClient(url) as client:
            settings = TurnSettings(role=bind_role(role, api), max_tokens=12)
            support = detect_support(client, url)
            request = build_request(store.messages(chat.id), settings, support)
            result = ReplyRun(client, store, chat.id, request, settings, endpoint=url,
                              support=support).run()
        assert result.reply.ok, result.reply.error
        assert result.message.role_name == role.name
        return result.reply.answer, result.reply.reasoning
    finally:
        store.close()


def last_slot(url: str) -> dict[str, object]:
    slots = httpx.get(f"{url}/slots", timeout=10).json()
    slot: dict[str, object] = slots[0]
    return slot


def test_each_role_answers_differently_and_swapping_needs_no_restart(rig: Rig) -> None:
    pid = server_pid(rig.url)
    first = {name: ask(rig.url, role) for name, role in rig.roles.items()}
    assert first["Coach"] != first["Plain"]
    assert first["Tutor"] != first["Plain"]
    assert first["Coach"] != first["Tutor"]
    for name in ("Tutor", "Coach", "Plain", "Coach", "Tutor"):
        assert ask(rig.url, rig.roles[name]) == first[name], name
    assert server_pid(rig.url) == pid


def test_each_request_carries_its_roles_system_prompt_and_scales(rig: Rig) -> None:
    expected = {"Coach": ("You are a sports coach.", [SCALE, 0.0]),
                "Tutor": ("You are a physics tutor.", [0.0, SCALE]),
                "Plain": (None, [0.0, 0.0])}
    for name, (system, scales) in expected.items():
        ask(rig.url, rig.roles[name], f"Which role is {name}?")
        slot = last_slot(rig.url)
        prompt = str(slot["prompt"])
        assert f"Which role is {name}?" in prompt
        if system is not None:
            assert system in prompt
        for other_name, (other_system, _) in expected.items():
            if other_system is not None and other_name != name:
                assert other_system not in prompt, (name, other_name)
        params = slot["params"]
        assert isinstance(params, dict)
        assert [entry["scale"] for entry in params["lora"]] == scales


def test_a_role_whose_adapter_is_not_preloaded_says_so(rig: Rig) -> None:
    late = Role("Late", adapters=(RoleAdapter(str(rig.other_adapter)),))
    with LoraApi(rig.url) as api, pytest.raises(RoleError, match="not loaded: other"):
        bind_role(late, api)
    gone = Role("Gone", adapters=(RoleAdapter(str(rig.other_adapter.with_name("x.gguf"))),))
    with LoraApi(rig.url) as api, pytest.raises(RoleError, match="adapter file missing"):
        bind_role(gone, api)
    answer, reasoning = ask(rig.url, rig.roles["Coach"])  # the server is unharmed
    assert answer or reasoning


def test_cli_chat_with_a_role_and_roles_json(rig: Rig, app_paths: AppPaths) -> None:
    store = RoleStore(app_paths.config / "roles")
    store.save(rig.roles["Coach"])
    run = [sys.executable, "-m", "app"]
    listed = subprocess.run([*run, "roles", "--json", "--url", rig.url], capture_output=True,
                            text=True, timeout=60, check=True)
    rows = {row["name"]: row for row in json.loads(listed.stdout)["roles"]}
    assert rows["Coach"]["available"] is True
    assert rows["Plain"]["available"] is True
    chat = subprocess.run([*run, "chat", "--url", rig.url, "--role", "Coach", "--max-tokens",
                           "12", "--hide-reasoning", "Hello there"], capture_output=True,
                          text=True, timeout=60)
    assert chat.returncode == 0, chat.stderr
    assert last_slot(rig.url)["params"]["lora"][0]["scale"] == SCALE  # type: ignore[index]
    plain = subprocess.run([*run, "chat", "--url", rig.url, "--max-tokens", "4", "Hello"],
                           capture_output=True, text=True, timeout=60)
    assert plain.returncode == 0, plain.stderr
    # no role: the preloaded adapters are sent at scale 0, not left at their load scale
    assert [e["scale"] for e in last_slot(rig.url)["params"]["lora"]] == [0.0, 0.0]  # type: ignore[index]
    bad = subprocess.run([*run, "chat", "--url", rig.url, "--role", "Nobody", "hi"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert "no role named 'Nobody'" in bad.stderr


def test_roles_and_chat_backend_take_a_saved_endpoint_by_name(rig: Rig,
                                                              app_paths: AppPaths) -> None:
    RoleStore(app_paths.config / "roles").save(rig.roles["Coach"])
    EndpointStore(app_paths.config / "endpoints.toml", SecretStore()).save("rig", rig.url)
    run = [sys.executable, "-m", "app"]
    listed = subprocess.run([*run, "roles", "--json", "--backend", "rig"], capture_output=True,
                            text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)["roles"]}
    assert rows["Coach"]["available"] is True
    chat = subprocess.run([*run, "chat", "--backend", "rig", "--no-save", "--max-tokens", "4",
                           "Hello"], capture_output=True, text=True, timeout=60)
    assert chat.returncode == 0, chat.stderr
    for command in (["roles", "--backend", "nobody"], ["chat", "--backend", "nobody", "hi"]):
        unknown = subprocess.run([*run, *command], capture_output=True, text=True, timeout=60)
        assert unknown.returncode == 2
        said = unknown.stderr
        assert "no running backend or saved endpoint named 'nobody' (" in said
        listed_names = said.split(" (", 1)[1].split(")", 1)[0].split(", ")
        assert "rig" in listed_names  # and the backends of others sharing the engine


def test_relaunch_with_a_role_preloads_its_adapter(
        llama_server_binary: Path, tiny_gguf: TinyGgufFactory, tmp_path: Path,
        leak_guard: LeakGuard) -> None:
    """The one-click fix: a backend Rigdeck started (a local process here) that lacks a
    role's adapter is stopped and started again with it; then the role is served."""
    model = tiny_gguf()
    adapter = tiny_gguf.lora(rank=8, targets=LORA_TARGETS, seed=11, filename="coach.gguf")
    role = Role("Coach", adapters=(RoleAdapter(str(adapter), SCALE),), sampling=GREEDY)
    service = BackendsService([processes_host()], KeyKeeper(SecretStore()),
                              run_dir=tmp_path / "run",
                              llama_server_path=str(llama_server_binary))
    plan = LaunchPlan(model=str(model), name="roles-relaunch", context=512, threads=1,
                      port=leak_guard.free_port())
    live: list[Backend] = []
    try:
        backend = service.start(plan, PROCESSES, wait=True).backend
        live.append(backend)
        with LoraApi(backend.base_url, backend.api_key) as api, pytest.raises(
                RoleError, match="not loaded: coach was not preloaded"):
            bind_role(role, api)
        relaunched = relaunch_with_roles(service, backend, [role]).backend
        live.append(relaunched)
        service.wait_ready(relaunched)
        assert relaunched.port == backend.port  # the same address: the chat keeps working
        assert LaunchPlan.from_json(relaunched.plan_json).adapters == (str(adapter),)
        with LoraApi(relaunched.base_url, relaunched.api_key) as api:
            assert bind_role(role, api).extra == {"lora": [{"id": 0, "scale": SCALE}]}
    finally:
        for started in live:
            if started.state.is_live:
                service.stop(started)
        service.close()


def test_an_adapter_the_engine_refuses_is_named_with_the_model(
        llama_server_binary: Path, tiny_gguf: TinyGgufFactory, tmp_path: Path,
        leak_guard: LeakGuard) -> None:
    """A plan that still carries an adapter for another architecture (a plan file, extra
    care skipped): llama-server exits with only "model loading error"; the backend's reason
    names the adapter and the model."""
    model = tiny_gguf(TinyModelSpec(arch="qwen3moe"), filename="tiny-moe.gguf")
    dense = tiny_gguf.lora(TinyModelSpec(arch="qwen3"), filename="qwen3-lora.gguf")
    service = BackendsService([processes_host()], KeyKeeper(SecretStore()),
                              run_dir=tmp_path / "run",
                              llama_server_path=str(llama_server_binary))
    plan = LaunchPlan(model=str(model), name="refused", context=512, threads=1,
                      port=leak_guard.free_port(), adapters=(str(dense),))
    try:
        backend = service.start(plan, PROCESSES).backend
        with pytest.raises(UserError) as failed:
            service.wait_ready(backend)
        assert "exiting due to model loading error" in service.log_tail(backend)
        assert backend.reason == (
            "adapter qwen3-lora.gguf does not fit model tiny-moe.gguf: it was made for "
            "another architecture; start without it (leave its role out) or with the model "
            "it was made for")
        assert backend.reason in str(failed.value)
    finally:
        for found in service.refresh():
            if found.state.is_live:
                service.stop(found)
        service.close()


def test_cli_up_with_roles_preloads_fitting_roles_only(
        llama_server_binary: Path, tiny_gguf: TinyGgufFactory, app_paths: AppPaths,
        leak_guard: LeakGuard) -> None:
    """`rigdeck up --with-roles` as a user runs it: the fitting role is served, the one
    for another base is left out with the reason; `rigdeck down` stops it."""
    model = tiny_gguf()
    coach = tiny_gguf.lora(rank=8, targets=LORA_TARGETS, seed=11, filename="coach.gguf")
    wide = tiny_gguf.lora(TinyModelSpec(hidden_size=128, head_dim=32), filename="wide.gguf")
    store = RoleStore(app_paths.config / "roles")
    store.save(Role("Coach", adapters=(RoleAdapter(str(coach)),)))
    store.save(Role("Wide", adapters=(RoleAdapter(str(wide)),)))
    (app_paths.config / "settings.toml").write_text(
        f'llama_server_path = "{llama_server_binary}"\n', encoding="utf-8")
    run = [sys.executable, "-m", "app"]
    up = subprocess.run([*run, "up", "--model", str(model), "--host", "processes",
                         "--name", "roles-cli", "--ctx", "512", "--threads", "1",
                         "--port", str(leak_guard.free_port()), "--with-roles"],
                        capture_output=True, text=True, timeout=180)
    try:
        assert up.returncode == 0, up.stderr
        assert "roles preloaded: Coach" in up.stdout
        assert "role 'Wide' left out: incompatible base: hidden size 128 ≠ 64" in up.stdout
        url = next(line.split(" at ")[1] for line in up.stdout.splitlines()
                   if line.startswith("ready:"))
        by_url = subprocess.run([*run, "roles", "--url", url], capture_output=True,
                                text=True, timeout=60)  # a Rigdeck backend's key is found
        assert by_url.returncode == 0, by_url.stderr
        wrong = subprocess.run([*run, "roles", "--url", url, "--api-key-env", "WRONG_KEY"],
                               capture_output=True, text=True, timeout=60,
                               env={**os.environ, "WRONG_KEY": "not-its-key"})
        assert wrong.returncode == 2
        assert "a wrong or missing API key" in wrong.stderr
        # a saved endpoint of the same name, where nothing answers: the running backend
        # comes first, for roles as for chat
        EndpointStore(app_paths.config / "endpoints.toml", SecretStore()).save(
            "roles-cli", "http://127.0.0.1:9")
        for name in ("roles-cli", "processes/roles-cli"):
            listed = subprocess.run([*run, "roles", "--json", "--backend", name],
                                    capture_output=True, text=True, timeout=60)
            assert listed.returncode == 0, listed.stderr
            rows = {row["name"]: row for row in json.loads(listed.stdout)["roles"]}
            assert rows["Coach"]["available"] is True
            assert rows["Wide"]["reason"] == "incompatible base: hidden size 128 ≠ 64"
            chat = subprocess.run([*run, "chat", "--backend", name, "--no-save",
                                   "--max-tokens", "4", "Hello"],
                                  capture_output=True, text=True, timeout=60)
            assert chat.returncode == 0, chat.stderr
    finally:
        down = subprocess.run([*run, "down", "roles-cli", "--host", "processes"],
                              capture_output=True, text=True, timeout=60)
        assert down.returncode == 0, down.stderr
