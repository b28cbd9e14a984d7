"""GatewayFeed: the Qt-free `Gateway` seen from the GUI thread.

The Gateway emits its psygnal events on the threads that serve requests (and on the task
runner's, for a start or stop); this adapter hands each one to the GUI thread as a Qt
signal. Everything that touches a socket, the keyring or a file — starting and stopping,
the model ids (roles and saved plans are files), the keys, the usage (SQLite), a TTL or
on-demand change — runs on the task runner, and its result comes back as a signal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from app.errors import UserError
from app.gateway.catalog import Route, build_routes, served_backends
from app.gateway.keys import GatewayKey
from app.gateway.records import RequestRecord, Usage
from app.gateway.service import Gateway, is_loopback
from app.runtime.saved_plans import SavedPlan
from app.settings import SettingsStore, setting_place
from ui.notifier import Notifier
from ui.tasks import TaskRunner

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelRow:
    """One model id as the Gateway page lists it, with its backend's saved plan (where
    its idle stop and on-demand start are set; None: Rigdeck keeps no plan of it)."""

    id: str
    base: str
    role: str | None
    backend: str
    host: str
    running: bool
    saved: SavedPlan | None

    @property
    def served(self) -> bool:
        """Whether a request for it is answered (running, or started on demand)."""
        return self.running or (self.saved is not None and self.saved.on_demand)

    @property
    def state(self) -> str:
        if self.running:
            return "running"
        return "on demand" if self.served else "stopped (not started on demand)"

    @property
    def plan_options(self) -> bool:
        """Whether this row carries its backend's idle stop and on-demand start: the
        backend's own id does; a role's id shares them."""
        return self.role is None and self.saved is not None


def model_rows(routes: dict[str, Route], saved: list[SavedPlan]) -> list[ModelRow]:
    """The listed ids, then the saved plans a request may not start (so they can be
    switched back on)."""
    rows = [ModelRow(r.id, r.served.model_name, r.role.name if r.role else None,
                     r.served.name, r.served.host, r.served.running, r.served.saved)
            for r in routes.values() if r.listed]
    shown = {(r.host, r.backend) for r in rows}
    rows += [ModelRow(p.name, Path(p.plan.model.rstrip("/")).name, None, p.name, p.host,
                      False, p)
             for p in saved if p.key not in shown]
    return rows


class GatewayFeed(QObject):
    """Owns the window's `Gateway`; every blocking step goes through the task runner."""

    state_changed = Signal(str)
    """The base URL while it serves, "" once stopped."""
    busy_changed = Signal(bool)
    """True while a start or a stop runs."""
    start_failed = Signal(str)
    """Why the Gateway could not start, in words that name the control to change."""
    request_started = Signal(object)
    """A RequestRecord (the same object is filled in as the request goes on)."""
    request_finished = Signal(object)
    models_updated = Signal(list)
    """list[ModelRow]."""
    keys_updated = Signal(list)
    """list[GatewayKey]."""
    usage_updated = Signal(list)
    history_read = Signal(list)
    """The requests of the history, newest first (after `read_history`)."""
    """list[Usage], after each request."""
    _arrived = Signal(str, object)

    def __init__(self, gateway: Gateway, tasks: TaskRunner, settings: SettingsStore,
                 notifier: Notifier) -> None:
        super().__init__()
        self.gateway = gateway
        self._tasks = tasks
        self._settings = settings
        self._notifier = notifier
        self.busy = False
        self.problem = ""
        """Why the last start failed ("" after a good one)."""
        self._usage_running = False
        self._usage_again = False
        self._arrived.connect(self._on_self_arrived)
        gateway.request_started.connect(self._on_gateway_request_started)
        gateway.request_finished.connect(self._on_gateway_request_finished)
        gateway.state_changed.connect(self._on_gateway_state_changed)

    # ------------------------------------------------------------------ reading
    @property
    def url(self) -> str:
        """The base URL while it serves, else ""."""
        return self.gateway.url if self.gateway.serving else ""

    @property
    def address(self) -> str:
        return str(self._settings.get("gateway_address"))

    @property
    def loopback(self) -> bool:
        """Whether the address the settings say reaches this computer only."""
        return is_loopback(self.address)

    def configured_url(self) -> str:
        """The base URL the settings say it will serve at."""
        return f"http://{self.address}:{self._settings.get('gateway_port')}/v1"

    def live(self) -> list[RequestRecord]:
        """The requests of this run in memory, newest first (no disk)."""
        return list(reversed(list(self.gateway.records.live)))

    def read_history(self, limit: int) -> None:
        """The newest `limit` requests ever served, earlier runs' included, with the ones
        running now on top; `history_read` brings them (off the GUI thread)."""
        records = self.gateway.records

        def job() -> list[RequestRecord]:
            running = [r for r in reversed(list(records.live)) if r.status == 0]
            return [*running, *records.recent(limit)][:limit]

        self._tasks.run(job, description="Reading the Gateway's requests",
                        on_done=self.history_read.emit,
                        on_error=lambda error: log.warning(
                            "the Gateway's requests could not be read: %s", error))

    # ------------------------------------------------------------------ on / off
    def start_at_launch(self) -> None:
        """Start it when the settings say so (Start with Rigdeck); a failure is told in
        the banner too, as no page may be open to show it."""
        if self._settings.get("gateway_autostart"):
            self.start(tell=True)

    def start(self, *, tell: bool = False) -> None:
        """Listen at the address and port of the settings (off the GUI thread)."""
        if self.busy or self.gateway.serving:
            return
        address, port = self.address, int(self._settings.get("gateway_port"))
        self._set_busy(True)
        self._tasks.run(lambda: self.gateway.start(address, port),
                        description="Starting the Gateway", on_done=self._on_started,
                        on_error=lambda error: self._on_start_failed(error, tell))

    def stop(self) -> None:
        if self.busy or not self.gateway.serving:
            return
        self._set_busy(True)
        self._tasks.run(self.gateway.stop, description="Stopping the Gateway",
                        on_done=lambda _none: self._set_busy(False),
                        on_error=self._on_stop_failed)

    def _set_busy(self, busy: bool) -> None:
        self.busy = busy
        self.busy_changed.emit(busy)

    def _on_started(self, url: str) -> None:
        self.problem = ""
        self._set_busy(False)
        self.refresh_models()

    def _on_start_failed(self, error: BaseException, tell: bool) -> None:
        self._set_busy(False)
        if not isinstance(error, UserError):
            log.error("the Gateway did not start", exc_info=error)
        self.problem = start_problem(error)
        self.start_failed.emit(self.problem)
        if tell:
            self._notifier.warning(f"The Gateway did not start: {self.problem}")

    def _on_stop_failed(self, error: BaseException) -> None:
        self._set_busy(False)
        self._notifier.error("Stopping the Gateway", error)

    # ------------------------------------------------------------------ model ids
    def refresh_models(self) -> None:
        """The model ids as they are now (roles and saved plans are read from files)."""
        gateway = self.gateway

        def job() -> list[ModelRow]:
            saved = gateway.saved.all()
            served = served_backends(gateway.backends.known(), saved)
            return model_rows(build_routes(served, gateway.roles.all().values()), saved)

        self._tasks.run(job, description="Listing the Gateway's model ids",
                        on_done=self.models_updated.emit)

    def set_ttl(self, row: ModelRow, ttl_s: int) -> None:
        """Stop the row's backend after `ttl_s` s without a request (0: never)."""
        saved = self.gateway.saved
        self._tasks.run(lambda: saved.set_ttl(row.backend, ttl_s, row.host),
                        description=f"Setting the idle stop of {row.backend}",
                        on_done=lambda _plan: self.refresh_models(),
                        on_error=self._on_plan_change_failed)

    def set_on_demand(self, row: ModelRow, on: bool) -> None:
        saved = self.gateway.saved
        self._tasks.run(lambda: saved.set_on_demand(row.backend, on, row.host),
                        description=f"Setting whether a request starts {row.backend}",
                        on_done=lambda _plan: self.refresh_models(),
                        on_error=self._on_plan_change_failed)

    def _on_plan_change_failed(self, error: BaseException) -> None:
        self._notifier.error("Changing a saved plan", error)
        self.refresh_models()  # show what the file still says

    # ------------------------------------------------------------------ keys
    def refresh_keys(self) -> None:
        keys = self.gateway.keys

        def job() -> list[GatewayKey]:
            listed = keys.all()
            for problem in keys.problems:
                log.warning("%s", problem)
            return listed

        self._tasks.run(job, description="Reading the gateway keys",
                        on_done=self.keys_updated.emit)

    def create_key(self, name: str, on_done: Callable[[str], None],
                   on_error: Callable[[BaseException], None]) -> None:
        """Make key `name` (keyring, file); `on_done` gets the key itself."""
        keys = self.gateway.keys

        def done(key: str) -> None:
            self.refresh_keys()
            on_done(key)

        self._tasks.run(lambda: keys.create(name), description=f"Creating gateway key {name}",
                        on_done=done, on_error=on_error)

    def revoke_key(self, name: str, on_error: Callable[[BaseException], None]) -> None:
        keys = self.gateway.keys
        self._tasks.run(lambda: keys.revoke(name), description=f"Revoking gateway key {name}",
                        on_done=lambda _none: self.refresh_keys(), on_error=on_error)

    def reveal_key(self, name: str, on_done: Callable[[str], None],
                   on_error: Callable[[BaseException], None]) -> None:
        """The key itself, from the keyring."""
        keys = self.gateway.keys
        self._tasks.run(lambda: keys.reveal(name), description=f"Reading gateway key {name}",
                        on_done=on_done, on_error=on_error)

    # ------------------------------------------------------------------ usage
    def refresh_usage(self) -> None:
        """Usage per key and role from the history (one read at a time; a request that
        ends during one asks for one more after it)."""
        if self._usage_running:
            self._usage_again = True
            return
        self._usage_running = True
        records = self.gateway.records
        self._tasks.run(records.usage, description="Reading the Gateway's usage",
                        on_done=self._on_usage_read, on_error=self._on_usage_failed)

    def _on_usage_read(self, usage: list[Usage]) -> None:
        self._usage_running = False
        self.usage_updated.emit(usage)
        if self._usage_again:
            self._usage_again = False
            self.refresh_usage()

    def _on_usage_failed(self, error: BaseException) -> None:
        self._usage_running = False
        self._usage_again = False
        log.warning("the Gateway's usage could not be read: %s", error)

    # ------------------------------------------------------------------ from other threads
    def _on_gateway_request_started(self, record: RequestRecord) -> None:
        self._arrived.emit("started", record)

    def _on_gateway_request_finished(self, record: RequestRecord) -> None:
        self._arrived.emit("finished", record)

    def _on_gateway_state_changed(self, url: str) -> None:
        self._arrived.emit("state", url)

    @Slot(str, object)
    def _on_self_arrived(self, kind: str, value: object) -> None:
        if kind == "started":
            self.request_started.emit(value)
        elif kind == "finished":
            self.request_finished.emit(value)
            self.refresh_usage()
        else:
            self.state_changed.emit(value)

    # ------------------------------------------------------------------ ending
    def close(self) -> None:
        """Stop serving and close the history (at quit, once the task runner is done)."""
        self.gateway.request_started.disconnect(self._on_gateway_request_started)
        self.gateway.request_finished.disconnect(self._on_gateway_request_finished)
        self.gateway.state_changed.disconnect(self._on_gateway_state_changed)
        self.gateway.close()


def start_problem(error: BaseException) -> str:
    """Why a start failed, naming where to change it: a port taken points at the Port
    and Address settings."""
    text = str(error) or type(error).__name__
    if isinstance(error.__cause__, OSError):
        return (f"{text}. Change {setting_place('gateway_port')} or "
                f"{setting_place('gateway_address')}.")
    return text
