"""The services every page may use, built once by the composition root and passed down."""

from dataclasses import dataclass

from app.paths import AppPaths
from app.secrets import SecretStore
from app.settings import SettingsStore
from ui.monitor_feed import MonitorFeed
from ui.notifier import Notifier
from ui.tasks import TaskRunner


@dataclass
class Services:
    """No globals: a page receives this object and keeps what it needs."""

    paths: AppPaths
    settings: SettingsStore
    secrets: SecretStore
    notifier: Notifier
    tasks: TaskRunner
    monitor: MonitorFeed

    @classmethod
    def build(cls, paths: AppPaths) -> "Services":
        """Create the services for one run of the app, reporting settings problems."""
        notifier = Notifier(str(paths.log_file))
        settings = SettingsStore(paths.settings_file)
        for problem in settings.problems:
            notifier.warning(problem)
        return cls(
            paths=paths,
            settings=settings,
            secrets=SecretStore(),
            notifier=notifier,
            tasks=TaskRunner(notifier),
            monitor=_build_monitor(settings, paths, notifier),
        )

    def shutdown(self) -> None:
        self.monitor.stop()
        self.tasks.shutdown()


def _build_monitor(settings: SettingsStore, paths: AppPaths, notifier: Notifier) -> MonitorFeed:
    """The monitor, not yet sampling; a bad replay file is reported, not raised."""
    feed = MonitorFeed.build(settings, paths)
    for problem in feed.service.problems:
        notifier.warning(problem)
    return feed
