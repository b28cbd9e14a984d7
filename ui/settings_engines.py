"""The Settings page's Engines group: the container image per engine (offering the images
the local engine has), the llama-server for local processes (run once to check it), and
how long a backend gets to stop. Values go through `checked_setting`, the CLI's check, so
both refuse the same values with the same words."""

from __future__ import annotations

from functools import partial

from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QWidget,
)

from app.engines.recipes import DEFAULT_IMAGES, image_setting
from app.runtime.hosts import LOCAL
from app.runtime.setup import checked_setting
from app.settings import Settings, setting_limits
from ui.services import Services
from ui.settings_rows import ERROR_STYLE, path_row, setting_label, stacked


class EnginesGroup(QGroupBox):
    """Images, llama-server path, stop timeout; `refresh_images()` asks the local engine."""

    def __init__(self, services: Services) -> None:
        super().__init__("Engines")
        self._services = services
        self._settings = services.settings
        form = QFormLayout(self)
        self.image_boxes: dict[str, QComboBox] = {}
        self.image_notes: dict[str, QLabel] = {}
        for engine in DEFAULT_IMAGES:
            form.addRow(setting_label(image_setting(engine)), self._image_row(engine))
        form.addRow(setting_label("llama_server_path"), self._server_row())
        self.stop_timeout_spin = QDoubleSpinBox()
        self.stop_timeout_spin.setRange(*setting_limits("backend_stop_timeout_s"))
        self.stop_timeout_spin.setDecimals(0)
        self.stop_timeout_spin.setSuffix(" s")
        self.stop_timeout_spin.setValue(float(self._settings.get("backend_stop_timeout_s")))
        self.stop_timeout_spin.setToolTip(Settings.description("backend_stop_timeout_s"))
        self.stop_timeout_spin.valueChanged.connect(self._on_stop_timeout_spin_changed)
        form.addRow(setting_label("backend_stop_timeout_s"), self.stop_timeout_spin)
        self._settings.changed.connect(self._on_settings_changed)

    # ------------------------------------------------------------------ rows
    def _image_row(self, engine: str) -> QWidget:
        name = image_setting(engine)
        box = QComboBox()
        box.setEditable(True)
        box.setMinimumWidth(360)
        box.addItem(self._settings.get(name) or DEFAULT_IMAGES[engine])
        box.setToolTip(f"{Settings.description(name)}\nThe list offers the images the local "
                       "engine already has; type another to pull it yourself.")
        line = box.lineEdit()
        assert line is not None  # an editable combo box has one
        line.setPlaceholderText(DEFAULT_IMAGES[engine])
        line.editingFinished.connect(partial(self._on_image_chosen, engine))
        box.activated.connect(lambda _index, e=engine: self._on_image_chosen(e))
        note = QLabel()
        note.setWordWrap(True)
        note.setVisible(False)
        self.image_boxes[engine] = box
        self.image_notes[engine] = note
        return stacked(box, note)

    def _server_row(self) -> QWidget:
        self.server_edit = QLineEdit(self._settings.get("llama_server_path"))
        self.server_edit.setPlaceholderText("llama-server on PATH")
        self.server_edit.setToolTip(Settings.description("llama_server_path"))
        self.server_edit.editingFinished.connect(self._on_server_edit_finished)
        field, self.server_note = path_row(self.server_edit, self._on_server_browse_clicked)
        return field

    # ------------------------------------------------------------------ images
    def refresh_images(self) -> None:
        """Offer the images the local engine has (off the GUI thread)."""
        self._services.backends.images_on(LOCAL, self._on_images_listed)

    def _on_images_listed(self, tags: list[str]) -> None:
        for engine, box in self.image_boxes.items():
            current = box.currentText()
            box.blockSignals(True)
            box.clear()
            box.addItems(sorted({current, *tags}))
            box.setCurrentText(current)
            box.blockSignals(False)
            self.image_notes[engine].setToolTip(f"On the local engine: {', '.join(tags)}"
                                                if tags else "")

    def _on_image_chosen(self, engine: str) -> None:
        box = self.image_boxes[engine]
        text = box.currentText().strip()
        self._check(image_setting(engine), text, self.image_notes[engine])

    # ------------------------------------------------------------------ llama-server
    def _on_server_browse_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "llama-server", "", "llama-server (*)")
        if path:
            self.server_edit.setText(path)
            self._on_server_edit_finished()

    def _on_server_edit_finished(self) -> None:
        text = self.server_edit.text().strip()
        if text == self._settings.get("llama_server_path") and not self.server_note.isVisible():
            return
        self.server_note.setStyleSheet("")
        self.server_note.setText(f"Checking {text}…" if text else "")
        self.server_note.setVisible(bool(text))
        self._check("llama_server_path", text, self.server_note)

    # ------------------------------------------------------------------ saving
    def _check(self, name: str, text: str, note: QLabel) -> None:
        """Check `text` as the CLI does (running llama-server may take a moment: a worker's
        job), then save it, or say why not beside the field."""
        self._services.tasks.run(
            partial(checked_setting, name, [text]), description=f"Checking {name}",
            on_done=partial(self._on_checked, name, note),
            on_error=partial(self._on_check_failed, note))

    def _on_checked(self, name: str, note: QLabel, result: tuple[object, str]) -> None:
        value, found = result
        self._settings.set(name, value)
        note.setStyleSheet("")
        note.setText(found)
        note.setVisible(bool(found))

    @staticmethod
    def _on_check_failed(note: QLabel, error: BaseException) -> None:
        note.setStyleSheet(ERROR_STYLE)
        note.setText(f"Not saved: {error}")
        note.setVisible(True)

    def _on_stop_timeout_spin_changed(self, value: float) -> None:
        self._settings.set("backend_stop_timeout_s", float(value))

    def _on_settings_changed(self, name: str, value: object) -> None:
        """Reflect a change made elsewhere (the Start dialog, the CLI in another run)."""
        for engine, box in self.image_boxes.items():
            if name == image_setting(engine) and box.currentText() != value:
                box.setCurrentText(str(value))
        if name == "llama_server_path" and self.server_edit.text() != value:
            self.server_edit.setText(str(value))
