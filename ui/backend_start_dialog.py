"""The Start dialog: a plan's main values, prefilled from Fit or Library when they open it."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from app.engines.plan import ENGINES, LaunchPlan, PlanError

EDITABLE = frozenset({"model", "name", "engine", "context", "gpus", "port"})


def _more_settings(plan: LaunchPlan | None) -> str:
    """The plan's other settings (from Fit or a plan file), kept as they are on Start."""
    if plan is None:
        return ""
    rest = {k: v for k, v in plan.to_dict().items() if k not in EDITABLE}
    return " · ".join(f"{k} {' '.join(map(str, v)) if isinstance(v, list) else v}"
                      for k, v in rest.items())


class BackendStartDialog(QDialog):
    """Collects a LaunchPlan and a host; `plan()` checks it (PlanError says why not)."""

    def __init__(self, hosts: list[str], plan: LaunchPlan | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Start a backend")
        form = QFormLayout(self)
        self.model_edit = QLineEdit(plan.model if plan else "")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._on_browse_clicked)
        row = QHBoxLayout()
        row.addWidget(self.model_edit)
        row.addWidget(browse)
        form.addRow("Model", row)
        self.name_edit = QLineEdit(plan.name if plan else "")
        self.name_edit.setPlaceholderText("from the model file")
        form.addRow("Name", self.name_edit)
        self.engine_combo = QComboBox()
        self.engine_combo.addItems(list(ENGINES))
        if plan:
            self.engine_combo.setCurrentText(plan.engine)
        form.addRow("Engine", self.engine_combo)
        self.host_combo = QComboBox()
        self.host_combo.addItems(hosts)
        form.addRow("Host", self.host_combo)
        self.context_spin = QSpinBox()
        self.context_spin.setRange(0, 1 << 20)
        self.context_spin.setSpecialValueText("engine default")
        self.context_spin.setValue(plan.context or 0 if plan else 0)
        form.addRow("Context", self.context_spin)
        self.gpus_edit = QLineEdit(",".join(plan.gpus) if plan else "")
        self.gpus_edit.setPlaceholderText("e.g. 0,1 — empty: CPU only")
        form.addRow("GPUs", self.gpus_edit)
        self.port_spin = QSpinBox()
        self.port_spin.setRange(0, 65535)
        self.port_spin.setSpecialValueText("a free one")
        self.port_spin.setValue(plan.port or 0 if plan else 0)
        form.addRow("Port", self.port_spin)
        self.more_label = QLabel(_more_settings(plan))
        self.more_label.setWordWrap(True)
        self.more_label.setVisible(bool(self.more_label.text()))
        form.addRow("Also", self.more_label)
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        form.addRow(self.error_label)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        self.accept_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.accept_button.setText("Start")
        buttons.accepted.connect(self._on_buttons_accepted)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self._base = plan

    def _on_browse_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model file", "", "GGUF (*.gguf);;All (*)")
        if path:
            self.model_edit.setText(path)

    def host(self) -> str:
        return self.host_combo.currentText()

    def plan(self) -> LaunchPlan:
        """The plan as entered.

        Raises:
            PlanError: a missing model or values in conflict.
        """
        raw = self._base.to_dict() if self._base else {}
        raw.update({"model": self.model_edit.text().strip(),
                    "engine": self.engine_combo.currentText()})
        if self.name_edit.text().strip():
            raw["name"] = self.name_edit.text().strip()
        if self.context_spin.value():
            raw["context"] = self.context_spin.value()
        gpus = [g.strip() for g in self.gpus_edit.text().split(",") if g.strip()]
        raw["gpus"] = gpus
        if self.port_spin.value():
            raw["port"] = self.port_spin.value()
        return LaunchPlan.from_dict(raw)

    def _on_buttons_accepted(self) -> None:
        try:
            self.plan()
        except PlanError as exc:
            self.error_label.setText(str(exc))
            return
        self.accept()
