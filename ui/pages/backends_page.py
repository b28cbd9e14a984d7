"""The Backends page: each host with its GPUs as lanes, each backend as a card on the
lane(s) it uses, a Start dialog, and the log of the chosen backend."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import (
    QFrame,
    QGroupBox,
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

from app.engines.plan import LaunchPlan
from app.runtime.backend import Backend
from app.runtime.backends_service import WillNotFitError
from ui.backend_card import BackendCard
from ui.backend_feed import BackendFeed
from ui.backend_start_dialog import BackendStartDialog
from ui.services import Services

CPU_LANE = "CPU"


def _lanes(backends: list[Backend]) -> dict[str, list[Backend]]:
    """GPU id (or CPU) → the backends that use it; a backend on two GPUs is on both."""
    lanes: dict[str, list[Backend]] = {}
    for backend in backends:
        for gpu in backend.gpus or (CPU_LANE,):
            lanes.setdefault(gpu, []).append(backend)
    return dict(sorted(lanes.items(), key=lambda kv: (kv[0] == CPU_LANE, kv[0])))


class BackendsPage(QWidget):
    """Subscribes to the backend feed; never calls Docker or HTTP itself."""

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        self.feed: BackendFeed = services.backends
        self.cards: list[BackendCard] = []
        self._log_of: Backend | None = None
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        title = QLabel("<h2>Backends</h2>")
        self.start_button = QPushButton("Start backend…")
        self.start_button.clicked.connect(self._on_start_button_clicked)
        top.addWidget(title)
        top.addStretch(1)
        top.addWidget(self.start_button)
        layout.addLayout(top)
        self.key_note = QLabel(self.feed.service.keys.not_persisted_reason or "")
        self.key_note.setWordWrap(True)
        self.key_note.setVisible(bool(self.key_note.text()))
        layout.addWidget(self.key_note)
        splitter = QSplitter()
        splitter.setOrientation(splitter.orientation().Vertical)
        self.hosts_area = QScrollArea()
        self.hosts_area.setWidgetResizable(True)
        self.hosts_widget = QWidget()
        self.hosts_layout = QVBoxLayout(self.hosts_widget)
        self.hosts_area.setWidget(self.hosts_widget)
        splitter.addWidget(self.hosts_area)
        log_box = QWidget()
        log_layout = QVBoxLayout(log_box)
        log_layout.setContentsMargins(0, 0, 0, 0)
        self.log_title = QLabel("Log: choose Logs on a backend")
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(5000)
        log_layout.addWidget(self.log_title)
        log_layout.addWidget(self.log_view)
        splitter.addWidget(log_box)
        splitter.setSizes([560, 200])
        layout.addWidget(splitter, 1)
        self.feed.updated.connect(self._on_feed_updated)
        self._on_feed_updated(self.feed.backends)
        self.feed.refresh()

    def _clear_hosts(self) -> None:
        self.cards = []
        while self.hosts_layout.count():
            item = self.hosts_layout.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()

    def _on_feed_updated(self, backends: list[Backend]) -> None:
        self._clear_hosts()
        service = self.feed.service
        for name, host in service.hosts.items():
            on_host = [b for b in backends if b.host == name]
            error = service.host_errors.get(name)
            if host.kind == "process" and not on_host:
                continue
            box = QGroupBox(f"{name}  —  {host.url}")
            box_layout = QVBoxLayout(box)
            if error:
                problem = QLabel(error)
                problem.setWordWrap(True)
                box_layout.addWidget(problem)
            elif not on_host:
                box_layout.addWidget(QLabel("No backends on this host. Start one with "
                                            "“Start backend…”."))
            for lane, lane_backends in _lanes(on_host).items():
                box_layout.addWidget(self._lane(lane, lane_backends))
            others = [f for f in service.foreign if f.host == name]
            if others:
                text = ", ".join(f"{f.name} ({f.status})" for f in others)
                box_layout.addWidget(QLabel(f"Not started by Rigdeck (read-only): {text}"))
            self.hosts_layout.addWidget(box)
        self.hosts_layout.addStretch(1)

    def _lane(self, lane: str, backends: list[Backend]) -> QWidget:
        row = QFrame()
        layout = QHBoxLayout(row)
        label = QLabel(f"<b>GPU {lane}</b>" if lane != CPU_LANE else "<b>CPU</b>")
        label.setFixedWidth(70)
        layout.addWidget(label)
        for backend in backends:
            card = BackendCard(backend)
            card.logs_requested.connect(self._on_card_logs_requested)
            card.stop_requested.connect(self._on_card_stop_requested)
            card.restart_requested.connect(self._on_card_restart_requested)
            self.cards.append(card)
            layout.addWidget(card)
        layout.addStretch(1)
        return row

    def _on_card_logs_requested(self, backend: Backend) -> None:
        self._log_of = backend
        self.log_title.setText(f"Log: {backend.name} on {backend.host}")
        self.feed.fetch_log(backend, self._on_log_fetched)

    def _on_log_fetched(self, text: str) -> None:
        self.log_view.setPlainText(text)
        bar = self.log_view.verticalScrollBar()
        bar.setValue(bar.maximum())

    def _on_card_stop_requested(self, backend: Backend) -> None:
        self.feed.stop_backend(backend)

    def _on_card_restart_requested(self, backend: Backend) -> None:
        self.feed.restart_backend(backend)

    def _on_start_button_clicked(self) -> None:
        self.open_start_dialog()

    def open_start_dialog(self, plan: LaunchPlan | None = None) -> None:
        """The Start dialog, prefilled with `plan` (from Fit or Library) when given."""
        dialog = BackendStartDialog(list(self.feed.service.hosts), plan, self)
        if dialog.exec() != BackendStartDialog.DialogCode.Accepted:
            return
        self._start(dialog.plan(), dialog.host(), force=False)

    def _start(self, plan: LaunchPlan, host: str, force: bool) -> None:
        def failed(error: BaseException) -> None:
            if isinstance(error, WillNotFitError) and not force:
                answer = QMessageBox.question(self, "It will not fit", str(error))
                if answer == QMessageBox.StandardButton.Yes:
                    self._start(plan, host, force=True)
                return
            self.services.notifier.error(f"Starting {plan.backend_name}", error)

        self.feed.start_backend(plan, host, force=force, on_error=failed)


def backends_page(services: Services, open_settings: Callable[[], None]) -> QWidget:
    return BackendsPage(services)
