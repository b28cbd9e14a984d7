"""BackendCard: one backend on a GPU lane — state, model, port, uptime, VRAM, actions."""

from __future__ import annotations

import time
from pathlib import PurePath

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QToolButton, QVBoxLayout

from app.runtime.backend import Backend, BackendState
from app.runtime.hosts import PROCESSES

STATE_COLOURS = {
    BackendState.STARTING: "#8a6d00", BackendState.LOADING: "#1f5fbf",
    BackendState.READY: "#1e7d32", BackendState.STOPPING: "#6b6b6b",
    BackendState.STOPPED: "#6b6b6b", BackendState.FAILED: "#b3261e",
}


def _uptime(seconds: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(seconds))


class BackendCard(QFrame):
    """Shows one backend; asks for logs, restart and stop (removing the container, or
    keeping it from the Stop button's menu) through signals."""

    logs_requested = Signal(object)
    stop_requested = Signal(object)
    restart_requested = Signal(object)
    stop_kept_requested = Signal(object)

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.backend = backend
        self.setObjectName("backendCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet("#backendCard { border: 1px solid palette(mid); border-radius: 6px; }")
        self.setMinimumWidth(260)
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        self.name_label = QLabel(f"<b>{backend.name}</b>")
        self.state_label = QLabel()
        top.addWidget(self.name_label)
        top.addStretch(1)
        top.addWidget(self.state_label)
        layout.addLayout(top)
        self.model_label = QLabel(f"{backend.engine} · {PurePath(backend.model).name}")
        self.details_label = QLabel()
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
        self.keep_action = QAction("Stop and keep the container (its log stays)", self)
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

    def update_view(self) -> None:
        backend = self.backend
        colour = STATE_COLOURS.get(backend.state, "#6b6b6b")
        self.state_label.setText(f'<span style="color:white;background:{colour};'
                                 f'padding:2px 6px;">&nbsp;{backend.state}&nbsp;</span>')
        vram = ("—" if backend.measured_vram_mib is None
                else f"{backend.measured_vram_mib / 1024:.1f} GiB")
        live = backend.state.is_live
        # a process's pid: what `kill` and `rigdeck ps` name it by
        pid = f" · pid {backend.ref}" if backend.host == PROCESSES else ""
        self.details_label.setText(
            f"port {backend.port} · up {_uptime(backend.uptime_s) if live else '—'} · "
            f"VRAM {vram}{pid}")
        failed = backend.state is BackendState.FAILED
        # how it ended (signal, exit code or the log's reason), in the failed colour
        self.reason_label.setText(backend.reason if failed else "")
        self.reason_label.setVisible(failed)
        self.stop_button.setText("Remove" if not live else "Stop")
        self.keep_action.setEnabled(live)
