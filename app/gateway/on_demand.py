"""Starting a backend when a request asks for it, making room for it, and stopping it when
it has been idle for its plan's TTL.

A start happens only where the fit planner says the plan fits beside what runs: on GPUs,
the free memory NVML reports now (BackendsService.check_fit); for a CPU-only plan, the RAM
budget of the setting gateway_ram_budget_mib, against the estimates (or measured memory)
of the CPU backends running on that host. Where it does not fit, idle backends on the same
GPUs (or, for a CPU plan, the same host's CPU backends) are stopped, the one used longest
ago first; where that is not enough, the request gets a 503 that says what does not fit.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from app.errors import UserError
from app.gateway.catalog import Served
from app.gateway.wire import GatewayError
from app.runtime.backend import Backend, BackendState
from app.runtime.backends_service import BackendsService, WillNotFitError
from app.runtime.fit_check import host_need_mib
from app.settings import setting_place

log = logging.getLogger(__name__)


class OnDemand:
    """Starts, evicts and reaps the Gateway's backends; safe from any request thread."""

    def __init__(self, backends: BackendsService, *, busy: Callable[[Backend], bool],
                 ram_budget_mib: Callable[[], int]) -> None:
        self.backends = backends
        self._busy = busy
        self._ram_budget_mib = ram_budget_mib
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self.last_used: dict[tuple[str, str], float] = {}

    def used(self, key: tuple[str, str]) -> None:
        """A request to that backend just ended."""
        self.last_used[key] = time.time()

    def _lock(self, key: tuple[str, str]) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(key, threading.Lock())

    def ensure(self, served: Served, timeout_s: float) -> Backend:
        """The ready backend of `served`, started from its saved plan if needed (waiting
        at most `timeout_s` for it to load).

        Raises:
            GatewayError: 503 — no saved plan, it does not fit, or it failed to start.
        """
        backend = self._live(served)
        if backend is not None and backend.state is BackendState.READY:
            return backend
        with self._lock(served.key):
            backend = self._live(served)
            if backend is None:
                backend = self._start(served, timeout_s)
            try:
                return self.backends.wait_ready(backend, timeout_s)
            except UserError as exc:
                raise GatewayError(503, f"{served.name} did not become ready: {exc}",
                                   kind="server_error", code="backend_not_ready") from exc

    def _live(self, served: Served) -> Backend | None:
        backend = self.backends.get(served.host, served.name)
        return backend if backend is not None and backend.state.is_live else None

    def _start(self, served: Served, timeout_s: float) -> Backend:
        if served.saved is None:
            raise GatewayError(503, f"{served.name} is not running and Rigdeck has no saved "
                                    "plan to start it from", kind="server_error",
                               code="backend_not_running")
        self.make_room(served)
        log.info("starting %s on %s for a gateway request", served.name, served.host)
        try:
            result = self.backends.start(served.saved.plan, served.host)
        except WillNotFitError as exc:
            raise GatewayError(503, f"{served.name} does not fit beside what runs on "
                                    f"{served.host}: {exc}", kind="server_error",
                               code="does_not_fit") from exc
        except UserError as exc:
            raise GatewayError(503, f"{served.name} could not be started: {exc}",
                               kind="server_error", code="backend_start_failed") from exc
        self.last_used[served.key] = time.time()
        return result.backend

    # ------------------------------------------------------------------ room
    def make_room(self, served: Served) -> None:
        """Stop idle backends that share the plan's GPUs (or its host's RAM budget), the
        one used longest ago first, until the plan fits.

        Raises:
            GatewayError: 503 — it does not fit even with every idle one stopped.
        """
        while True:
            problem = self.does_not_fit(served)
            if problem is None:
                return
            sharing = self._sharing(served)
            idle = [b for b in sharing if not self._busy(b)]
            if not idle:
                running = ", ".join(f"{b.name} (busy)" for b in sharing) or "nothing else"
                raise GatewayError(503, f"{served.name} does not fit on {served.host}: "
                                        f"{problem}; running there: {running}",
                                   kind="server_error", code="does_not_fit")
            oldest = min(idle, key=lambda b: self.last_used.get(b.key, b.started_at))
            log.info("stopping idle %s to make room for %s", oldest.name, served.name)
            self.backends.stop(oldest)

    def _sharing(self, served: Served) -> list[Backend]:
        """Live backends on the same host whose memory the plan competes for."""
        gpus = set(served.plan.gpus)
        return [b for b in self.backends.known()
                if b.host == served.host and b.state.is_live and b.key != served.key
                and b.managed and (set(b.gpus) & gpus if gpus else not b.gpus)]

    def does_not_fit(self, served: Served) -> str | None:
        """Why the plan does not fit beside what runs now, or None (it fits, or it cannot
        be checked here)."""
        plan = served.plan
        if plan.gpus:
            verdict = self.backends.check_fit(plan, served.host)
            return None if verdict.fits else verdict.message.removesuffix("; start anyway?")
        budget = self._ram_budget_mib()
        need = host_need_mib(plan) if budget > 0 else None
        if need is None:
            return None
        taken = {b.name: self._ram_of(b) for b in self._sharing(served)}
        if need + sum(taken.values()) <= budget:
            return None
        held = ", ".join(f"{name} {mib:.0f} MiB" for name, mib in taken.items()) or "nothing"
        return (f"it needs about {need:.0f} MiB of RAM, and {held} of the {budget} MiB "
                f"budget ({setting_place('gateway_ram_budget_mib')}) are taken")

    @staticmethod
    def _ram_of(backend: Backend) -> float:
        if backend.measured_ram_mib is not None:
            return backend.measured_ram_mib
        from app.engines.plan import LaunchPlan

        try:
            return host_need_mib(LaunchPlan.from_json(backend.plan_json)) or 0.0
        except ValueError:
            return 0.0

    # ------------------------------------------------------------------ TTL
    def reap(self, ttl_of: Callable[[Backend], int], now: float | None = None) -> list[str]:
        """Stop every live backend idle for longer than its TTL (0: never); their names.
        Idle counts from the last Gateway request or Chat reply seen on it (called every
        few seconds, so a reply's end is known to within that)."""
        now = time.time() if now is None else now
        stopped = []
        for backend in list(self.backends.known()):
            ttl = ttl_of(backend)
            if ttl <= 0 or not backend.state.is_live:
                continue
            if self._busy(backend):  # a request, or a reply on the Chat page: in use now
                self.used(backend.key)
                continue
            last = max(self.last_used.get(backend.key, 0.0), backend.started_at)
            if now - last >= ttl:
                log.info("stopping %s: idle for %.0f s (its TTL is %d s)", backend.name,
                         now - last, ttl)
                try:
                    self.backends.stop(backend)
                except UserError as exc:
                    log.warning("could not stop idle %s: %s", backend.name, exc)
                    continue
                stopped.append(backend.name)
        return stopped
