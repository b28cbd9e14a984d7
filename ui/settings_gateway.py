"""The Settings page's Gateway group: address and port (applied at the next start), start
with Rigdeck, queue length, start timeout and the RAM CPU backends may fill. The address
goes through `checked_setting`, the CLI's check, so both refuse the same words."""

from __future__ import annotations

from functools import partial

from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.runtime.setup import checked_setting
from app.settings import Settings, setting_limits
from ui.services import Services
from ui.settings_rows import ERROR_STYLE, setting_label

FIELD_WIDTH = 220
NUMBERS: tuple[tuple[str, str, str], ...] = (
    # setting, suffix, what 0 means ("" where 0 is not special)
    ("gateway_port", "", ""),
    ("gateway_queue_limit", " requests", "none (busy: 429)"),
    ("gateway_ram_budget_mib", " MiB", "not checked"),
)


class GatewayGroup(QGroupBox):
    """The six gateway_* settings; each control writes its setting at once."""

    def __init__(self, services: Services) -> None:
        super().__init__("Gateway")
        self._services = services
        self._settings = services.settings
        form = QFormLayout(self)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        form.addRow(setting_label("gateway_address"), self._address_row())
        self.spins: dict[str, QSpinBox] = {}
        for name, suffix, zero in NUMBERS[:1]:
            form.addRow(setting_label(name), self._spin(name, suffix, zero))
        self.autostart_box = QCheckBox(setting_label("gateway_autostart"))
        self.autostart_box.setChecked(bool(self._settings.get("gateway_autostart")))
        self.autostart_box.setToolTip(Settings.description("gateway_autostart"))
        self.autostart_box.toggled.connect(self._on_autostart_box_toggled)
        form.addRow(self.autostart_box)
        for name, suffix, zero in NUMBERS[1:]:
            form.addRow(setting_label(name), self._spin(name, suffix, zero))
        self.timeout_spin = QDoubleSpinBox()
        self.timeout_spin.setRange(*setting_limits("gateway_start_timeout_s"))
        self.timeout_spin.setDecimals(0)
        self.timeout_spin.setSingleStep(30)
        self.timeout_spin.setSuffix(" s")
        self.timeout_spin.setKeyboardTracking(False)
        self.timeout_spin.setFixedWidth(FIELD_WIDTH)
        self.timeout_spin.setValue(float(self._settings.get("gateway_start_timeout_s")))
        self.timeout_spin.setToolTip(Settings.description("gateway_start_timeout_s"))
        self.timeout_spin.valueChanged.connect(self._on_timeout_spin_changed)
        form.addRow(setting_label("gateway_start_timeout_s"), self.timeout_spin)
        note = QLabel("The address and port apply when the Gateway is next turned on (its "
                      "page's On switch).")
        note.setWordWrap(True)
        form.addRow(note)
        self._settings.changed.connect(self._on_settings_changed)

    # ------------------------------------------------------------------ rows
    def _address_row(self) -> QWidget:
        self.address_edit = QLineEdit(self._settings.get("gateway_address"))
        self.address_edit.setPlaceholderText("127.0.0.1")
        self.address_edit.setFixedWidth(FIELD_WIDTH)
        self.address_edit.setToolTip(Settings.description("gateway_address"))
        self.address_edit.editingFinished.connect(self._on_address_edit_finished)
        self.address_note = QLabel()
        self.address_note.setWordWrap(True)
        self.address_note.setVisible(False)
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.address_edit)
        layout.addWidget(self.address_note)
        return box

    def _spin(self, name: str, suffix: str, zero: str) -> QSpinBox:
        spin = QSpinBox()
        low, high = setting_limits(name)
        spin.setRange(int(low), int(high))
        spin.setSuffix(suffix)
        if zero:
            spin.setSpecialValueText(zero)
        spin.setGroupSeparatorShown(name != "gateway_port")
        spin.setKeyboardTracking(False)  # 8080 typed is one change, not 8, 80, 808, 8080
        spin.setFixedWidth(FIELD_WIDTH)
        spin.setValue(int(self._settings.get(name)))
        spin.setToolTip(Settings.description(name))
        spin.valueChanged.connect(partial(self._on_spin_changed, name))
        self.spins[name] = spin
        return spin

    # ------------------------------------------------------------------ handlers
    def _on_address_edit_finished(self) -> None:
        text = self.address_edit.text().strip()
        if text == self._settings.get("gateway_address") and not self.address_note.isVisible():
            return
        self._services.tasks.run(
            partial(checked_setting, "gateway_address", [text]),
            description="Checking gateway_address", on_done=self._on_address_checked,
            on_error=self._on_address_refused)

    def _on_address_checked(self, result: tuple[object, str]) -> None:
        self._settings.set("gateway_address", result[0])
        self.address_note.setVisible(False)

    def _on_address_refused(self, error: BaseException) -> None:
        self.address_note.setStyleSheet(ERROR_STYLE)
        self.address_note.setText(f"Not saved: {error}")
        self.address_note.setVisible(True)

    def _on_spin_changed(self, name: str, value: int) -> None:
        self._settings.set(name, int(value))

    def _on_autostart_box_toggled(self, checked: bool) -> None:
        self._settings.set("gateway_autostart", checked)

    def _on_timeout_spin_changed(self, value: float) -> None:
        self._settings.set("gateway_start_timeout_s", float(value))

    def _on_settings_changed(self, name: str, value: object) -> None:
        """Reflect a change made elsewhere (`rigdeck settings set` in another run)."""
        if name == "gateway_address" and self.address_edit.text() != value:
            self.address_edit.setText(str(value))
        elif name in self.spins and isinstance(value, int) \
                and self.spins[name].value() != value:
            self.spins[name].setValue(value)
        elif name == "gateway_autostart" and isinstance(value, bool):
            self.autostart_box.setChecked(value)
        elif name == "gateway_start_timeout_s" and isinstance(value, int | float) \
                and self.timeout_spin.value() != value:
            self.timeout_spin.setValue(float(value))
