"""HostPanel: one host on the Backends page — the doctor's findings, its GPUs as lanes
(name and free memory) with a card per backend on each lane it uses, and the containers
Rigdeck did not start, listed read-only."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QGroupBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.runtime.backend import Backend
from app.runtime.doctor import Check, CheckStatus, HostReport
from app.runtime.host_gpus import HostGpu
from app.runtime.hosts import Host
from app.runtime.observed import Foreign
from ui.backend_card import BackendCard, ElidedLabel
from ui.flow_layout import FlowLayout

CPU_LANE = "CPU"
CHECK_MARKS = {CheckStatus.OK: ("✓", "#1e7d32"), CheckStatus.WARN: ("!", "#8a6d00"),
               CheckStatus.FAIL: ("✗", "#b3261e"), CheckStatus.SKIP: ("·", "#6b6b6b")}


def lanes(backends: list[Backend], gpus: tuple[HostGpu, ...]) -> list[tuple[str, list[Backend]]]:
    """(lane, backends) for each GPU of the host, then GPUs only backends name, then CPU.

    A backend on two GPUs is on both lanes; a GPU named by UUID finds its index's lane.
    """
    by_id = {g.uuid: g.index for g in gpus if g.uuid}
    out: dict[str, list[Backend]] = {g.index: [] for g in gpus}
    for backend in backends:
        for gpu in backend.gpus or (CPU_LANE,):
            out.setdefault(by_id.get(gpu, gpu), []).append(backend)
    known = [g.index for g in gpus]
    extra = sorted(k for k in out if k not in known and k != CPU_LANE)
    order = [*known, *extra, *([CPU_LANE] if CPU_LANE in out else [])]
    return [(lane, out[lane]) for lane in order]


def _lane_title(lane: str, gpu: HostGpu | None) -> str:
    if lane == CPU_LANE:
        return "<b>CPU</b>"
    if gpu is None:
        return f"<b>GPU {html.escape(lane)}</b>"
    free = "" if gpu.free_mib is None else f"<br>{gpu.free_mib / 1024:.1f} GiB free"
    return f"<b>GPU {gpu.index}</b><br>{html.escape(gpu.name)}{free}"


def _row(check: Check) -> str:
    mark, colour = CHECK_MARKS[check.status]
    fix = f" <i>Fix: {html.escape(check.fix)}</i>" if check.fix else ""
    return (f'<span style="color:{colour};"><b>{mark}</b></span> '
            f"<b>{html.escape(check.name)}</b>: {html.escape(check.detail)}{fix}")


def doctor_text(report: HostReport) -> str:
    """The checks as rich text: what the host runs (the first check: engine and version),
    each warning or failure with what was found and the fix, then the other passed ones
    on one line, then what could not be checked."""
    first, *rest = report.checks
    rows = [_row(first)] if first.status is CheckStatus.OK else []
    rows += [_row(c) for c in report.checks if c.status in (CheckStatus.WARN, CheckStatus.FAIL)]
    passed = [c.name for c in rest if c.status is CheckStatus.OK]
    if passed:
        mark, colour = CHECK_MARKS[CheckStatus.OK]
        rows.append(f'<span style="color:{colour};"><b>{mark}</b></span> '
                    f"{html.escape(', '.join(passed))}")
    skipped: dict[str, list[str]] = {}
    for check in report.checks:
        if check.status is CheckStatus.SKIP:
            skipped.setdefault(check.detail, []).append(check.name)
    mark, colour = CHECK_MARKS[CheckStatus.SKIP]
    rows += [f'<span style="color:{colour};">{mark} {html.escape(", ".join(names))}: not '
             f"checked ({html.escape(why)})</span>" for why, names in skipped.items()]
    return "<br>".join(rows)


def doctor_details(report: HostReport) -> str:
    """Every check with what was found (the tooltip of the doctor's summary)."""
    return "\n".join(f"{c.name} [{c.status}]: {c.detail}" for c in report.checks)


class HostPanel(QGroupBox):
    """Everything about one host; its `cards` are connected by the page."""

    def __init__(self, host: Host, backends: list[Backend], *, error: str | None,
                 report: HostReport | None, foreign: list[Foreign]) -> None:
        super().__init__(host.name)
        self.setObjectName(f"host-{host.name}")
        self.cards: list[BackendCard] = []
        self._host_kind = host.kind
        layout = QVBoxLayout(self)
        # the address under the name, not in the title: a long ssh:// URL in a group box's
        # title would keep the panel (and its cards) from fitting a narrow window
        self.url_label = ElidedLabel(host.url)
        self.url_label.setEnabled(False)  # the muted colour
        layout.addWidget(self.url_label)
        self.doctor_label = QLabel(doctor_text(report) if report else "Checking this host…")
        self.doctor_label.setWordWrap(True)
        self.doctor_label.setObjectName("doctor")
        self.doctor_label.setToolTip(doctor_details(report) if report else "")
        layout.addWidget(self.doctor_label)
        self.problem_label = QLabel(error or "")
        self.problem_label.setWordWrap(True)
        self.problem_label.setVisible(bool(error) and (report is None or not report.failed))
        layout.addWidget(self.problem_label)
        gpus = report.gpus if report else ()
        by_index = {g.index: g for g in gpus}
        for lane, lane_backends in lanes(backends, gpus):
            layout.addWidget(self._lane(_lane_title(lane, by_index.get(lane)), lane_backends))
        if not backends and not error:
            layout.addWidget(QLabel("No backends on this host. Start one with "
                                    "“Start backend…”."))
        self.foreign_label = QLabel()
        self.foreign_label.setWordWrap(True)
        if foreign:
            listed = ", ".join(f"{f.name} ({f.image or 'no image'}, {f.status})" for f in foreign)
            self.foreign_label.setText(f"Not started by Rigdeck (read-only): {listed}")
        self.foreign_label.setVisible(bool(foreign))
        layout.addWidget(self.foreign_label)

    def _lane(self, title: str, backends: list[Backend]) -> QWidget:
        """The lane's title, then its cards in rows that wrap at the panel's width."""
        row = QFrame()
        row.setObjectName("lane")
        layout = QHBoxLayout(row)
        label = QLabel(title)
        label.setFixedWidth(130)
        label.setWordWrap(True)
        layout.addWidget(label, 0, Qt.AlignmentFlag.AlignTop)
        cards = QWidget()
        cards.setObjectName("laneCards")
        flow = FlowLayout(cards)
        for backend in backends:
            card = BackendCard(backend, self._host_kind)
            self.cards.append(card)
            flow.addWidget(card)
        if not backends:
            flow.addWidget(QLabel("free"))
        layout.addWidget(cards, 1)
        return row
