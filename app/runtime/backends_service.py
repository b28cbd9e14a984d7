"""BackendsService: the one object the CLI and the UI use to start, find and stop backends.

It never keeps state that the hosts do not also hold: on `refresh()` it asks every
host for Rigdeck's containers (by label) or processes (by pid file) and builds the
backends from what it finds, so a restarted Rigdeck shows what really runs, and a
start of a backend that is already up returns that one instead of a second copy.
All calls block: the UI runs them through its task runner.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from psygnal import Signal

from app import __version__
from app.engines.plan import LaunchPlan, check_plan
from app.engines.recipes import DEFAULT_IMAGES, launch_spec, model_arch
from app.errors import UserError
from app.fit.calibration import CalibrationStore
from app.runtime.backend import LABEL, Backend, BackendState
from app.runtime.calibrate import LOG_LINES, calibrate
from app.runtime.docker_runtime import DockerRuntime, HostUnreachableError
from app.runtime.failure import exit_status, explain_exit
from app.runtime.fit_check import FitVerdict, check_fit
from app.runtime.health import HealthProbe
from app.runtime.hosts import DEFAULT_SOCKET, LOCAL, PROCESSES, Host, HostsStore
from app.runtime.keys import KeyKeeper
from app.runtime.observed import Foreign, Observed
from app.runtime.process_runtime import ProcessRuntime
from app.runtime.saved_plans import SavedPlans

log = logging.getLogger(__name__)

Runtime = DockerRuntime | ProcessRuntime
READY_TIMEOUT_S = 600.0
POLL_S = 0.25
"""The longest wait between two readiness checks."""
FIRST_POLL_S = 0.02
STOP_TIMEOUT_S = 10.0
CLEAN_EXITS = (0, 130, 143, -2, -15)
"""Exit codes of a server that was asked to end (SIGINT, SIGTERM; a process's -N too)."""
STOPPED_BY_USER = "stopped by the user"
GONE = "it is gone: its container or pid file was removed outside Rigdeck"


class WillNotFitError(UserError):
    """The fit planner says the plan does not fit the GPUs' free memory right now."""

    def __init__(self, verdict: FitVerdict) -> None:
        super().__init__(verdict.message)
        self.verdict = verdict


@dataclass(frozen=True)
class StartResult:
    backend: Backend
    already_running: bool


def _port_in_use(address: str, port: int) -> bool:
    """Whether a server listens on address:port.

    SO_REUSEADDR (POSIX) lets the probe bind past connections of a server that just
    stopped (TIME_WAIT) — as the engines themselves do — so a restart on the same port
    is not refused; on Windows the option would let a bind steal a live port.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe_socket:
        if os.name != "nt":
            probe_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe_socket.bind((address, port))
        except OSError:
            return True
    return False


def _free_port(address: str, taken: set[int]) -> int:
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe_socket:
            probe_socket.bind((address, 0))
            port = int(probe_socket.getsockname()[1])
        if port not in taken:
            return port
    raise UserError("no free port found on the host")


class BackendsService:
    """Backends on all hosts; emits `changed` when one appears, goes or changes state, and
    `died` when one fails (a crash, a kill, out of memory); a clean exit or a removal by
    someone else is a stop."""

    changed = Signal()
    died = Signal(object)
    """A `Backend` that was starting, loading or ready turned failed (its `reason` says
    how it ended) or disappeared, and nobody stopped it through Rigdeck. Emitted once per
    backend, from the thread that noticed (a worker thread in the UI); not for one found
    already ended when Rigdeck starts."""

    def __init__(self, hosts: list[Host], keys: KeyKeeper, *, images: dict[str, str] | None = None,
                 run_dir: Path | None = None, llama_server_path: str = "",
                 hosts_store: HostsStore | None = None,
                 calibration: CalibrationStore | None = None,
                 saved_plans: SavedPlans | None = None) -> None:
        """`calibration` records each backend's memory when it becomes ready, beside the
        fit planner's estimate (None: nothing is recorded, nothing measured);
        `saved_plans` keeps each started backend's plan for a start by name (the Gateway's
        on-demand start)."""
        self.hosts = {host.name: host for host in hosts}
        self.keys = keys
        self.images = {**DEFAULT_IMAGES, **{k: v for k, v in (images or {}).items() if v}}
        self.runtimes: dict[str, Runtime] = {}
        self._hosts_store = hosts_store
        for host in hosts:
            if host.kind == "process":
                self.runtimes[host.name] = ProcessRuntime(
                    host, run_dir or Path("/tmp/rigdeck-run"), llama_server_path)
            else:
                self.runtimes[host.name] = DockerRuntime(host)
        self.backends: dict[tuple[str, str], Backend] = {}
        self.foreign: list[Foreign] = []
        self.host_errors: dict[str, str] = {}
        self._lost_at: dict[str, float] = {}
        """When each unreachable host stopped answering."""
        self._lock = threading.RLock()
        self._health = HealthProbe()
        self._dead: weakref.WeakSet[Backend] = weakref.WeakSet()
        self.calibration = calibration
        self.saved_plans = saved_plans
        self._measured: weakref.WeakSet[Backend] = weakref.WeakSet()

    def close(self) -> None:
        self._health.close()
        for runtime in self.runtimes.values():
            runtime.close()

    # ------------------------------------------------------------------ configuring
    def set_image(self, engine: str, image: str) -> None:
        """The image new `engine` backends get (empty: the engine's default)."""
        self.images[engine] = image or DEFAULT_IMAGES[engine]

    def set_llama_server_path(self, path: str) -> None:
        """The llama-server local process backends run (empty: the one on PATH)."""
        for runtime in self.runtimes.values():
            if isinstance(runtime, ProcessRuntime):
                runtime.binary = path

    def add_host(self, host: Host) -> None:
        """Add a Docker host (or change one: its URL, networking, certificates) and keep it
        in hosts.toml; nothing is asked of it here (the doctor does that).

        Raises:
            UserError: a reserved or malformed name, a bad URL; hosts.toml is untouched.
        """
        if self._hosts_store is None:
            raise UserError("this service keeps no hosts file")
        self._hosts_store.add(host)
        self._put_host(host)

    def set_host_network(self, name: str, on: bool) -> None:
        """Host networking for host `name` from now on (the local engine's is a setting,
        kept by its owner; an added host's is kept in hosts.toml)."""
        host = replace(self.hosts[name], host_network=on)
        if name == LOCAL:
            self._put_host(host)
        else:
            self.add_host(host)

    def _put_host(self, host: Host) -> None:
        with self._lock:
            runtime = self.runtimes.get(host.name)
            if isinstance(runtime, DockerRuntime) and runtime.host.url == host.url \
                    and runtime.host.cert_path == host.cert_path:
                runtime.host = host  # same engine: keep the connection
            else:
                if runtime is not None:
                    runtime.retire()
                self.runtimes[host.name] = DockerRuntime(host)
                self.host_errors.pop(host.name, None)
            self.hosts[host.name] = host
        self.changed.emit()

    def remove_host(self, name: str) -> None:
        """Forget an added host (its containers stay as they are there).

        Raises:
            UserError: the local engine or processes, an unknown host, or one where
                Rigdeck's backends run (stop them first).
        """
        if name in (LOCAL, PROCESSES):
            raise UserError(f"{name} is this machine's own and cannot be removed")
        if name not in self.hosts:
            raise UserError(f"unknown host {name!r}; hosts: {', '.join(self.hosts)}")
        live = [b.name for b in self.known() if b.host == name and b.state.is_live]
        if live:
            raise UserError(f"backends run on {name} ({', '.join(live)}): stop them first "
                            f"(rigdeck down NAME --host {name})")
        if self._hosts_store is not None:
            self._hosts_store.remove(name)
        with self._lock:
            self.hosts.pop(name)
            self.runtimes.pop(name).retire()
            self.host_errors.pop(name, None)
            for key in [k for k in self.backends if k[0] == name]:
                self.backends.pop(key)
            self.foreign = [f for f in self.foreign if f.host != name]
        self.changed.emit()

    # ------------------------------------------------------------------ finding
    def runtime(self, host: str) -> Runtime:
        try:
            return self.runtimes[host]
        except KeyError:
            raise UserError(f"unknown host {host!r}; hosts: {', '.join(self.runtimes)}") from None

    def refresh(self, host: str | None = None) -> list[Backend]:
        """Ask every host (or only `host`) what runs; update states; the backends, sorted by
        host and name."""
        foreign: list[Foreign] = []
        seen: set[tuple[str, str]] = set()
        with self._lock:  # hosts may be added or removed meanwhile (the Settings page)
            runtimes = list(self.runtimes.items())
            # what a missing container can mean gone: not a backend started meanwhile,
            # whose container the engine's list may predate
            known = {key: b.ref for key, b in self.backends.items()}
        for name, runtime in runtimes:
            if host is not None and name != host:
                continue
            try:
                observed, others = runtime.observe()
            except HostUnreachableError as exc:
                self.host_errors[name] = str(exc)
                self._lost_at.setdefault(name, time.time())
                self._mark_unreachable(name, str(exc))
                continue
            self._mark_unreachable(name, "")
            if self.host_errors.pop(name, None) is not None:
                observed = self._recover(name, runtime, observed,
                                         self._lost_at.pop(name, time.time()))
            foreign += others
            for obs in observed:
                backend = self._merge(name, obs)
                if backend is not None:
                    seen.add(backend.key)
        with self._lock:
            for key in list(self.backends):
                asked = host is None or key[0] == host
                host_ok = key[0] not in self.host_errors
                if key not in seen and asked and host_ok \
                        and known.get(key) == self.backends[key].ref:
                    # removed by someone (`rigdeck down` in a terminal, `docker rm`): a
                    # stop, not a death
                    self.backends.pop(key).set_state(BackendState.STOPPED, GONE)
            self.foreign = [f for f in self.foreign if host is not None and f.host != host]
            self.foreign += foreign
            result = sorted(self.backends.values(), key=lambda b: b.key)
        self.changed.emit()
        return result

    def _mark_unreachable(self, host: str, error: str) -> None:
        with self._lock:
            for backend in self.backends.values():
                if backend.host == host:
                    backend.engine_unreachable = error

    def unreachable(self) -> dict[str, str]:
        """The Docker hosts whose engine did not answer the last refresh, and why — except a
        local engine that is not installed (no socket at the default place and no
        DOCKER_HOST): a machine that runs local processes only."""
        return {name: error for name, error in self.host_errors.items()
                if name in self.hosts and self.hosts[name].kind == "docker"
                and not (name == LOCAL and self.hosts[name].url == DEFAULT_SOCKET
                         and not Path(DEFAULT_SOCKET.removeprefix("unix://")).exists())}

    def _report_death(self, backend: Backend) -> None:
        """Emit `died` for `backend` unless already told (two threads may both see it)."""
        with self._lock:
            if backend in self._dead:
                return
            self._dead.add(backend)
        log.warning("backend %s on %s died: %s", backend.name, backend.host, backend.reason)
        self.died.emit(backend)

    def _recover(self, host: str, runtime: Runtime, observed: list[Observed],
                 lost_at: float) -> list[Observed]:
        """The host answers again: start again the backends its engine stopped when it
        restarted — not those that ended while it ran (someone's `docker stop`, a crash),
        which the engine's own events since `lost_at` tell (a restarted engine has none)."""
        if not isinstance(runtime, DockerRuntime):
            return observed
        with self._lock:
            live = {b.ref for b in self.backends.values() if b.host == host and b.state.is_live}
        result = []
        for obs in observed:
            if obs.ref in live and obs.status == "exited" \
                    and not runtime.events_since(obs.ref, lost_at):
                log.info("engine of %s is back; restarting %s", host, obs.ref[:12])
                runtime.restart(obs.ref)
                result.append(runtime.inspect(obs.ref))
            else:
                result.append(obs)
        return result

    def _merge(self, host: str, obs: Observed) -> Backend | None:
        name = obs.labels.get(f"{LABEL}.name")
        if not name:
            return None
        with self._lock:
            backend = self.backends.get((host, name))
            fresh = backend is None or backend.ref != obs.ref
            if fresh:
                backend = self._from_labels(host, obs)
                self.backends[backend.key] = backend
        assert backend is not None
        if obs.api_key and not backend.api_key:
            backend.api_key = obs.api_key
            self.keys.remember(self._key_ref(host, name), obs.api_key)
        self._update(backend, obs, fresh=fresh)
        return backend

    def _from_labels(self, host: str, obs: Observed) -> Backend:
        labels = obs.labels
        gpus = tuple(g for g in labels.get(f"{LABEL}.gpus", "").split(",") if g)
        return Backend(
            name=labels[f"{LABEL}.name"], host=host, engine=labels.get(f"{LABEL}.engine", "?"),
            model=labels.get(f"{LABEL}.model", ""), port=int(labels.get(f"{LABEL}.port", "0")),
            endpoint_host=self.hosts[host].endpoint_host, ref=obs.ref,
            plan_json=labels.get(f"{LABEL}.plan", "{}"), image=labels.get(f"{LABEL}.image", ""),
            gpus=gpus, started_at=obs.started_at or time.time(), api_key=obs.api_key,
            key_persisted=self.keys.persisted)

    def _update(self, backend: Backend, obs: Observed, *, fresh: bool = False) -> None:
        was_live = backend.state.is_live and not fresh
        self._apply(backend, obs, fresh=fresh)
        if was_live and backend.state is BackendState.FAILED:
            self._report_death(backend)

    def _apply(self, backend: Backend, obs: Observed, *, fresh: bool) -> None:
        """Set the state `obs` stands for (a stop in progress is left to `stop`)."""
        if obs.started_at:
            backend.started_at = obs.started_at
        if obs.status == "gone":
            if backend.state is not BackendState.STOPPING:
                backend.set_state(BackendState.STOPPED, GONE)
        elif obs.status == "created":
            backend.set_state(BackendState.STARTING)
        elif obs.status in ("running", "restarting", "paused"):
            if backend.state is not BackendState.STOPPING:
                self._apply_health(backend)
        else:
            self._apply_exit(backend, obs, fresh=fresh)

    def _apply_health(self, backend: Backend) -> None:
        health = self._health.state(f"{backend.base_url}/health")
        key = self.api_key(backend)  # a re-attached one's: read from its container
        if health == "ready" and key and not self._health.answers_to_key(backend.base_url, key):
            backend.set_state(BackendState.STARTING)  # another server holds its port
        elif health == "ready":
            if backend.state is not BackendState.READY:
                self._calibrate(backend)  # before the event: a card shows its memory
            backend.set_state(BackendState.READY)
        elif health == "loading" or backend.state in (BackendState.LOADING,
                                                     BackendState.READY):
            backend.set_state(BackendState.LOADING)
        else:
            backend.set_state(BackendState.STARTING)

    def _calibrate(self, backend: Backend) -> None:
        """Measure a backend that just became ready, once per start; a failure is logged,
        never raised: calibration must not stand between a user and a ready server."""
        with self._lock:
            if self.calibration is None or backend in self._measured:
                return
            self._measured.add(backend)
        try:
            text = self.runtime(backend.host).log_tail(backend.ref, LOG_LINES)
            calibrate(self.calibration, backend, self.hosts[backend.host], text)
        except Exception:
            log.warning("could not calibrate from %s", backend.name, exc_info=True)

    def _apply_exit(self, backend: Backend, obs: Observed, *, fresh: bool) -> None:
        if backend.state is BackendState.STOPPED:
            return  # stopped (and kept) by the user: the exit code is the stop's own
        if backend.state is BackendState.STOPPING:
            backend.set_state(BackendState.STOPPED, STOPPED_BY_USER)  # even if it took SIGKILL
        elif obs.exit_code in CLEAN_EXITS:  # asked to stop (a terminal, another Rigdeck)
            backend.set_state(BackendState.STOPPED, f"the server {exit_status(obs.exit_code)}")
        elif backend.state is not BackendState.FAILED:
            tail = self.runtime(backend.host).log_tail(backend.ref, 400)
            backend.set_state(BackendState.FAILED, explain_exit(
                obs.exit_code, tail, oom_killed=obs.oom_killed, port=backend.port))

    def known(self) -> list[Backend]:
        """The backends the last refresh found (and those started since), by host and name."""
        with self._lock:
            return sorted(self.backends.values(), key=lambda b: b.key)

    def get(self, host: str, name: str) -> Backend | None:
        with self._lock:
            return self.backends.get((host, name))

    def api_key(self, backend: Backend) -> str | None:
        """The key `backend` was started with: held since its start or read back from its
        container or process, else from the keyring (blocking: may ask the keyring)."""
        return backend.api_key or self.keys.get(self._key_ref(backend.host, backend.name))

    def find(self, name: str, host: str | None = None) -> Backend:
        """The backend called `name` (on `host`, or the only one of that name); `name` may
        be `host/name`, as `rigdeck ps` and the chat targets write one used on two hosts.

        Raises:
            UserError: none or several match; the message lists what runs.
        """
        if host is None and "/" in name:  # a backend's name has no "/" (NAME_RE)
            host, name = name.split("/", 1)
        with self._lock:
            matches = [b for b in self.backends.values()
                       if b.name == name and (host is None or b.host == host)]
            names = sorted(f"{b.host}/{b.name}" for b in self.backends.values())
        if len(matches) == 1:
            return matches[0]
        if not matches:
            unreachable = [error for where, error in self.host_errors.items()
                           if where in self.hosts and self.hosts[where].kind != "process"
                           and host in (None, where)]
            if unreachable:  # it may well run there
                raise UserError(f"cannot tell whether {name!r} runs: "
                                f"{'; '.join(unreachable)}")
            running = ", ".join(names) or "none"
            raise UserError(f"no backend named {name!r} (backends: {running})")
        raise UserError(f"{name!r} runs on several hosts; say which with --host")

    # ------------------------------------------------------------------ starting
    @staticmethod
    def _key_ref(host: str, name: str) -> str:
        return f"backend:{host}:{name}"

    def check_fit(self, plan: LaunchPlan, host: str) -> FitVerdict:
        """The fit planner's verdict for `plan` on the host's GPUs' free memory now,
        corrected by what backends on this machine really took."""
        return check_fit(plan, self.hosts[host], self.calibration)

    def start(self, plan: LaunchPlan, host: str = LOCAL, *, force: bool = False,
              wait: bool = False, timeout_s: float = READY_TIMEOUT_S) -> StartResult:
        """Start `plan` on `host`, or return the backend of that name that is already up.

        Raises:
            PlanError: the plan's values conflict (nothing started).
            WillNotFitError: the plan does not fit and `force` is False.
            UserError: the model, image or port is missing or taken, the host is
                unreachable or refused; the message says which.
        """
        check_plan(plan)
        runtime = self.runtime(host)
        target = self.hosts[host]
        name = plan.backend_name
        self.refresh(host)  # only this host: a slow remote one need not hold up a local start
        with self._lock:
            existing = self.backends.get((host, name))
        if existing is not None and existing.state.is_live:
            log.info("%s already runs on %s; not starting a second copy", name, host)
            return StartResult(existing, already_running=True)
        self._check_files(plan, target)
        verdict = self.check_fit(plan, host)
        if not verdict.fits and not force:
            raise WillNotFitError(verdict)
        if existing is not None:  # a finished one (failed, or stopped and kept): its log
            runtime.stop(existing.ref, 1, remove=True)  # goes only for a plan that may start
            with self._lock:
                self.backends.pop(existing.key, None)
        port = self._pick_port(plan, target)
        in_container = target.kind == "docker"
        inner_bind = target.bind_address if target.host_network else "0.0.0.0"
        image = plan.image or self.images.get(plan.engine, "")
        arch = None if target.is_remote else model_arch(plan)
        spec = launch_spec(plan, port=port, bind=inner_bind, image=image,
                           in_container=in_container, arch=arch, local=not target.is_remote)
        key_ref = self._key_ref(host, name)
        api_key = self.keys.new_key(key_ref)
        labels = {
            **plan.labels, f"{LABEL}.name": name, f"{LABEL}.engine": plan.engine,
            f"{LABEL}.model": plan.model, f"{LABEL}.port": str(port),
            f"{LABEL}.plan": replace(plan, port=port).to_json(),
            f"{LABEL}.image": spec.image if in_container else "", f"{LABEL}.host": host,
            f"{LABEL}.gpus": ",".join(plan.gpus), f"{LABEL}.version": __version__,
        }
        try:
            ref = runtime.start(spec, name, labels, api_key)
        except BaseException:
            self.keys.forget(key_ref)
            raise
        backend = Backend(
            name=name, host=host, engine=plan.engine, model=plan.model, port=port,
            endpoint_host=target.endpoint_host, ref=ref, plan_json=labels[f"{LABEL}.plan"],
            image=labels[f"{LABEL}.image"], gpus=plan.gpus, api_key=api_key,
            key_persisted=self.keys.persisted)
        with self._lock:
            found = self.backends.get(backend.key)
            if found is not None and found.ref == ref:
                # A refresh on another thread (the window's, every two seconds; a start
                # over ssh:// takes seconds) found the container first and handed its
                # Backend out: a second object for it would be the one updated, and the
                # card built from the first would say "starting" for ever.
                found.api_key = found.api_key or api_key
                backend = found
            else:
                self.backends[backend.key] = backend
        self._save_plan(name, host, plan)
        self.changed.emit()
        if wait:
            self.wait_ready(backend, timeout_s)
        return StartResult(backend, already_running=False)

    def _save_plan(self, name: str, host: str, plan: LaunchPlan) -> None:
        """Remember the plan (a failure to save it does not undo the start: it is said in
        the log, and the backend runs)."""
        if self.saved_plans is None:
            return
        try:
            self.saved_plans.remember(name, host, plan)
        except UserError as exc:
            log.warning("the plan of %s was not saved: %s", name, exc)

    def relaunch(self, backend: Backend, plan: LaunchPlan | None = None, *,
                 wait: bool = False, timeout_s: float = READY_TIMEOUT_S) -> StartResult:
        """Stop `backend` and start it again on its host from `plan` (default: its own).

        The one way every caller (the Backends page's Restart, a role's or an expert
        count's relaunch, the CLI) restarts a backend: the plan is checked before anything
        stops, the backend keeps its name and, unless the plan says otherwise, its port, so
        a conversation with it goes on. It is started with `force` (it ran on these GPUs a
        moment ago; the fit check would count its own memory against it).

        Raises:
            PlanError: the new plan's values conflict (the backend is left running).
            UserError: the start failed; the message says why.
        """
        old = LaunchPlan.from_json(backend.plan_json)
        new = plan if plan is not None else old
        if new.port is None:
            new = replace(new, port=old.port if old.port is not None else backend.port)
        check_plan(new)
        log.info("relaunching %s on %s", backend.name, backend.host)
        self.stop(backend)
        return self.start(new, backend.host, force=True, wait=wait, timeout_s=timeout_s)

    def _check_files(self, plan: LaunchPlan, host: Host) -> None:
        if host.is_remote:
            return  # the path is on that host; Docker says if it is missing
        for path in (plan.model, *plan.adapters):
            if not Path(path).exists():
                raise UserError(f"the model path {path} does not exist")
            if not Path(path).is_absolute():
                raise UserError(f"the model path {path} must be absolute")
        from app.library.loader import load_entry

        entry = load_entry(Path(plan.model))  # a header read: milliseconds
        if entry.error:  # refused here, with the library's reason, before anything starts
            raise UserError(f"{plan.model} cannot be served: {entry.error}")

    def _pick_port(self, plan: LaunchPlan, host: Host) -> int:
        with self._lock:
            taken = {b.port for b in self.backends.values()
                     if b.host == host.name and b.state.is_live}
        address = "127.0.0.1" if host.is_remote else host.bind_address
        if plan.port is not None:
            if plan.port in taken or _port_in_use(address, plan.port):
                raise UserError(f"port {plan.port} on {address} is already in use; choose "
                                "another port or leave it empty to pick a free one")
            return plan.port
        return _free_port(address, taken)

    @staticmethod
    def poll_delays() -> Iterator[float]:
        """Waits between readiness checks: short at first (a small model is ready within a
        second, and a fixed 0.25 s step added up to half of that), growing to POLL_S (a
        large one loads for minutes)."""
        delay = FIRST_POLL_S
        while True:
            yield delay
            delay = min(delay * 1.5, POLL_S)

    def wait_ready(self, backend: Backend, timeout_s: float = READY_TIMEOUT_S, *,
                   cancel: threading.Event | None = None) -> Backend:
        """Poll until ready or failed, or until `cancel` is set (then the backend is
        returned as it is, not ready: the caller stops it).

        Raises:
            UserError: it failed (with the reason) or was not ready within timeout_s.
        """
        runtime = self.runtime(backend.host)
        deadline = time.monotonic() + timeout_s
        delays = self.poll_delays()
        while time.monotonic() < deadline:
            self._update(backend, runtime.inspect(backend.ref))
            if backend.state is BackendState.READY:
                return backend
            if backend.state in (BackendState.FAILED, BackendState.STOPPED):
                raise UserError(f"backend {backend.name} failed: {backend.reason}")
            if cancel is None:
                time.sleep(next(delays))
            elif cancel.wait(next(delays)):
                return backend
        raise UserError(f"backend {backend.name} was not ready within {timeout_s:.0f} s "
                        f"(still {backend.state}); see `rigdeck logs {backend.name}`")

    # ------------------------------------------------------------------ stopping, logs
    def stop(self, backend: Backend, *, keep: bool = False,
             timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stop gracefully (forced after timeout_s) and remove unless `keep`."""
        backend.set_state(BackendState.STOPPING)
        self.changed.emit()
        self.runtime(backend.host).stop(backend.ref, timeout_s, remove=not keep)
        backend.set_state(BackendState.STOPPED, STOPPED_BY_USER)
        if not keep:
            self.keys.forget(self._key_ref(backend.host, backend.name))
            with self._lock:
                self.backends.pop(backend.key, None)
        self.changed.emit()

    def log_tail(self, backend: Backend, lines: int = 200) -> str:
        return self.runtime(backend.host).log_tail(backend.ref, lines)

    def host_memory_mib(self, backend: Backend) -> float | None:
        """What the backend holds in host memory now: its container's memory (`docker
        stats`) or its process's resident set; None where the host does not tell."""
        return self.runtime(backend.host).memory_usage(backend.ref)

    def run_perplexity(self, plan: LaunchPlan, host: str, text: Path, *, context: int,
                       chunks: int, name: str, cancel: threading.Event | None = None,
                       timeout_s: float = READY_TIMEOUT_S) -> tuple[int | None, str]:
        """Run llama.cpp's `llama-perplexity` with `plan`'s model and settings on `text`,
        where the plan's backends run: a one-shot container of the engine's image (model
        and text mounted read-only, shut in as a backend is, no network), or the tool
        beside the local llama-server. (exit code, output); exit code None when cancelled.

        Raises:
            PlanError: the plan's values conflict. UserError: the model or text is missing,
                the image or the tool is not there, or the host refused.
        """
        from app.engines.llamacpp import perplexity_recipe

        check_plan(plan)
        target = self.hosts[host]
        self._check_files(plan, target)
        if not target.is_remote and not text.is_file():
            raise UserError(f"the text {text} does not exist")
        arch = None if target.is_remote else model_arch(plan)
        image = plan.image or self.images.get(plan.engine, "")
        spec = perplexity_recipe(plan, str(text), context=context, chunks=chunks, image=image,
                                 in_container=target.kind == "docker", arch=arch,
                                 local=not target.is_remote)
        labels = {**plan.labels, f"{LABEL}.host": host, f"{LABEL}.version": __version__}
        return self.runtime(host).run_once(spec, name, labels, cancel=cancel,
                                           timeout_s=timeout_s)

    def follow_logs(self, backend: Backend, tail: int = 200) -> Iterator[str]:
        return self.runtime(backend.host).follow_logs(backend.ref, tail)
