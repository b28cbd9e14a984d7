"""The Start dialog: a plan's main values, prefilled from Fit or Library when they open it,
and the roles whose adapters to preload.

The roles list follows the model field: the roles whose adapters fit the model
(architecture and shapes, app.library.compat) are offered checked; the others are shown
disabled with the reason, so an adapter that would make the engine refuse to start is
never passed. Judging reads file headers, so it runs on the task runner (the page hands
in `RoleFeed.roles_for_model`); Start waits for the answer for the model shown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.engines.plan import ENGINES, LaunchPlan, PlanError
from app.roles.launch import DEFAULT_CONTEXT, ModelRoles
from app.settings import setting_place

EDITABLE = frozenset({"model", "name", "engine", "image", "context", "gpus", "port"})
ROLE_READ_DELAY_MS = 300
"""Wait this long after the last keystroke in the model field before reading the roles."""

ReadRoles = Callable[[str, Callable[[ModelRoles], None], Callable[[BaseException], None]],
                     None]
"""`RoleFeed.roles_for_model`: judge the roles for a model path, off the GUI thread."""
ListImages = Callable[[str, Callable[[list[str]], None]], None]
"""`BackendFeed.images_on`: the images a host's engine has, off the GUI thread."""


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
                 parent: QWidget | None = None, *, read_roles: ReadRoles | None = None,
                 images: dict[str, str] | None = None,
                 process_hosts: frozenset[str] = frozenset(),
                 list_images: ListImages | None = None) -> None:
        super().__init__(parent)
        self._read_roles = read_roles
        self._images = dict(images or {})
        """The image each engine gets unless the plan or the user says otherwise."""
        self._process_hosts = process_hosts
        self._list_images = list_images
        self.model_roles: ModelRoles | None = None
        """The roles judged for the model shown (None: not read yet)."""
        self._reading: str | None = None
        self._start_when_read = False
        self.setWindowTitle("Start a backend")
        self.setMinimumWidth(560)  # a model's full path fits
        form = QFormLayout(self)
        form.addRow("Model", self._model_row(plan.model if plan else ""))
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
        form.addRow("Image", self._image_box(plan))
        self._numbers_rows(form, plan)
        roles_box = self._roles_box()
        if read_roles is not None:
            form.addRow("Roles", roles_box)
        self.more_label = QLabel(_more_settings(plan))
        self.more_label.setWordWrap(True)
        form.addRow("Also", self.more_label)
        form.setRowVisible(self.more_label, bool(self.more_label.text()))
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        form.addRow(self.error_label)
        form.addRow(self._buttons())
        self._base = plan
        self.model_edit.textChanged.connect(self._on_model_edit_text_changed)
        self.engine_combo.currentTextChanged.connect(self._on_engine_combo_changed)
        self.host_combo.currentTextChanged.connect(self._on_host_combo_changed)
        self._on_host_combo_changed(self.host_combo.currentText())
        self._read_roles_now()

    def _numbers_rows(self, form: QFormLayout, plan: LaunchPlan | None) -> None:
        """Context, GPUs and port."""
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

    # ------------------------------------------------------------------ image
    def _image_box(self, plan: LaunchPlan | None) -> QComboBox:
        """The image the backend will run: the plan's, else the engine's from Settings;
        editable, offering the images the chosen host has."""
        self.image_combo = QComboBox()
        self.image_combo.setEditable(True)
        self.image_combo.setToolTip(
            "The container image the backend runs; by default the engine's: "
            f"{setting_place('llamacpp_image')}, {setting_place('vllm_image')}")
        self._image_edited = bool(plan and plan.image)
        self.image_combo.setCurrentText(plan.image if plan and plan.image
                                        else self._engine_image())
        self.image_combo.textActivated.connect(self._on_image_combo_activated)
        line = self.image_combo.lineEdit()
        assert line is not None  # an editable combo box has one
        line.textEdited.connect(self._on_image_combo_activated)
        return self.image_combo

    def _engine_image(self) -> str:
        return self._images.get(self.engine_combo.currentText(), "")

    def _on_image_combo_activated(self, _text: str) -> None:
        self._image_edited = True

    def _on_engine_combo_changed(self, _engine: str) -> None:
        if not self._image_edited:
            self.image_combo.setCurrentText(self._engine_image())

    def _on_host_combo_changed(self, host: str) -> None:
        is_process = host in self._process_hosts
        self.image_combo.setEnabled(not is_process)
        self.image_combo.setToolTip("A local process runs llama-server itself: no image"
                                    if is_process else self.image_combo.toolTip())
        if not is_process and self._list_images is not None:
            self._list_images(host, self._on_images_listed)

    def _on_images_listed(self, tags: list[str]) -> None:
        if not shiboken6.isValid(self):
            return
        current = self.image_combo.currentText()
        self.image_combo.blockSignals(True)
        self.image_combo.clear()
        self.image_combo.addItems(sorted({current, *tags} - {""}))
        self.image_combo.setCurrentText(current)
        self.image_combo.blockSignals(False)

    def image(self) -> str:
        """The image the backend will run ("" on a process host)."""
        if self.host() in self._process_hosts:
            return ""
        return self.image_combo.currentText().strip()

    def _model_row(self, model: str) -> QHBoxLayout:
        self.model_edit = QLineEdit(model)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._on_browse_clicked)
        row = QHBoxLayout()
        row.addWidget(self.model_edit)
        row.addWidget(browse)
        return row

    # ------------------------------------------------------------------ roles
    def _roles_box(self) -> QWidget:
        """The preload list under its summary (shown when roles are handed in)."""
        self.roles_label = QLabel()
        self.roles_label.setWordWrap(True)
        self.roles_list = QListWidget()
        self.roles_list.setToolTip("Adapters of the checked roles are preloaded, so switching "
                                   "role in a chat needs no restart")
        self.roles_list.setMaximumHeight(120)
        self._read_timer = QTimer(self)
        self._read_timer.setSingleShot(True)
        self._read_timer.setInterval(ROLE_READ_DELAY_MS)
        self._read_timer.timeout.connect(self._on_read_timer_timeout)
        self.slots_box = QCheckBox("A slot of its own for each checked role")
        self.slots_box.setToolTip(
            "The Gateway keeps each role on its own slot, so switching role in a "
            "conversation re-reads only the new tokens (llama.cpp drops a slot's prompt "
            "cache when another role's adapters use it). Each slot is as long as Context.")
        self.slots_label = QLabel()
        self.slots_label.setWordWrap(True)
        self.roles_list.itemChanged.connect(self._on_roles_list_item_changed)
        self.slots_box.toggled.connect(self._on_slots_box_toggled)
        self.context_spin.valueChanged.connect(self._on_context_spin_changed)
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.roles_label)
        layout.addWidget(self.roles_list)
        layout.addWidget(self.slots_box)
        layout.addWidget(self.slots_label)
        self._show_slots_cost()
        return box

    def _on_roles_list_item_changed(self, _item: QListWidgetItem) -> None:
        self._show_slots_cost()

    def _on_slots_box_toggled(self, _checked: bool) -> None:
        self._show_slots_cost()

    def _on_context_spin_changed(self, _value: int) -> None:
        self._show_slots_cost()

    def _show_slots_cost(self) -> None:
        """What a slot per role costs: the slots, their length and the KV cache they add."""
        roles = len(self.checked_roles())
        self.slots_box.setEnabled(roles > 0)
        if not roles or not self.slots_box.isChecked():
            self.slots_label.setText("" if roles else "Check a role to give it a slot.")
            return
        context = self.context_spin.value() or DEFAULT_CONTEXT
        text = (f"{roles + 1} slots (the base model's and {roles} for the roles) of "
                f"{context:,} tokens each: context {context * (roles + 1):,}")
        cost = (self.model_roles.slots_kv_mib(self._plan_as_entered(), roles)
                if self.model_roles is not None else None)
        if cost is not None:
            text += f", about {cost:,.0f} MiB more KV cache than one slot"
        self.slots_label.setText(text + ".")

    def _buttons(self) -> QDialogButtonBox:
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        self.accept_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.accept_button.setText("Start")
        buttons.accepted.connect(self._on_buttons_accepted)
        buttons.rejected.connect(self.reject)
        return buttons

    def _model_path(self) -> str:
        return self.model_edit.text().strip()

    def _on_model_edit_text_changed(self, _text: str) -> None:
        if self._read_roles is None:
            return
        self.model_roles = None
        self.roles_list.clear()
        self.roles_label.setText("Reading which roles fit this model…")
        self._read_timer.start()

    def _on_read_timer_timeout(self) -> None:
        self._read_roles_now()

    def _read_roles_now(self) -> None:
        self._read_timer.stop()
        path = self._model_path()
        if self._read_roles is None or self._reading == path:
            return
        self._reading = path
        self.roles_label.setText("Reading which roles fit this model…")
        self._read_roles(path, self._on_roles_read, self._on_roles_failed)

    def _on_roles_read(self, result: ModelRoles) -> None:
        if not shiboken6.isValid(self):
            return
        if self._reading == result.model_path:
            self._reading = None
        if result.model_path != self._model_path():
            return  # the model changed since: its own read follows
        self.model_roles = result
        self.roles_list.clear()
        for fit in result.roles:
            item = QListWidgetItem(fit.role.label if fit.fits
                                   else f"{fit.role.label} — {fit.reason}")
            item.setData(Qt.ItemDataRole.UserRole, fit.role.name)
            if fit.fits:
                item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Checked)
                item.setToolTip("Its adapters fit the model: preloaded at start")
            else:
                item.setFlags(Qt.ItemFlag.NoItemFlags)
                item.setCheckState(Qt.CheckState.Unchecked)
                item.setToolTip(f"Not preloaded: {fit.reason}")
            self.roles_list.addItem(item)
        self._show_slots_cost()
        fitting = sum(fit.fits for fit in result.roles)
        self.roles_label.setText(
            "No role has LoRA adapters." if not result.roles else
            f"{fitting} of {len(result.roles)} roles with adapters fit this model; the "
            "checked ones are preloaded.")
        if self._start_when_read:
            self._start_when_read = False
            self._on_buttons_accepted()

    def _on_roles_failed(self, error: BaseException) -> None:
        if not shiboken6.isValid(self):
            return
        self._reading = None
        self.roles_label.setText(f"The roles could not be read ({error}); starting without "
                                 "preloading any.")
        self.model_roles = ModelRoles(self._model_path(), None, {}, ())
        if self._start_when_read:  # the user asked to start: as the label says
            self._start_when_read = False
            self._on_buttons_accepted()

    def checked_roles(self) -> list[str]:
        """The names of the roles whose adapters the plan preloads."""
        names = []
        for row in range(self.roles_list.count()):
            item = self.roles_list.item(row)
            if item.checkState() == Qt.CheckState.Checked:
                names.append(str(item.data(Qt.ItemDataRole.UserRole)))
        return names

    # ------------------------------------------------------------------ the plan
    def _on_browse_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model file", "", "GGUF (*.gguf);;All (*)")
        if path:
            self.model_edit.setText(path)

    def host(self) -> str:
        return self.host_combo.currentText()

    def plan(self) -> LaunchPlan:
        """The plan as entered, with the checked roles' adapters (and their slots).

        Raises:
            PlanError: a missing model or values in conflict.
        """
        plan = LaunchPlan.from_dict(self._raw_plan())
        roles = self.model_roles
        if roles is None or roles.model_path != self._model_path():
            return plan
        return roles.plan_with(plan, self.checked_roles(),
                               slot_per_role=self.slots_box.isChecked()).plan

    def _plan_as_entered(self) -> LaunchPlan:
        """The fields as they stand, for the slots' cost (nothing checked: defaults)."""
        raw = self._raw_plan()
        try:
            return LaunchPlan.from_dict(raw)
        except PlanError:
            return LaunchPlan(model=str(raw.get("model", "")), context=raw.get("context"))

    def _raw_plan(self) -> dict[str, Any]:
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
        image = self.image()
        raw.pop("image", None)
        if image and image != self._engine_image():  # the default follows Settings
            raw["image"] = image
        return raw

    def _on_buttons_accepted(self) -> None:
        try:
            self.plan()
        except PlanError as exc:
            self.error_label.setText(str(exc))
            return
        if self._read_roles is not None and self.model_roles is None:
            self._start_when_read = True  # Start as soon as the roles for this model are known
            self.error_label.setText("Reading which roles fit this model…")
            self._read_roles_now()
            return
        self.accept()
