"""The Backends page: each host with the doctor's findings and its GPUs as lanes, each
backend as a card on the lane(s) it uses, a Start dialog (prefilled from Fit or
Library), Export… of the backends' plans, and the log of the chosen backend."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.engines.export import COMPOSE_FILE, LAUNCHER_FILE
from app.engines.plan import LaunchPlan
from app.errors import UserError
from app.fit.launch import launch_plan
from app.runtime.backend import Backend
from app.runtime.backends_service import WillNotFitError
from app.runtime.doctor import HostReport
from ui.backend_card import BackendCard
from ui.backend_feed import BackendFeed
from ui.backend_host_panel import HostPanel
from ui.backend_start_dialog import BackendStartDialog
from ui.pages.fit_page import ChosenPlan
from ui.questions import ask, stop_asking_first
from ui.services import Services


class BackendsPage(QWidget):
    """Subscribes to the backend feed; never calls Docker or HTTP itself."""

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        self.feed: BackendFeed = services.backends
        self.panels: dict[str, HostPanel] = {}
        self.reports: dict[str, HostReport] = {}
        self.start_dialog: BackendStartDialog | None = None
        self.question: QMessageBox | None = None
        self._checking = False
        self._log_of: Backend | None = None
        self._log_busy = False
        self._shown_shape: tuple[object, ...] | None = None
        self.check_button = QPushButton("Check hosts")
        self.check_button.setToolTip("Run the host doctor: Docker, NVIDIA runtime, images, "
                                     "disk, ports")
        self.check_button.clicked.connect(self._on_check_button_clicked)
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Write the backends' plans as docker-compose.yml and a "
                                      "shell launcher, to run them without Rigdeck")
        self.export_button.clicked.connect(self._on_export_button_clicked)
        self.start_button = QPushButton("Start backend…")
        self.start_button.clicked.connect(self._on_start_button_clicked)
        self.key_note = QLabel()
        self.key_note.setWordWrap(True)
        self.key_note.setVisible(False)
        # Finding the keyring may ask D-Bus: not on the GUI thread.
        keys = self.feed.service.keys
        services.tasks.run(lambda: keys.not_persisted_reason, description="Checking the keyring",
                           on_done=self._on_key_check_done)
        self.hosts_widget = QWidget()
        self.hosts_layout = QVBoxLayout(self.hosts_widget)
        self.log_title = QLabel("Log: choose Logs on a backend")
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(5000)
        self._lay_out()
        self.feed.updated.connect(self._on_feed_updated)
        self._on_feed_updated(self.feed.backends)
        self.feed.refresh()
        self.check_hosts()

    def _lay_out(self) -> None:
        """Buttons on top, the hosts (scrolling) over the log, which the user can resize."""
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(QLabel("<h2>Backends</h2>"))
        top.addStretch(1)
        for button in (self.check_button, self.export_button, self.start_button):
            top.addWidget(button)
        layout.addLayout(top)
        layout.addWidget(self.key_note)
        splitter = QSplitter()
        splitter.setOrientation(splitter.orientation().Vertical)
        hosts_area = QScrollArea()
        hosts_area.setWidgetResizable(True)
        hosts_area.setWidget(self.hosts_widget)
        splitter.addWidget(hosts_area)
        log_box = QWidget()
        log_layout = QVBoxLayout(log_box)
        log_layout.setContentsMargins(0, 0, 0, 0)
        log_layout.addWidget(self.log_title)
        log_layout.addWidget(self.log_view)
        splitter.addWidget(log_box)
        splitter.setStretchFactor(0, 4)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([620, 100])
        layout.addWidget(splitter, 1)

    @property
    def cards(self) -> list[BackendCard]:
        return [card for panel in self.panels.values() for card in panel.cards]

    # ------------------------------------------------------------------ hosts
    def _shape(self, backends: list[Backend]) -> tuple[object, ...]:
        """What decides the panels' layout; states and uptimes only need a card update."""
        service = self.feed.service
        return (tuple((b.host, b.name, b.ref, b.gpus) for b in backends),
                tuple(service.hosts.values()),
                tuple((f.host, f.name, f.status) for f in service.foreign),
                tuple(sorted(service.host_errors.items())), tuple(map(id, self.reports.values())))

    def _on_feed_updated(self, backends: list[Backend]) -> None:
        shape = self._shape(backends)
        if shape == self._shown_shape:
            for card in self.cards:
                card.update_view()
        else:
            self._shown_shape = shape
            self._rebuild_panels(backends)
        self._follow_log(backends)

    def _rebuild_panels(self, backends: list[Backend]) -> None:
        while self.hosts_layout.count():
            item = self.hosts_layout.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        self.panels = {}
        service = self.feed.service
        for name, host in service.hosts.items():
            on_host = [b for b in backends if b.host == name]
            report = self.reports.get(name)
            usable = report is not None and all(c.status == "ok" for c in report.checks)
            if host.kind == "process" and not on_host and not usable:
                continue  # local processes only once a llama-server is there
            panel = HostPanel(host, on_host, error=service.host_errors.get(name), report=report,
                              foreign=[f for f in service.foreign if f.host == name])
            for card in panel.cards:
                card.logs_requested.connect(self._on_card_logs_requested)
                card.stop_requested.connect(self._on_card_stop_requested)
                card.stop_kept_requested.connect(self._on_card_stop_kept_requested)
                card.restart_requested.connect(self._on_card_restart_requested)
            self.panels[name] = panel
            self.hosts_layout.addWidget(panel)
        self.hosts_layout.addStretch(1)

    def check_hosts(self) -> None:
        """Run the host doctor on every host (off the GUI thread) and show what it finds."""
        if self._checking:
            return
        self._checking = True
        self.check_button.setEnabled(False)
        self.feed.diagnose(self._on_doctor_done)

    def _on_doctor_done(self, reports: list[HostReport]) -> None:
        self._checking = False
        self.check_button.setEnabled(True)
        self.reports = {r.host: r for r in reports}
        self._on_feed_updated(self.feed.backends)

    def _on_check_button_clicked(self) -> None:
        self.check_hosts()

    # ------------------------------------------------------------------ cards
    def _on_card_logs_requested(self, backend: Backend) -> None:
        self._log_of = backend
        self.log_title.setText(f"Log: {backend.name} on {backend.host}")
        self._fetch_log()

    def _follow_log(self, backends: list[Backend]) -> None:
        """Keep the shown log current while its backend is listed (every refresh)."""
        shown = self._log_of
        if shown is None:
            return
        if shown.key not in {b.key for b in backends}:
            self.log_title.setText(f"Log: {shown.name} on {shown.host} (gone)")
            self._log_of = None
            return
        self._fetch_log()

    def _fetch_log(self) -> None:
        if self._log_of is None or self._log_busy:
            return
        self._log_busy = True
        self.feed.fetch_log(self._log_of, self._on_log_fetched, self._on_log_failed)

    def _on_log_fetched(self, text: str) -> None:
        self._log_busy = False
        if text == self.log_view.toPlainText():
            return
        bar = self.log_view.verticalScrollBar()
        at_end = bar.value() == bar.maximum()
        self.log_view.setPlainText(text)
        if at_end:  # follow the end unless the user scrolled back to read
            bar.setValue(bar.maximum())

    def _on_log_failed(self, error: BaseException) -> None:
        self._log_busy = False
        self._log_of = None
        self.services.notifier.error("Reading the log", error)

    def _on_card_stop_requested(self, backend: Backend) -> None:
        self._stop(backend, keep=False)

    def _on_card_stop_kept_requested(self, backend: Backend) -> None:
        self._stop(backend, keep=True)

    def _stop(self, backend: Backend, *, keep: bool) -> None:
        """Stop `backend`; while the Chat page streams a reply from it, only after a Yes."""
        self.question = stop_asking_first(self.services, backend, self, keep=keep)

    def _on_card_restart_requested(self, backend: Backend) -> None:
        self.feed.relaunch_backend(backend)

    # ------------------------------------------------------------------ starting
    def _on_start_button_clicked(self) -> None:
        self.open_start_dialog()

    def open_start_dialog(self, plan: LaunchPlan | None = None) -> BackendStartDialog:
        """The Start dialog (window-modal), prefilled with `plan` (from Fit or Library),
        offering the roles whose adapters fit the model for preloading."""
        service = self.feed.service
        dialog = BackendStartDialog(
            list(service.hosts), plan, self, read_roles=self.services.roles.roles_for_model,
            images=dict(service.images), list_images=self.feed.images_on,
            process_hosts=frozenset(n for n, h in service.hosts.items() if h.kind == "process"))
        dialog.accepted.connect(lambda: self._start(dialog.plan(), dialog.host(), force=False))
        self.start_dialog = dialog
        dialog.open()
        return dialog

    def _on_key_check_done(self, reason: str | None) -> None:
        self.key_note.setText(reason or "")
        self.key_note.setVisible(bool(reason))

    def start_chosen_plan(self, chosen: ChosenPlan) -> None:
        """Fit's "Start with this plan": this page, with the Start dialog prefilled."""
        show_page = getattr(self.window(), "show_page", None)
        if callable(show_page):
            show_page("backends")
        plan = launch_plan(chosen.model_path, chosen.plan)
        self.open_start_dialog(replace(plan, extra_args=(*plan.extra_args, *chosen.extra_args)))

    def _start(self, plan: LaunchPlan, host: str, force: bool) -> None:
        def failed(error: BaseException) -> None:
            if isinstance(error, WillNotFitError) and not force:
                self._ask("It will not fit", str(error),
                          lambda: self._start(plan, host, force=True))
                return
            self.services.notifier.error(f"Starting {plan.backend_name}", error)

        self.feed.start_backend(plan, host, force=force, on_error=failed)

    def _ask(self, title: str, text: str, on_yes: Callable[[], None]) -> None:
        """A window-modal Yes/No question; `on_yes` runs only on Yes."""
        self.question = ask(self, title, text, on_yes)

    # ------------------------------------------------------------------ export
    def _exportable(self) -> list[Backend]:
        """Rigdeck's own backends (their plans); says so when there are none."""
        backends = [b for b in self.feed.backends if b.managed]
        if not backends:
            self.services.notifier.warning("No backends to export: start one first.")
        return backends

    def _on_export_button_clicked(self) -> None:
        if not self._exportable():
            return
        folder = QFileDialog.getExistingDirectory(self, "Export the backends to a folder")
        if folder:
            self.export_to(Path(folder))

    def export_to(self, folder: Path, *, overwrite: bool = False) -> None:
        """Write the running backends' plans as docker-compose.yml and launch.sh in `folder`;
        files already there are replaced only after the user says so."""
        backends = self._exportable()
        if not backends:
            return
        plans = [LaunchPlan.from_json(b.plan_json) for b in backends]
        hosts = self.feed.service.hosts
        host_network = all(hosts[b.host].host_network for b in backends)

        def failed(error: BaseException) -> None:
            existing = [p for p in (folder / COMPOSE_FILE, folder / LAUNCHER_FILE) if p.exists()]
            if isinstance(error, UserError) and existing and not overwrite:
                self._ask("Replace the files?", f"{folder} already holds "
                          f"{', '.join(p.name for p in existing)}. Replace them?",
                          lambda: self.export_to(folder, overwrite=True))
                return
            self.services.notifier.error("Exporting the backends", error)

        def done(paths: list[Path]) -> None:
            names = ", ".join(b.name for b in backends)
            self.services.notifier.info(
                f"Exported {names} to {folder} ({', '.join(p.name for p in paths)}). "
                "Set each backend's <NAME>_API_KEY before starting them there.")

        self.feed.export_plans(plans, folder, host_network=host_network, overwrite=overwrite,
                               on_done=done, on_error=failed)


def backends_page(services: Services, open_settings: Callable[[], None]) -> QWidget:
    return BackendsPage(services)
