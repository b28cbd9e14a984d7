"""ChatService: the Chat workflow, the same for the Chat page and `rigdeck chat`.

It owns what a conversation needs — the history, the presets, the saved endpoints, the
thinking-switch memory — and knows the running backends from the BackendsService, so
every backend Rigdeck runs (container or process, started now or found again) is a chat
target whose API key comes from where Rigdeck keeps it. It builds the one client a turn
uses, so a probe and a reply can never disagree about a server's key.

Blocking calls (HTTP, the keyring, reading a model's header, a relaunch) are marked; the
GUI runs them on its task runner, the CLI directly.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from app.chat.base_url import normalise_base_url
from app.chat.bounds import MAX_REPLY_MIB
from app.chat.endpoints import EndpointStore
from app.chat.export import ReasoningExport, export_to_file
from app.chat.history import HistoryStore, Message
from app.chat.targets import ChatTarget, backend_target, endpoint_target
from app.errors import UserError
from app.paths import AppPaths
from app.presets.experts import ExpertOffer, expert_offer
from app.presets.presets import PresetStore
from app.presets.thinking import ThinkingMemory, ThinkingSupport, support_from_template
from app.runtime.backend import Backend, BackendState
from app.runtime.backends_service import BackendsService
from app.secrets import SecretStore

if TYPE_CHECKING:  # httpx, behind the client, is imported on first use (start-up time)
    from app.chat.client import ChatClient, Timeouts
    from app.chat.session import ReplyRun, TurnSettings

log = logging.getLogger(__name__)

TITLE_CHARS = 60


def conversation_title(text: str) -> str:
    """A conversation's title from its first message."""
    line = " ".join(text.split())
    return line[:TITLE_CHARS] + ("…" if len(line) > TITLE_CHARS else "") or "Untitled"


class ChatService:
    """Conversations with the running backends and saved endpoints."""

    def __init__(self, paths: AppPaths, secrets: SecretStore, backends: BackendsService, *,
                 history: HistoryStore | None = None,
                 max_reply_mib: float = MAX_REPLY_MIB) -> None:
        self.history = history if history is not None else HistoryStore.in_data_folder(paths.data)
        self.presets = PresetStore(paths.config / "presets")
        self.endpoints = EndpointStore(paths.config / "endpoints.toml", secrets)
        self.memory = ThinkingMemory(paths.data / "thinking_switch.json")
        self.backends = backends
        self.max_reply_mib = max_reply_mib
        """The longest reply kept (the setting chat_max_reply_mib), for the next client."""
        self._support: dict[str, ThinkingSupport] = {}
        self._streams: dict[ReplyRun, tuple[str, str]] = {}
        """Runs begun for a backend Rigdeck runs, with its (host, name), until they end."""
        self._streams_lock = threading.Lock()

    def close(self) -> None:
        self.history.close()

    # ------------------------------------------------------------------ targets
    def running_backends(self) -> list[Backend]:
        """Rigdeck's live backends on every host, as the last refresh found them."""
        return [b for b in self.backends.known() if b.managed and b.state.is_live]

    def targets(self) -> list[ChatTarget]:
        """The picker's list: running backends first (ready ones before loading ones),
        then the saved endpoints."""
        running = self.running_backends()
        names = [b.name for b in running]
        backends = [backend_target(b, qualified=names.count(b.name) > 1) for b in running]
        backends.sort(key=lambda t: (t.backend is not None
                                     and t.backend.state is not BackendState.READY))
        return backends + [endpoint_target(e) for e in self.endpoints.all()]

    def resolve(self, text: str) -> ChatTarget:
        """The target the user means: a running backend by name (or host/name) first,
        then a saved endpoint, then a URL (the backend serving it, if Rigdeck runs one).

        Raises:
            UserError: nothing of that name runs or is saved, and it is no URL.
        """
        text = text.strip()
        if not text:
            raise UserError("choose a backend: a running one, a saved endpoint or a URL")
        targets = self.targets()
        for target in targets:
            backend = target.backend
            if target.name == text or (backend and f"{backend.host}/{backend.name}" == text):
                return target
        running = [t for t in targets if t.kind == "backend"]
        for target in running:  # "qwen3" where it runs on two hosts: ambiguous
            if target.backend is not None and target.backend.name == text:
                names = [t.name for t in running if t.backend and t.backend.name == text]
                raise UserError(f"{text!r} runs on several hosts; choose {' or '.join(names)}")
        try:
            url = normalise_base_url(text)
        except ValueError:
            listed = ", ".join(t.name for t in targets) or "none running or saved"
            raise UserError(f"no running backend or saved endpoint named {text!r} "
                            f"({listed}); start one on the Backends page (rigdeck up) or "
                            "give a URL such as http://127.0.0.1:8080") from None
        for target in running:
            if target.url == url:
                return target
        return ChatTarget(text, url, "url")

    def current(self, target: ChatTarget) -> ChatTarget:
        """`target` as it is now: a relaunched backend is a new object with a new key."""
        if target.kind != "backend" or target.backend is None:
            return target
        backend = self.backends.get(*target.backend.key)
        return replace(target, backend=backend) if backend is not None else target

    def api_key(self, target: ChatTarget) -> str | None:
        """The key the target's server wants (blocking: may ask the keyring)."""
        if target.kind == "backend" and target.backend is not None:
            return self.backends.api_key(self.current(target).backend or target.backend)
        if target.endpoint is not None:
            return self.endpoints.api_key(target.endpoint)
        return None

    def client(self, target: ChatTarget, timeouts: Timeouts | None = None) -> ChatClient:
        """The client for `target`, with its key (blocking: may ask the keyring)."""
        from app.chat.client import ChatClient

        return ChatClient(target.url, self.api_key(target), timeouts,
                          max_reply_mib=self.max_reply_mib)

    def probe(self, target: ChatTarget) -> ThinkingSupport | None:
        """How the target switches thinking; None when nothing answers (blocking: HTTP)."""
        with self.client(self.current(target)) as client:
            if not client.reachable():
                return None
            return self.probe_with(client, target)

    def probe_with(self, client: ChatClient, target: ChatTarget) -> ThinkingSupport:
        """How the target switches thinking, asked through `client` (blocking: HTTP)."""
        from app.chat.session import detect_support

        support = detect_support(client, target.name, self.memory)
        self._support[target.name] = support
        return support

    def support(self, target: ChatTarget) -> ThinkingSupport:
        """What the last probe of `target` found (unprobed: "send and check")."""
        return self._support.get(target.name) or support_from_template(None)

    # ------------------------------------------------------------------ turns
    def send(self, conversation_id: int | None, text: str, target: ChatTarget,
             settings: TurnSettings, *, replacing: int | None = None,
             client: ChatClient | None = None) -> ReplyRun:
        """Store the user's message (replacing message `replacing` and what followed it)
        and begin the reply; the run's conversation is a new one when `conversation_id`
        is None."""
        preset = settings.preset.name if settings.preset else None
        if conversation_id is None:
            conversation_id = self.history.create_conversation(
                conversation_title(text), endpoint=target.name, model=settings.model,
                preset=preset).id
        elif replacing is not None:
            self.history.delete_messages_from(replacing)
        self.history.set_conversation_settings(conversation_id, endpoint=target.name,
                                               model=settings.model, preset=preset)
        self.history.add_message(conversation_id, "user", text)
        return self.reply(conversation_id, target, settings, client=client)

    def regenerate(self, conversation_id: int, target: ChatTarget, settings: TurnSettings
                   ) -> ReplyRun | None:
        """Ask again for the last reply (it is replaced); None when there is nothing to
        answer."""
        messages = self.history.messages(conversation_id)
        if messages and messages[-1].role == "assistant":
            self.history.delete_messages_from(messages[-1].id)
        if not self.history.messages(conversation_id):
            return None
        return self.reply(conversation_id, target, settings)

    def reply(self, conversation_id: int, target: ChatTarget, settings: TurnSettings, *,
              client: ChatClient | None = None) -> ReplyRun:
        """The run that streams the next reply; the caller iterates it, then closes it."""
        from app.chat.session import ReplyRun, build_request

        support = self.support(target)
        request = build_request(self.history.messages(conversation_id), settings, support)
        run = ReplyRun(client or self.client(self.current(target)), self.history,
                       conversation_id, request, settings, endpoint=target.name,
                       support=support, memory=self.memory)
        if target.kind == "backend" and target.backend is not None:
            with self._streams_lock:
                self._streams[run] = target.backend.key
        return run

    def streaming_from(self, backend: Backend) -> bool:
        """Whether a reply is streaming from `backend` now (any thread): stopping it
        would cut that reply off, so the GUI asks first."""
        with self._streams_lock:
            for run in [r for r in self._streams if r.ended]:
                del self._streams[run]
            return backend.key in self._streams.values()

    def last_user_message(self, conversation_id: int) -> Message | None:
        """What Edit puts back into the box."""
        users = [m for m in self.history.messages(conversation_id) if m.role == "user"]
        return users[-1] if users else None

    def export(self, path: Path, fmt: str, ids: list[int] | None = None, *,
               reasoning: ReasoningExport = "omit") -> int:
        """Write conversations (all, or `ids`) as JSONL or Markdown; how many went in
        (every one asked for).

        Raises:
            UserError: an id of no stored conversation, or the file cannot be written.
        """
        return export_to_file(self.history, path, fmt, ids, reasoning)

    def save_endpoint(self, name: str, url: str, api_key: str | None) -> ChatTarget:
        """Raises UserError: a bad URL, a name a running backend has, or no keyring."""
        if any(t.name == name for t in self.targets() if t.kind == "backend"):
            raise UserError(f"a running backend is called {name!r}; save the endpoint "
                            "under another name")
        return endpoint_target(self.endpoints.save(name, url, api_key))

    # ------------------------------------------------------------------ experts
    def expert_offer(self, target: ChatTarget) -> ExpertOffer:
        """Which expert counts the target can be relaunched with, and their memory
        effect (blocking for a backend: reads the model's header and runs the fit
        planner; a URL or endpoint has no plan, and its reason comes back at once)."""
        target = self.current(target)
        return expert_offer(target.plan, target.name if target.kind != "backend" else None)

    def relaunch_with_experts(self, target: ChatTarget, count: int | None) -> ChatTarget:
        """Relaunch the target's backend with `count` experts per token (None: the
        model's default) and wait until it is ready; the conversation goes on with it.

        Raises:
            UserError: not a backend Rigdeck started, a count out of range, or the
                relaunch failed (the message says why).
        """
        target = self.current(target)
        backend, plan = target.backend, target.plan
        if backend is None or plan is None:
            raise UserError(f"{target.name} is not a backend Rigdeck started; only those "
                            "can be relaunched with another expert count")
        offer = expert_offer(plan, None)
        offer.check(count)
        if count == offer.default:
            count = None
        started = self.backends.relaunch(backend, replace(plan, experts=count), wait=True)
        self._support.pop(target.name, None)
        return replace(target, backend=started.backend)
