"""Gateway: one local OpenAI-compatible endpoint for every running model and every role.

The same service runs in the window (the Gateway page) and in `rigdeck serve`. It knows
the backends from the BackendsService (running, and startable from their saved plans),
the roles from the RoleStore and each backend's key from where Rigdeck keeps it; clients
only ever hold gateway keys. A request is routed by its `model` (catalog.py), its backend
started on demand (on_demand.py), queued for a slot (slots.py), shaped for its role
(shaping.py), forwarded, streamed back, and recorded (records.py). The HTTP side is
http_server.py; this module does not know sockets, only a `Responder`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol

from psygnal import Signal

from app.chat.bounds import JSON_BODY_BYTES, loads_bounded
from app.chat.targets import backend_target
from app.errors import UserError
from app.gateway import upstream
from app.gateway.catalog import Route, Served, build_routes, role_slots, served_backends
from app.gateway.keys import GatewayKeys
from app.gateway.on_demand import OnDemand
from app.gateway.records import RequestLog, RequestRecord
from app.gateway.shaping import Shaping, shape_body
from app.gateway.slots import SlotQueue
from app.gateway.wire import GatewayError, bad_key, stream_error_event, unknown_model
from app.presets.thinking import support_from_template
from app.roles.binding import bind_role
from app.roles.requests import BASE_MODEL, role_request
from app.roles.served import LoraApi, ServedLoras
from app.runtime.backend import Backend
from app.runtime.backends_service import BackendsService
from app.runtime.saved_plans import SavedPlans

if TYPE_CHECKING:
    from app.chat.service import ChatService
    from app.paths import AppPaths
    from app.roles.store import RoleStore
    from app.secrets import SecretStore
    from app.settings import SettingsStore

log = logging.getLogger(__name__)

ROUTES_TTL_S = 1.0
"""Roles and saved plans are read from their files at most once a second."""
MAX_BODY_BYTES = 32 * 1024 * 1024
MAX_ANSWER_BYTES = 64 * 1024 * 1024
"""The longest answer that is not a stream (an embeddings batch is the large one)."""
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 300.0
"""The longest silence from a backend (a long prompt on a CPU takes minutes)."""
TAIL_CHUNKS = 8
"""Chunks of a stream kept to read its usage and timings from the last events."""
Sent = Literal["answered", "dropped", "unreachable"]
FORWARDED_PATHS = {"/v1/chat/completions": "chat", "/v1/completions": "completion",
                   "/v1/embeddings": "embedding"}


class Responder(Protocol):
    """The HTTP side of one request, as the service writes its answer."""

    def send_json(self, status: int, body: bytes) -> None: ...
    def begin_stream(self, status: int, content_type: str) -> None: ...
    def write_chunk(self, data: bytes) -> None:
        """Raises OSError: the client went away."""
    def write_framed(self, data: bytes) -> None:
        """Bytes already in chunked framing. Raises OSError: the client went away."""
    def end_stream(self, *, framed: bool = False) -> None:
        """`framed`: the last chunk came with write_framed."""
    def abort(self) -> None:
        """End the connection without a proper end: what was cut is seen as cut."""


@dataclass(frozen=True)
class GatewayOptions:
    """What the settings say (gateway_*), read again at each start and request."""

    queue_limit: int = 64
    start_timeout_s: float = 300.0
    ram_budget_mib: int = 0


@dataclass
class _Binding:
    """What Rigdeck learnt of one running backend, kept until it is replaced."""

    ref: str
    base_url: str
    api_key: str | None
    served: ServedLoras
    shapings: dict[str | None, Shaping]


def is_loopback(address: str) -> bool:
    return address.startswith("127.") or address in ("::1", "localhost")


class Gateway:
    """The Gateway workflow: start/stop the endpoint, route, and report requests."""

    request_started = Signal(object)
    """A RequestRecord, from the request's thread."""
    request_finished = Signal(object)
    state_changed = Signal(str)
    """The base URL while it serves, "" once stopped."""

    def __init__(self, backends: BackendsService, chat: ChatService, *, roles: RoleStore,
                 keys: GatewayKeys, records: RequestLog, saved: SavedPlans,
                 options: Callable[[], GatewayOptions] = GatewayOptions) -> None:
        self.backends = backends
        self.chat = chat
        self.roles = roles
        self.keys = keys
        self.records = records
        self.saved = saved
        self._options = options
        self.on_demand = OnDemand(backends, busy=self.busy,
                                  ram_budget_mib=lambda: self._options().ram_budget_mib)
        self._lock = threading.Lock()
        self._routes: tuple[float, dict[str, Route]] | None = None
        self._bindings: dict[tuple[str, str], _Binding] = {}
        self._queues: dict[tuple[str, str], SlotQueue] = {}
        self._in_flight: dict[tuple[str, str], int] = {}
        self._homes: set[tuple[tuple[str, str], int] | None] = set()
        """Home slots (backend, slot) a request of their role is using now."""
        self._server: Any = None
        self._reaper: threading.Thread | None = None
        self._stopping = threading.Event()
        self.url = ""
        backends.changed.connect(self._on_backends_changed)

    # ------------------------------------------------------------------ lifetime
    def start(self, address: str, port: int) -> str:
        """Listen on address:port; the base URL (…/v1).

        Raises:
            UserError: already serving, the port is taken, or an address beyond this
                computer without any gateway key.
        """
        from app.gateway.http_server import GatewayHttpServer

        if self._server is not None:
            raise UserError(f"the Gateway already serves at {self.url}")
        if not is_loopback(address) and not self.keys.any():
            raise UserError(f"the Gateway would listen on {address}, which other machines "
                            "reach: create a gateway key first (Gateway page → Create key, or "
                            "`rigdeck serve keys create NAME`); every request must bring one")
        self._server = GatewayHttpServer(self, address, port)
        self.url = f"http://{address}:{self._server.port}/v1"
        self._stopping.clear()
        self._server.serve_in_thread()
        self._reaper = threading.Thread(target=self._reap_loop, name="gateway-ttl", daemon=True)
        self._reaper.start()
        log.info("gateway serving at %s", self.url)
        self.state_changed.emit(self.url)
        return self.url

    @property
    def serving(self) -> bool:
        return self._server is not None

    def stop(self) -> None:
        """Stop listening (requests in flight are cut off); backends keep running."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        if self._reaper is not None:
            self._reaper.join(timeout=10)
            self._reaper = None
        self.url = ""
        self.state_changed.emit("")

    def close(self) -> None:
        self.stop()
        self.backends.changed.disconnect(self._on_backends_changed)
        self.records.close()

    def _reap_loop(self) -> None:
        while not self._stopping.wait(2.0):
            try:
                self.on_demand.reap(self._ttl_of)
            except Exception:  # the reaper must outlive one bad round
                log.exception("the gateway's idle check failed")

    def _ttl_of(self, backend: Backend) -> int:
        for saved in self.saved.all():
            if saved.key == backend.key:
                return saved.ttl_s
        return 0

    def _on_backends_changed(self) -> None:
        self._routes = None

    # ------------------------------------------------------------------ routes
    def routes(self) -> dict[str, Route]:
        """Every model id and what it reaches (files read at most once a second)."""
        now = time.monotonic()
        cached = self._routes
        if cached is not None and now - cached[0] < ROUTES_TTL_S:
            return cached[1]
        served = served_backends(self.backends.known(), self.saved.all())
        routes = build_routes(served, self.roles.all().values())
        self._routes = (now, routes)
        return routes

    def models(self) -> dict[str, Any]:
        """`GET /v1/models`: OpenAI's list, with base, role and backend of each id."""
        data = [{"id": r.id, "object": "model", "created": r.served.created,
                 "owned_by": "rigdeck", "rigdeck": r.describe()}
                for r in self.routes().values() if r.listed]
        return {"object": "list", "data": data}

    def route(self, model: object) -> Route:
        """Raises GatewayError: 404 for an id that is not served."""
        routes = self.routes()
        if isinstance(model, str) and model in routes:
            return routes[model]
        if not isinstance(model, str) or not model:
            raise GatewayError(400, "the request names no model; GET /v1/models lists them",
                               param="model", code="model_missing")
        raise unknown_model(model, [r.id for r in routes.values() if r.listed])

    # ------------------------------------------------------------------ requests
    def authorize(self, header: str | None, address: str) -> str:
        """The client's name: its gateway key's name, or "no key" on this computer while
        no key exists.

        Raises:
            GatewayError: 401 for a missing or wrong key.
        """
        token = header.removeprefix("Bearer ").strip() if header else ""
        if not self.keys.any() and is_loopback(address):
            return "no key"
        name = self.keys.check(token)
        if name is None:
            raise bad_key(bool(token))
        return name

    def busy(self, backend: Backend) -> bool:
        """A gateway request or a chat reply is running on it."""
        return self._in_flight.get(backend.key, 0) > 0 or self.chat.streaming_from(backend)

    def handle(self, path: str, raw: bytes, client: str, peer: str, out: Responder) -> None:
        """Answer one POST to an OpenAI path, writing through `out`."""
        record = RequestRecord(client=client, peer=peer, path=path, model="", stream=False)
        try:
            body = _parse(raw)
            record.model = str(body.get("model", ""))
            record.stream = body.get("stream") is True
            route = self.route(body.get("model"))
            record.role = route.role.name if route.role else None
            record.backend, record.host = route.served.name, route.served.host
            self.records.begin(record)
            self.request_started.emit(record)
            self._serve(path, body, route, record, out)
        except GatewayError as exc:
            record.status, record.outcome = exc.status, exc.message
            out.send_json(exc.status, json.dumps(exc.body()).encode("utf-8"))
        finally:
            record.duration_s = time.time() - record.started
            if record.status == 0:
                record.status = 500
            if record.backend is not None:
                self.records.finish(record)
                self.request_finished.emit(record)

    def _serve(self, path: str, body: dict[str, Any], route: Route, record: RequestRecord,
               out: Responder) -> None:
        options = self._options()
        began = time.monotonic()
        for attempt in (1, 2):
            backend = self.on_demand.ensure(route.served, options.start_timeout_s)
            key = backend.key
            queue = self._queue(backend, route.served, options.queue_limit)
            with queue.slot(backend.name, options.start_timeout_s):
                record.waited_s = time.monotonic() - began
                with self._lock:
                    self._in_flight[key] = self._in_flight.get(key, 0) + 1
                home: tuple[tuple[str, str], int] | None = None
                try:
                    binding = self._binding(backend)
                    shaping = self._shaping(binding, route, backend)
                    home = self._claim_home(key, shaping.slot)
                    if home is None:
                        shaping = replace(shaping, slot=None)  # any free slot serves it
                    upstream = shape_body(body, shaping, chat=FORWARDED_PATHS[path] == "chat")
                    sent = self._forward(path, upstream, binding, record, out)
                    if sent == "dropped":  # a kept-alive connection it had just closed
                        sent = self._forward(path, upstream, binding, record, out)
                    if sent == "answered":
                        return
                finally:
                    with self._lock:
                        self._in_flight[key] -= 1
                        self._homes.discard(home)
                    self.on_demand.used(key)
            # nothing answers: the backend died since the last look; look again (it is
            # then started on demand) and try once more
            self.backends.refresh(route.served.host)
            self._bindings.pop(key, None)
            route = self.routes().get(route.id, route)
            if attempt == 2:
                raise GatewayError(502, f"{backend.name} does not answer at "
                                        f"{backend.base_url}", kind="server_error",
                                   code="backend_unreachable")

    def _claim_home(self, key: tuple[str, str], slot: int | None
                    ) -> tuple[tuple[str, str], int] | None:
        """The role's home slot if no request of this Gateway uses it now (a second
        request of the same role goes to any free slot rather than wait for it)."""
        if slot is None:
            return None
        with self._lock:
            if (key, slot) in self._homes:
                return None
            self._homes.add((key, slot))
            return (key, slot)

    def _queue(self, backend: Backend, served: Served, limit: int) -> SlotQueue:
        with self._lock:
            queue = self._queues.get(backend.key)
            slots = served.plan.parallel or 1
            if queue is None or queue.capacity != slots:
                queue = self._queues[backend.key] = SlotQueue(slots, limit)
            queue.max_waiting = limit
            return queue

    # ------------------------------------------------------------------ binding
    def _binding(self, backend: Backend) -> _Binding:
        """What the backend serves, asked once per backend process (blocking: HTTP)."""
        binding = self._bindings.get(backend.key)
        if binding is not None and binding.ref == backend.ref:
            return binding
        api_key = self.backends.api_key(backend)
        try:
            with LoraApi(backend.base_url, api_key) as api:
                served = api.served()
        except UserError as exc:
            raise GatewayError(502, f"{backend.name}: {exc}", kind="server_error",
                               code="backend_unreachable") from exc
        binding = _Binding(backend.ref, backend.base_url, api_key, served, {})
        self._bindings[backend.key] = binding
        return binding

    def _shaping(self, binding: _Binding, route: Route, backend: Backend) -> Shaping:
        name = route.role.name if route.role else None
        shaping = binding.shapings.get(name)
        if shaping is not None:
            return shaping
        support = self.chat.probe(backend_target(backend)) or support_from_template(None)
        served = binding.served
        try:
            if route.role is not None:
                with LoraApi(binding.base_url, binding.api_key) as api:
                    request = bind_role(route.role, api, served=served)
            elif served.engine == "llamacpp" and served.adapters:
                request = role_request(BASE_MODEL, served)
            else:
                request = None
        except UserError as exc:
            raise GatewayError(503, str(exc), kind="server_error",
                               code="role_not_served") from exc
        model = (request.model if request is not None and request.model
                 else served.base_model or route.served.plan.model)
        slot = role_slots(self.routes(), route.served).get(name) if name else None
        shaping = Shaping(model, route.role, request, support, slot)
        binding.shapings[name] = shaping
        return shaping

    # ------------------------------------------------------------------ forwarding
    def _forward(self, path: str, body: dict[str, Any], binding: _Binding,
                 record: RequestRecord, out: Responder) -> Sent:
        """Send `body` to the backend and write its answer; "unreachable" (nothing
        written) when nothing answers there."""
        started = time.monotonic()
        try:
            answer = upstream.post(binding.base_url, path, json.dumps(body).encode("utf-8"),
                                   binding.api_key, connect_timeout_s=CONNECT_TIMEOUT_S,
                                   read_timeout_s=max(READ_TIMEOUT_S,
                                                      self._options().start_timeout_s))
        except upstream.UnreachableError as exc:
            log.info("%s", exc)
            return "unreachable"
        try:
            record.status = answer.status
            if record.stream and answer.status == 200:
                self._relay_stream(answer, record, out, started)
                return "answered"
            try:
                text = answer.body(MAX_ANSWER_BYTES)
            except upstream.UpstreamFailedError as exc:
                record.status, record.outcome = 502, f"backend failed: {exc}"
                raise GatewayError(502, f"{binding.base_url} failed: {exc}",
                                   kind="server_error", code="backend_failed") from exc
            out.send_json(answer.status, text)
            _note_usage(record, text, answer.status)
            return "answered"
        finally:
            answer.close()

    def _relay_stream(self, answer: upstream.Answer, record: RequestRecord, out: Responder,
                      started: float) -> None:
        """Pass the backend's events on as they come (its chunk framing too, unread); a
        backend that goes away ends the stream with an error event."""
        out.begin_stream(200, "text/event-stream")
        watch = _StreamWatch(started)
        try:
            if answer.chunked:
                for data in answer.frames():
                    out.write_framed(data)
                    watch.feed(data)
                out.end_stream(framed=True)
            else:
                for data in answer.pieces():
                    out.write_chunk(data)
                    watch.feed(data)
                out.end_stream()
        except upstream.UpstreamFailedError as exc:
            record.outcome = "the backend went away mid-stream"
            with _client_gone_ok():
                if exc.at_boundary:
                    out.write_chunk(stream_error_event(
                        f"the backend went away mid-stream ({exc}); the next request "
                        "starts it again"))
                    out.end_stream()
                else:
                    out.abort()  # mid-event: only a cut connection says it
            watch.finish(record)
            return
        except OSError:
            record.outcome = "the client went away"  # closing the backend's connection
            watch.finish(record)                      # stops its reply
            return
        record.outcome = "ok"
        watch.finish(record)


@dataclass
class _StreamWatch:
    """Time to first token, tokens and speed from the events going by (their text is only
    looked at until the first token, and for the last event's usage and timings)."""

    started: float
    first: float | None = None
    tail: deque[bytes] = field(default_factory=lambda: deque(maxlen=TAIL_CHUNKS))

    def feed(self, chunk: bytes) -> None:
        if self.first is None and (b'"content":"' in chunk or b'"reasoning_content":"' in chunk
                                   or b'"text":"' in chunk):
            self.first = time.monotonic()
        self.tail.append(chunk)

    def finish(self, record: RequestRecord) -> None:
        end = time.monotonic()
        if self.first is not None:
            record.ttft_s = self.first - self.started
        usage: dict[str, Any] = {}
        timings: dict[str, Any] = {}
        for line in b"".join(self.tail).split(b"\n"):
            if line.startswith(b"data: {"):
                try:
                    event = json.loads(line[6:])
                except ValueError:
                    continue
                usage = event.get("usage") or usage
                timings = event.get("timings") or timings
        _note_tokens(record, usage, timings)
        speed = timings.get("predicted_per_second")
        if isinstance(speed, int | float):
            record.tokens_per_s = float(speed)
        elif record.completion_tokens and self.first is not None and end > self.first:
            record.tokens_per_s = record.completion_tokens / (end - self.first)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _note_usage(record: RequestRecord, answer: bytes, status: int) -> None:
    if status >= 400:
        record.outcome = _error_text(answer) or f"HTTP {status}"
        return
    record.outcome = "ok"
    try:
        data = loads_bounded(answer[:JSON_BODY_BYTES])
    except ValueError:
        return
    if not isinstance(data, dict):
        return
    usage, timings = data.get("usage"), data.get("timings")
    usage = usage if isinstance(usage, dict) else {}
    timings = timings if isinstance(timings, dict) else {}
    _note_tokens(record, usage, timings)
    if isinstance(timings.get("predicted_per_second"), float):
        record.tokens_per_s = timings["predicted_per_second"]


def _note_tokens(record: RequestRecord, usage: dict[str, Any], timings: dict[str, Any]
                 ) -> None:
    """Tokens from OpenAI's `usage` where the client asked for it, else from llama.cpp's
    own `timings` (which every reply carries; cached prompt tokens count too)."""
    prompt = _int(usage.get("prompt_tokens"))
    if prompt is None and _int(timings.get("prompt_n")) is not None:
        prompt = (_int(timings.get("prompt_n")) or 0) + (_int(timings.get("cache_n")) or 0)
    completion = _int(usage.get("completion_tokens"))
    record.prompt_tokens = prompt
    record.completion_tokens = completion if completion is not None else _int(
        timings.get("predicted_n"))


def _error_text(answer: bytes) -> str:
    try:
        data = json.loads(answer[:65536])
        return str(data["error"]["message"])[:300]
    except (ValueError, KeyError, TypeError):
        return answer[:300].decode("utf-8", errors="replace")


def _parse(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_BODY_BYTES:
        raise GatewayError(413, f"the request body is larger than {MAX_BODY_BYTES >> 20} MiB")
    try:
        body = loads_bounded(raw)
    except ValueError as exc:
        raise GatewayError(400, f"the request body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise GatewayError(400, "the request body must be a JSON object")
    return body


class _client_gone_ok:  # noqa: N801 (used as a context manager, named like contextlib's)
    """Writing to a client that has gone is not an error worth more than a log line."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> bool:
        return kind is not None and issubclass(kind, OSError)


def build_gateway(paths: AppPaths, settings: SettingsStore, backends: BackendsService, *,
                  chat: ChatService, roles: RoleStore, secrets: SecretStore) -> Gateway:
    """The Gateway of one run of Rigdeck (the window's, or `rigdeck serve`'s), its options
    read from the settings at each request, so a change applies to the next one."""
    if backends.saved_plans is None:
        raise ValueError("the Gateway needs a BackendsService that saves plans")

    def options() -> GatewayOptions:
        return GatewayOptions(queue_limit=settings.get("gateway_queue_limit"),
                              start_timeout_s=settings.get("gateway_start_timeout_s"),
                              ram_budget_mib=settings.get("gateway_ram_budget_mib"))

    return Gateway(backends, chat, roles=roles,
                   keys=GatewayKeys(paths.config / "gateway_keys.toml", secrets),
                   records=RequestLog(paths.data / "gateway.sqlite3"),
                   saved=backends.saved_plans, options=options)
