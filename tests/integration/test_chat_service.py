"""The chat service against real backends: a backend Rigdeck started (or finds again) is a
chat target whose key the user never sees; a relaunch with another expert count reaches
the server's own log, and the conversation goes on."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.chat.service import ChatService
from app.chat.session import TurnSettings
from app.engines.plan import LaunchPlan
from app.errors import UserError
from app.paths import AppPaths
from app.runtime.backends_service import BackendsService
from app.runtime.hosts import processes_host
from app.runtime.keys import KeyKeeper
from app.secrets import SecretStore
from tests.realparts.fixtures import TinyGgufFactory
from tests.realparts.gguf_factory import TinyModelSpec
from tests.realparts.leak_guard import LeakGuard

READY_S = 120.0
MakeBackends = Callable[[], BackendsService]


@pytest.fixture
def make_backends(tmp_path: Path, llama_server_binary: Path, leak_guard: LeakGuard
                  ) -> Iterator[Callable[[], BackendsService]]:
    """BackendsServices of separate Rigdeck runs sharing the process host's run folder
    (what they started is stopped before the leak guard looks)."""
    del leak_guard
    made: list[BackendsService] = []

    def make() -> BackendsService:
        service = BackendsService([processes_host()], KeyKeeper(SecretStore()),
                                  run_dir=tmp_path / "run",
                                  llama_server_path=str(llama_server_binary))
        made.append(service)
        return service

    yield make
    for service in made:
        for backend in service.refresh():
            service.stop(backend, timeout_s=5)
        service.close()


def _answer(chat: ChatService, conversation: int | None, text: str, name: str
            ) -> tuple[int, str]:
    target = chat.resolve(name)
    run = chat.send(conversation, text, target,
                    TurnSettings(thinking=False, max_tokens=8, sampling={"temperature": 0.0}))
    try:
        result = run.run()
    finally:
        run.close()
    assert result.reply.error is None, result.reply.error
    assert result.message.content
    return run.conversation_id, result.message.content


@pytest.mark.integration
@pytest.mark.usefixtures("no_keyring")
def test_a_backend_rigdeck_runs_is_a_target_found_again_by_a_new_run(
        app_paths: AppPaths, make_backends: MakeBackends, tiny_gguf: TinyGgufFactory,
        leak_guard: LeakGuard) -> None:
    backends = make_backends()
    chat = ChatService(app_paths, SecretStore(), backends)
    chat.endpoints.save("elsewhere", "http://127.0.0.1:9")
    model = tiny_gguf()
    port = leak_guard.free_port()
    backends.start(LaunchPlan(model=str(model), name="tiny", context=1024, threads=1,
                              port=port), "processes", wait=True, timeout_s=READY_S)
    try:
        targets = chat.targets()
        assert [(t.name, t.kind) for t in targets] == [("tiny", "backend"),
                                                        ("elsewhere", "endpoint")]
        assert targets[0].label == f"tiny — {model.name} on processes (roles: prompt only)"
        # typing its URL finds the backend, key and all: no 401
        assert chat.resolve(f"http://127.0.0.1:{port}").kind == "backend"
        conversation, _ = _answer(chat, None, "Hello", "tiny")
        with pytest.raises(UserError, match="no running backend or saved endpoint named"):
            chat.resolve("nothing-here")
    finally:
        chat.close()

    # A new Rigdeck run (no keyring: the key is read back from the process's environment)
    # finds the backend and the conversation goes on with it.
    again = make_backends()
    again.refresh()
    chat = ChatService(app_paths, SecretStore(), again)
    try:
        assert chat.resolve("tiny").backend is not None
        same, _ = _answer(chat, conversation, "And again", "tiny")
        assert same == conversation
        roles = [m.role for m in chat.history.messages(conversation)]
        assert roles == ["user", "assistant", "user", "assistant"]
    finally:
        chat.close()


@pytest.mark.integration
def test_a_moe_backend_relaunched_with_four_experts_uses_four(
        app_paths: AppPaths, make_backends: MakeBackends, tiny_gguf: TinyGgufFactory,
        leak_guard: LeakGuard) -> None:
    backends = make_backends()
    chat = ChatService(app_paths, SecretStore(), backends)
    model = tiny_gguf(TinyModelSpec(arch="qwen3moe", experts=8, experts_used=2))
    port = leak_guard.free_port()
    backends.start(LaunchPlan(model=str(model), name="moe", context=1024, threads=1,
                              port=port), "processes", wait=True, timeout_s=READY_S)
    try:
        conversation, _ = _answer(chat, None, "Hello", "moe")
        offer = chat.expert_offer(chat.resolve("moe"))
        assert (offer.default, offer.current) == (2, 2)
        assert [o.count for o in offer.options] == list(range(1, 9))
        target = chat.relaunch_with_experts(chat.resolve("moe"), 4)
        assert target.backend is not None
        assert target.url == f"http://127.0.0.1:{port}/v1"  # same port: same conversation
        assert re.search(r"n_expert_used +=  *4\b", backends.log_tail(target.backend, 400))
        assert chat.expert_offer(target).current == 4
        same, _ = _answer(chat, conversation, "Go on", "moe")
        assert same == conversation
        with pytest.raises(UserError, match="1…8"):
            chat.relaunch_with_experts(target, 9)
    finally:
        chat.close()
