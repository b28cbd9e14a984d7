"""The services every page may use, built once by the composition root and passed down."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.autostart import LoginItem, login_item_for_this_system
from app.bench.service import build_bench
from app.chat.service import ChatService
from app.gateway.service import build_gateway
from app.paths import AppPaths
from app.roles.store import RoleStore
from app.runtime.setup import build_service, follow_settings, hosts_store
from app.secrets import SecretStore
from app.settings import SettingsStore
from ui.backend_feed import BackendFeed
from ui.bench.feed import BenchFeed
from ui.gateway_feed import GatewayFeed
from ui.library_feed import LibraryFeed
from ui.monitor_feed import MonitorFeed
from ui.notifier import Notifier
from ui.role_feed import RoleFeed
from ui.tasks import TaskRunner

if TYPE_CHECKING:
    from app.fit.session import FitSession


@dataclass
class Services:
    """No globals: a page receives this object and keeps what it needs."""

    paths: AppPaths
    settings: SettingsStore
    secrets: SecretStore
    notifier: Notifier
    tasks: TaskRunner
    monitor: MonitorFeed
    backends: BackendFeed
    library: LibraryFeed
    login_item: LoginItem | None
    """Where "start in the tray at login" is written; None where the system has none."""
    roles: RoleFeed
    chat: ChatService
    """Conversations with every running backend and saved endpoint (Chat page, tray)."""
    make_fit: Callable[[], FitSession]
    bench: BenchFeed
    """Bench runs over the same backends (Bench page, tray)."""
    gateway: GatewayFeed
    """The Gateway: one OpenAI endpoint for every running model and role (Gateway page)."""

    @property
    def fit(self) -> FitSession:
        """The Fit workflow (model, GPUs, plan, estimate), built on first use so that the
        estimator's modules stay out of start-up; its slow work runs on `tasks`."""
        return self.make_fit()

    @classmethod
    def build(cls, paths: AppPaths) -> Services:
        """Create the services for one run of the app; every user file that cannot be read
        is said once through the notifier, and the app starts with the others."""
        notifier = Notifier(str(paths.log_file))
        settings = SettingsStore(paths.settings_file)
        for problem in settings.problems:
            notifier.warning(problem)
        secrets = SecretStore()
        tasks = TaskRunner(notifier)
        backends = BackendFeed(build_service(paths, settings, secrets=secrets), tasks,
                               lambda: list(settings.get("model_folders")))
        follow_settings(backends.service, settings)
        chat = ChatService(paths, secrets, backends.service,
                           max_reply_mib=settings.get("chat_max_reply_mib"))
        settings.on_change(lambda name, value: setattr(chat, "max_reply_mib", value)
                           if name == "chat_max_reply_mib" else None)
        _report_user_files(paths, chat, notifier)
        roles = _build_roles(paths, tasks, notifier, chat)
        gateway = GatewayFeed(build_gateway(paths, settings, backends.service, chat=chat,
                                            roles=roles.store, secrets=secrets),
                              tasks, settings, notifier)
        return cls(
            paths=paths,
            settings=settings,
            secrets=secrets,
            notifier=notifier,
            tasks=tasks,
            monitor=_build_monitor(settings, paths, notifier),
            backends=backends,
            library=LibraryFeed.build(settings, paths, tasks),
            login_item=login_item_for_this_system(),
            roles=roles,
            chat=chat,
            make_fit=_lazy_fit(tasks, settings, paths),
            bench=BenchFeed(build_bench(paths, backends.service), tasks),
            gateway=gateway,
        )

    def shutdown(self) -> None:
        self.bench.close()  # a run in progress is cancelled: its backend stops
        self.monitor.stop()
        self.backends.stop()
        self.library.stop()
        self.tasks.shutdown()
        self.gateway.close()  # after the runner: a start in flight has ended
        self.chat.close()
        self.backends.close()
        self.library.close()


def _lazy_fit(tasks: TaskRunner, settings: SettingsStore, paths: AppPaths
              ) -> Callable[[], FitSession]:
    """The Fit session, made once on first call."""
    made: list[FitSession] = []

    def fit() -> FitSession:
        if not made:
            from app.fit import session

            made.append(session.FitSession(runner=tasks.run, settings=settings,
                                           data_dir=paths.data))
        return made[0]

    return fit


def _build_monitor(settings: SettingsStore, paths: AppPaths, notifier: Notifier) -> MonitorFeed:
    """The monitor, not yet sampling; a bad replay file is reported, not raised."""
    feed = MonitorFeed.build(settings, paths)
    for problem in feed.service.problems:
        notifier.warning(problem)
    return feed


def _report_user_files(paths: AppPaths, chat: ChatService, notifier: Notifier) -> None:
    """Say once which presets, endpoints, hosts and thinking-memory files could not be read
    (settings and roles say theirs as they load); the app starts with the others."""
    chat.presets.all()
    chat.endpoints.all()
    hosts = hosts_store(paths)
    hosts.load()
    for problem in [*chat.presets.problems, *chat.endpoints.problems, *hosts.problems,
                    *chat.memory.problems]:
        notifier.warning(problem)


def _build_roles(paths: AppPaths, tasks: TaskRunner, notifier: Notifier,
                 chat: ChatService) -> RoleFeed:
    """The roles; a role file that cannot be read is reported, not raised."""
    feed = RoleFeed(RoleStore(paths.config / "roles"), tasks, chat)
    feed.roles()
    for problem in feed.store.problems:
        notifier.warning(problem)
    return feed
