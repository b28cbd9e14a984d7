"""BackendCard: one backend on a GPU lane — state, model, port, uptime, VRAM, actions."""

from __future__ import annotations

import time
from pathlib import PurePath

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QAction, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.runtime.backend import Backend, BackendState
from app.runtime.hosts import PROCESSES

STATE_COLOURS = {
    BackendState.STARTING: "#8a6d00", BackendState.LOADING: "#1f5fbf",
    BackendState.READY: "#1e7d32", BackendState.STOPPING: "#6b6b6b",
    BackendState.STOPPED: "#6b6b6b", BackendState.FAILED: "#b3261e",
}


CARD_MIN_WIDTH = 240
"""Narrow enough for a card beside its lane's title in a small window; long names elide."""
CARD_WIDEST_HINT = 420
"""The widest a card asks to be: a long model name elides rather than fill a whole row."""

WHAT_RUNS = {"docker": "container", "process": "process"}
"""What a backend is on each kind of host, as the card's menu and tooltips name it."""


def _uptime(seconds: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(seconds))


class ElidedLabel(QWidget):
    """One line that ends in "…" when it is too long for its width, the whole text in its
    tooltip: a model's file name must not widen its card past the window's edge."""

    def __init__(self, text: str = "", *, bold: bool = False) -> None:
        super().__init__()
        self._text = ""
        if bold:
            font = self.font()
            font.setBold(True)
            self.setFont(font)
        # the whole text's width is asked for, but it may shrink to a few characters
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.setText(text)

    def text(self) -> str:
        return self._text

    def shown_text(self) -> str:
        """What the user reads at the current width."""
        return self.fontMetrics().elidedText(self._text, Qt.TextElideMode.ElideMiddle,
                                             self.width())

    def setText(self, text: str) -> None:
        self._text = text
        self.setToolTip(text)
        self.updateGeometry()
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(self.fontMetrics().horizontalAdvance(self._text),
                     self.fontMetrics().height())

    def minimumSizeHint(self) -> QSize:
        return QSize(self.fontMetrics().horizontalAdvance("…") * 4, self.fontMetrics().height())

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.drawText(self.rect(), int(Qt.AlignmentFlag.AlignLeft
                                          | Qt.AlignmentFlag.AlignVCenter), self.shown_text())
        painter.end()


class BackendCard(QFrame):
    """Shows one backend; asks for logs, restart and stop (removing the container or the
    process's log, or keeping it from the Stop button's menu) through signals.

    `host_kind` is its host's kind ("docker" or "process"): the texts name what runs.
    """

    logs_requested = Signal(object)
    stop_requested = Signal(object)
    restart_requested = Signal(object)
    stop_kept_requested = Signal(object)

    def __init__(self, backend: Backend, host_kind: str = "docker") -> None:
        super().__init__()
        self.backend = backend
        self.runs_as = WHAT_RUNS.get(host_kind, "container")
        self.setObjectName("backendCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet("#backendCard { border: 1px solid palette(mid); border-radius: 6px; }")
        self.setMinimumWidth(CARD_MIN_WIDTH)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        self.name_label = ElidedLabel(backend.name, bold=True)
        self.state_label = QLabel()
        top.addWidget(self.name_label, 1)
        top.addStretch(1)
        top.addWidget(self.state_label)
        layout.addLayout(top)
        self.model_label = ElidedLabel(f"{backend.engine} · {PurePath(backend.model).name}")
        self.details_label = QLabel()
        self.details_label.setWordWrap(True)
        self.reason_label = QLabel()
        self.reason_label.setWordWrap(True)
        self.reason_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.reason_label.setStyleSheet(f"color: {STATE_COLOURS[BackendState.FAILED]};")
        for label in (self.model_label, self.details_label, self.reason_label):
            layout.addWidget(label)
        layout.addStretch(1)
        buttons = QHBoxLayout()
        self.logs_button = QPushButton("Logs")
        self.restart_button = QPushButton("Restart")
        self.stop_button = QToolButton()
        self.stop_button.setText("Stop")
        self.stop_button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        self.stop_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.logs_button.setToolTip(f"Show the {self.runs_as}'s log below")
        kept = ("Stop and keep the container (its log stays)" if self.runs_as == "container"
                else "Stop the process and keep its log")
        self.keep_action = QAction(kept, self)
        self.keep_action.triggered.connect(lambda: self.stop_kept_requested.emit(self.backend))
        self.stop_button.addAction(self.keep_action)
        for button in (self.logs_button, self.restart_button, self.stop_button):
            buttons.addWidget(button)
        if not backend.managed:
            self.restart_button.setEnabled(False)
            self.stop_button.setEnabled(False)
        layout.addLayout(buttons)
        self.logs_button.clicked.connect(lambda: self.logs_requested.emit(self.backend))
        self.stop_button.clicked.connect(lambda: self.stop_requested.emit(self.backend))
        self.restart_button.clicked.connect(lambda: self.restart_requested.emit(self.backend))
        self.update_view()

    def sizeHint(self) -> QSize:
        """Wide enough for the details on one line and the whole model name, up to
        CARD_WIDEST_HINT; the layout may give it less (down to CARD_MIN_WIDTH)."""
        hint = super().sizeHint()
        layout = self.layout()
        margins = layout.contentsMargins() if layout is not None else self.contentsMargins()
        metrics = self.details_label.fontMetrics()
        one_line = (metrics.horizontalAdvance(self.details_label.text())
                    + 2 * metrics.averageCharWidth()  # the wrapping's own rounding
                    + margins.left() + margins.right() + 2 * self.frameWidth())
        width = min(max(hint.width(), one_line, CARD_MIN_WIDTH), CARD_WIDEST_HINT)
        return QSize(width, hint.height())

    def update_view(self) -> None:
        backend = self.backend
        colour = ("#6b6b6b" if backend.engine_unreachable
                  else STATE_COLOURS.get(backend.state, "#6b6b6b"))
        self.state_label.setText(f'<span style="color:white;background:{colour};'
                                 f'padding:2px 6px;">&nbsp;{backend.shown_state}&nbsp;</span>')
        self.state_label.setToolTip(backend.engine_unreachable)
        if backend.measured_vram_mib is None and backend.measured_ram_mib is not None:
            memory = f"RAM {_size(backend.measured_ram_mib)}"  # a CPU backend
        else:
            memory = ("VRAM —" if backend.measured_vram_mib is None
                      else f"VRAM {_size(backend.measured_vram_mib)}")
        live = backend.state.is_live
        # a process's pid: what `kill` and `rigdeck ps` name it by
        pid = f" · pid {backend.ref}" if backend.host == PROCESSES else ""
        self.details_label.setText(
            f"port {backend.port} · up {_uptime(backend.uptime_s) if live else '—'} · "
            f"{memory}{pid}")
        failed = backend.state is BackendState.FAILED
        # how it ended (signal, exit code or the log's reason), in the failed colour
        self.reason_label.setText(backend.reason if failed else "")
        self.reason_label.setVisible(failed)
        self.stop_button.setText("Remove" if not live else "Stop")
        what = self.runs_as
        self.stop_button.setToolTip(
            (f"Stop the {what} and remove it" if what == "container" else
             "Stop the process and delete its log") if live else
            (f"Remove the stopped {what}" if what == "container" else
             "Forget the stopped process and delete its log"))
        self.keep_action.setEnabled(live)


def _size(mib: float) -> str:
    """Memory as the card shows it: GiB, or MiB below one GiB (a small model)."""
    return f"{mib / 1024:.1f} GiB" if mib >= 1024 else f"{mib:.0f} MiB"
