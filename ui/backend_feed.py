"""BackendFeed: the backends service seen from the GUI thread.

It refreshes the service on the task runner every few seconds (Docker and HTTP never
run on the GUI thread) and delivers the list through a Qt signal, so the Backends page
and the tray menu both show the same, current list. The service's `died` event, emitted
on whichever worker thread noticed, is handed to the GUI thread as `died`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from app.engines.export_folder import export_to_folder
from app.engines.plan import LaunchPlan
from app.errors import UserError
from app.runtime.backend import Backend
from app.runtime.backends_service import BackendsService, StartResult
from app.runtime.docker_runtime import DockerRuntime
from app.runtime.doctor import HostReport, diagnose
from app.runtime.hosts import Host
from ui.tasks import TaskRunner

log = logging.getLogger(__name__)

REFRESH_MS = 2000


class BackendFeed(QObject):
    """Periodic refresh plus start/stop/logs, all through the task runner."""

    updated = Signal(list)
    """list[Backend], sorted by host and name, after each refresh."""
    died = Signal(object)
    """A `Backend` that ended without being stopped (see `BackendsService.died`)."""
    _died_waiting = Signal(object)

    def __init__(self, service: BackendsService, tasks: TaskRunner,
                 model_folders: Callable[[], list[str]] = list) -> None:
        super().__init__()
        self.service = service
        self.tasks = tasks
        self._model_folders = model_folders
        self.backends: list[Backend] = []
        self._busy = False
        self._closed = False
        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        self._died_waiting.connect(self._on_self_died_waiting)
        service.died.connect(self._on_service_died)

    def start(self) -> None:
        """Find running backends again (re-attach) and keep watching them."""
        self.refresh()
        self._timer.start()

    def stop(self) -> None:
        """Stop watching; a refresh still in flight is dropped when it lands."""
        self._closed = True
        self._timer.stop()

    def _on_service_died(self, backend: Backend) -> None:
        """From a worker thread: queued to the GUI thread (this object lives there)."""
        self._died_waiting.emit(backend)

    @Slot(object)
    def _on_self_died_waiting(self, backend: Backend) -> None:
        if not self._closed:
            self.died.emit(backend)

    def refresh(self) -> None:
        if self._busy or self._closed:
            return
        self._busy = True
        self.tasks.run(self.service.refresh, description="Looking for backends",
                       on_done=self._on_refresh_done, on_error=self._on_refresh_error)

    def _on_refresh_done(self, backends: list[Backend]) -> None:
        self._busy = False
        if self._closed:
            return
        self.backends = backends
        self.updated.emit(backends)

    def _on_refresh_error(self, error: BaseException) -> None:
        self._busy = False
        log.warning("refreshing backends failed: %s", error)

    def start_backend(self, plan: LaunchPlan, host: str, *, force: bool = False,
                      on_error: Callable[[BaseException], None] | None = None) -> None:
        def done(_result: StartResult) -> None:
            self.refresh()

        self.tasks.run(lambda: self.service.start(plan, host, force=force),
                       description=f"Starting {plan.backend_name}", on_done=done,
                       on_error=on_error)

    def stop_backend(self, backend: Backend, keep: bool = False) -> None:
        self.tasks.run(lambda: self.service.stop(backend, keep=keep),
                       description=f"Stopping {backend.name}",
                       on_done=lambda _none: self.refresh())

    def relaunch_backend(self, backend: Backend, plan: LaunchPlan | None = None, *,
                         on_done: Callable[[Backend], None] | None = None,
                         on_error: Callable[[BaseException], None] | None = None) -> None:
        """`BackendsService.relaunch` on the task runner; `on_done` gets the new backend
        once it is ready."""
        def done(result: StartResult) -> None:
            self.refresh()
            if on_done is not None:
                on_done(result.backend)

        self.tasks.run(lambda: self.service.relaunch(backend, plan, wait=True),
                       description=f"Relaunching {backend.name}", on_done=done,
                       on_error=on_error)

    def diagnose(self, on_done: Callable[[list[HostReport]], None], *,
                 only: str | None = None) -> None:
        """The host doctor for every host, or `only` that one (a probe container each:
        seconds)."""
        folders = self._model_folders()
        service = self.service
        self.tasks.run(lambda: diagnose(dict(service.hosts), dict(service.runtimes),
                                        dict(service.images), folders, only=only),
                       description=f"Checking {only or 'the hosts'}", on_done=on_done)

    def add_host(self, host: Host, on_done: Callable[[None], None],
                 on_error: Callable[[BaseException], None]) -> None:
        """`BackendsService.add_host` (it writes hosts.toml) off the GUI thread."""
        def done(result: None) -> None:
            self.refresh()
            on_done(result)

        self.tasks.run(lambda: self.service.add_host(host), description=f"Adding {host.name}",
                       on_done=done, on_error=on_error)

    def remove_host(self, name: str, on_done: Callable[[None], None],
                    on_error: Callable[[BaseException], None]) -> None:
        """Forget host `name` once a refresh says no backend of Rigdeck's runs there."""
        def job() -> None:
            self.service.refresh(name)
            self.service.remove_host(name)

        def done(result: None) -> None:
            self.refresh()
            on_done(result)

        self.tasks.run(job, description=f"Removing {name}", on_done=done, on_error=on_error)

    def images_on(self, host: str, on_done: Callable[[list[str]], None]) -> None:
        """The image names the host's engine has (none when it does not answer)."""
        def job() -> list[str]:
            runtime = self.service.runtime(host)
            try:
                return runtime.image_tags() if isinstance(runtime, DockerRuntime) else []
            except UserError as exc:
                log.info("no images listed for %s: %s", host, exc)
                return []

        self.tasks.run(job, description=f"Listing the images on {host}", on_done=on_done)

    def export_plans(self, plans: list[LaunchPlan], folder: Path, *, host_network: bool,
                     overwrite: bool, on_done: Callable[[list[Path]], None],
                     on_error: Callable[[BaseException], None]) -> None:
        """docker-compose.yml and launch.sh for `plans` in `folder` (PlanError, UserError)."""
        images = dict(self.service.images)

        def job() -> list[Path]:
            return export_to_folder(plans, images, folder, host_network=host_network,
                                    overwrite=overwrite)[1]

        self.tasks.run(job, description=f"Exporting to {folder}", on_done=on_done,
                       on_error=on_error)

    def fetch_log(self, backend: Backend, on_done: Callable[[str], None],
                  on_error: Callable[[BaseException], None] | None = None) -> None:
        self.tasks.run(lambda: self.service.log_tail(backend, 300),
                       description=f"Reading the log of {backend.name}", on_done=on_done,
                       on_error=on_error)

    def close(self) -> None:
        self._timer.stop()
        self.service.close()
