"""The role editor: name, look, base model, adapters (only those that fit the base),
system prompt, sampling and thinking default. Edits stay in the form until Save.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QColorDialog,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from app.library.compat import check_compatibility
from app.library.entries import Adapter, Entry, Model
from app.roles.role import DEFAULT_COLOUR, Role, RoleAdapter
from ui.role_chip import colour_dot

ANY_MODEL = "Any compatible model"
DEFAULT = "model default"
THINKING = {"Model default": None, "Think": True, "No think": False}


def _default_spin(maximum: float, step: float, decimals: int = 2) -> QDoubleSpinBox:
    """A spin box whose lowest value reads "model default" (the key is left out)."""
    box = QDoubleSpinBox()
    box.setRange(-step, maximum)
    box.setSingleStep(step)
    box.setDecimals(decimals)
    box.setSpecialValueText(DEFAULT)
    box.setValue(-step)
    return box


class RoleEditorWidget(QWidget):
    """Edits one role; `saved` carries (role, name it had) when the user saves."""

    saved = Signal(object, str)

    def __init__(self) -> None:
        super().__init__()
        self._original: Role | None = None
        self._entries: list[Entry] = []
        self.colour = DEFAULT_COLOUR
        form = QFormLayout(self)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.name_edit = QLineEdit()
        self.icon_edit = QLineEdit()
        self.icon_edit.setMaxLength(2)
        self.icon_edit.setFixedWidth(48)
        self.colour_button = QPushButton()
        self.colour_button.setToolTip("The role's colour in lists, chips and the tray")
        self.colour_button.clicked.connect(self._on_colour_button_clicked)
        look = QHBoxLayout()
        look.addWidget(self.name_edit, 1)
        look.addWidget(self.icon_edit)
        look.addWidget(self.colour_button)
        form.addRow("Name, icon", look)
        self.description_edit = QLineEdit()
        form.addRow("Description", self.description_edit)
        self.base_box = QComboBox()
        self.base_box.setToolTip("The model the role is made for: the adapter list shows only "
                                 "adapters whose shapes fit it.")
        self.base_box.currentIndexChanged.connect(self._on_base_box_changed)
        form.addRow("Base model", self.base_box)
        form.addRow("Adapters", self._adapters_row())
        self.prompt_edit = QPlainTextEdit()
        self.prompt_edit.setPlaceholderText("System prompt sent first in every conversation")
        self.prompt_edit.setMinimumHeight(60)
        form.addRow("System prompt", self.prompt_edit)
        form.addRow("Sampling", self._sampling_row())
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.revert_button = QPushButton("Revert")
        self.revert_button.clicked.connect(self._on_revert_button_clicked)
        self.save_button = QPushButton("Save")
        self.save_button.setDefault(True)
        self.save_button.clicked.connect(self._on_save_button_clicked)
        buttons.addWidget(self.revert_button)
        buttons.addWidget(self.save_button)
        form.addRow(buttons)

    def _sampling_row(self) -> QGridLayout:
        self.temperature = _default_spin(2.0, 0.05)
        self.top_p = _default_spin(1.0, 0.05)
        self.top_k = QSpinBox()
        self.top_k.setRange(-1, 200)
        self.top_k.setSpecialValueText(DEFAULT)
        self.thinking_box = QComboBox()
        self.thinking_box.addItems(list(THINKING))
        grid = QGridLayout()
        cells = (("Temperature", self.temperature), ("Top p", self.top_p),
                 ("Top k", self.top_k), ("Thinking", self.thinking_box))
        for index, (label, widget) in enumerate(cells):
            widget.setToolTip(f"{label}; the lowest value leaves the model's default")
            row, column = divmod(index, 2)
            grid.addWidget(QLabel(label), row, column * 2)
            grid.addWidget(widget, row, column * 2 + 1)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)
        return grid

    def _adapters_row(self) -> QWidget:
        box = QWidget()
        column = QFormLayout(box)
        column.setContentsMargins(0, 0, 0, 0)
        self.adapter_table = QTableWidget(0, 2)
        self.adapter_table.setHorizontalHeaderLabels(["Adapter", "Scale"])
        header = self.adapter_table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Fixed)
        self.adapter_table.setColumnWidth(1, 90)
        self.adapter_table.verticalHeader().hide()
        self.adapter_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.adapter_table.setMaximumHeight(92)
        column.addRow(self.adapter_table)
        row = QHBoxLayout()
        self.adapter_picker = QComboBox()
        self.add_adapter_button = QPushButton("Add")
        self.add_adapter_button.clicked.connect(self._on_add_adapter_button_clicked)
        self.remove_adapter_button = QPushButton("Remove")
        self.remove_adapter_button.clicked.connect(self._on_remove_adapter_button_clicked)
        row.addWidget(self.adapter_picker, 1)
        row.addWidget(self.add_adapter_button)
        row.addWidget(self.remove_adapter_button)
        column.addRow(row)
        return box

    # ------------------------------------------------------------------ library
    def set_library(self, entries: list[Entry]) -> None:
        """The models and adapters to choose from (the base box keeps its choice)."""
        self._entries = entries
        current = self.base_box.currentData()
        self.base_box.blockSignals(True)
        self.base_box.clear()
        self.base_box.addItem(ANY_MODEL, "")
        for entry in entries:
            if isinstance(entry, Model) and not entry.error:
                self.base_box.addItem(entry.name or entry.path.name, str(entry.path))
        self.base_box.setCurrentIndex(max(self.base_box.findData(current), 0))
        self.base_box.blockSignals(False)
        self._fill_picker()

    def base_model(self) -> Entry | None:
        path = self.base_box.currentData()
        return next((e for e in self._entries if str(e.path) == path), None)

    def _fill_picker(self) -> None:
        """Adapters that fit the base model (all readable ones when none is chosen)."""
        base = self.base_model()
        self.adapter_picker.clear()
        for entry in self._entries:
            if not isinstance(entry, Adapter) or entry.error:
                continue
            if base is not None and check_compatibility(entry, base).fits is False:
                continue
            self.adapter_picker.addItem(entry.path.name, str(entry.path))
            self.adapter_picker.setItemData(self.adapter_picker.count() - 1,
                                            f"{entry.name}\n{entry.path}",
                                            Qt.ItemDataRole.ToolTipRole)
        empty = self.adapter_picker.count() == 0
        if empty:
            self.adapter_picker.addItem("No compatible adapter in the Library")
        self.adapter_picker.setEnabled(not empty)
        self.add_adapter_button.setEnabled(not empty)

    def _on_base_box_changed(self, _index: int) -> None:
        self._fill_picker()

    # ------------------------------------------------------------------ role
    def set_role(self, role: Role) -> None:
        self._original = role
        self.name_edit.setText(role.name)
        self.icon_edit.setText(role.icon)
        self._set_colour(role.colour)
        self.description_edit.setText(role.description)
        base = role.base_models[0] if role.base_models else ""
        index = self.base_box.findData(base)
        if index < 0 and base:
            self.base_box.addItem(base, base)
            index = self.base_box.count() - 1
        self.base_box.setCurrentIndex(max(index, 0))
        self.adapter_table.setRowCount(0)
        for adapter in role.adapters:
            self._add_adapter_row(adapter)
        self.prompt_edit.setPlainText(role.system_prompt)
        self.temperature.setValue(float(role.sampling.get("temperature",
                                                          self.temperature.minimum())))
        self.top_p.setValue(float(role.sampling.get("top_p", self.top_p.minimum())))
        self.top_k.setValue(int(role.sampling.get("top_k", self.top_k.minimum())))
        self.thinking_box.setCurrentIndex(list(THINKING.values()).index(role.thinking))

    def role(self) -> Role:
        """The role as the form shows it now."""
        sampling: dict[str, float | int] = {}
        if self.temperature.value() > self.temperature.minimum():
            sampling["temperature"] = round(self.temperature.value(), 2)
        if self.top_p.value() > self.top_p.minimum():
            sampling["top_p"] = round(self.top_p.value(), 2)
        if self.top_k.value() > self.top_k.minimum():
            sampling["top_k"] = self.top_k.value()
        adapters = []
        for row in range(self.adapter_table.rowCount()):
            item = self.adapter_table.item(row, 0)
            scale = self.adapter_table.cellWidget(row, 1)
            assert item is not None  # every row gets both cells in _add_adapter_row
            assert isinstance(scale, QDoubleSpinBox)
            adapters.append(RoleAdapter(str(item.data(Qt.ItemDataRole.UserRole)),
                                        scale.value()))
        base = self.base_box.currentData()
        return Role(name=self.name_edit.text().strip(), icon=self.icon_edit.text().strip(),
                    colour=self.colour, description=self.description_edit.text().strip(),
                    adapters=tuple(adapters), system_prompt=self.prompt_edit.toPlainText(),
                    sampling=sampling, thinking=THINKING[self.thinking_box.currentText()],
                    base_models=(base,) if base else ())

    def _add_adapter_row(self, adapter: RoleAdapter) -> None:
        row = self.adapter_table.rowCount()
        self.adapter_table.insertRow(row)
        item = QTableWidgetItem(adapter.name)
        item.setData(Qt.ItemDataRole.UserRole, adapter.path)
        item.setToolTip(adapter.path)
        item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
        self.adapter_table.setItem(row, 0, item)
        scale = QDoubleSpinBox()
        scale.setRange(-4.0, 64.0)
        scale.setSingleStep(0.1)
        scale.setValue(adapter.scale)
        self.adapter_table.setCellWidget(row, 1, scale)

    def _on_add_adapter_button_clicked(self) -> None:
        path = self.adapter_picker.currentData()
        if path:
            self._add_adapter_row(RoleAdapter(str(path)))

    def _on_remove_adapter_button_clicked(self) -> None:
        for row in sorted({i.row() for i in self.adapter_table.selectedIndexes()},
                          reverse=True):
            self.adapter_table.removeRow(row)

    def _set_colour(self, colour: str) -> None:
        self.colour = colour
        self.colour_button.setIcon(colour_dot(colour, 14))
        self.colour_button.setText(colour)

    def _on_colour_button_clicked(self) -> None:
        chosen = QColorDialog.getColor(QColor(self.colour), self, "Role colour")
        if chosen.isValid():
            self._set_colour(chosen.name())

    def _on_revert_button_clicked(self) -> None:
        if self._original is not None:
            self.set_role(self._original)

    def _on_save_button_clicked(self) -> None:
        self.saved.emit(self.role(), self._original.name if self._original else "")
