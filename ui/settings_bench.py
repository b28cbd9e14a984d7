"""The Settings page's Bench group: the perplexity text and the repetitions a bench run
starts with (the Bench page's and `rigdeck bench`'s defaults). The text goes through
`checked_setting`, the CLI's check, so both refuse the same files with the same words."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QLineEdit,
    QSpinBox,
)

from app.runtime.setup import checked_setting
from app.settings import Settings, setting_limits
from ui.services import Services
from ui.settings_rows import ERROR_STYLE, path_row, setting_label


class BenchGroup(QGroupBox):
    """The perplexity text (checked, then saved) and the repetitions per variant."""

    def __init__(self, services: Services) -> None:
        super().__init__("Bench")
        self._services = services
        self._settings = services.settings
        form = QFormLayout(self)
        self.text_edit = QLineEdit(self._settings.get("bench_text"))
        self.text_edit.setPlaceholderText("the shipped public-domain text")
        self.text_edit.setToolTip(Settings.description("bench_text"))
        self.text_edit.editingFinished.connect(self._on_text_edit_finished)
        field, self.text_note = path_row(self.text_edit, self._on_browse_clicked)
        form.addRow(setting_label("bench_text"), field)
        self.reps_spin = QSpinBox()
        low, high = setting_limits("bench_repetitions")
        self.reps_spin.setRange(int(low), int(high))
        self.reps_spin.setValue(int(self._settings.get("bench_repetitions")))
        self.reps_spin.setToolTip(Settings.description("bench_repetitions"))
        self.reps_spin.valueChanged.connect(self._on_reps_spin_changed)
        form.addRow(setting_label("bench_repetitions"), self.reps_spin)
        self._settings.changed.connect(self._on_settings_changed)

    def _on_browse_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Perplexity text", "", "Text (*.txt);;All (*)")
        if path:
            self.text_edit.setText(path)
            self._on_text_edit_finished()

    def _on_text_edit_finished(self) -> None:
        text = self.text_edit.text().strip()
        if text == self._settings.get("bench_text") and not self.text_note.isVisible():
            return
        self._services.tasks.run(lambda: checked_setting("bench_text", [text]),
                                 description="Checking the perplexity text",
                                 on_done=self._on_text_checked, on_error=self._on_text_refused)

    def _on_text_checked(self, result: tuple[object, str]) -> None:
        self._settings.set("bench_text", result[0])
        self.text_note.setVisible(False)

    def _on_text_refused(self, error: BaseException) -> None:
        self.text_note.setStyleSheet(ERROR_STYLE)
        self.text_note.setText(f"Not saved: {error}")
        self.text_note.setVisible(True)

    def _on_reps_spin_changed(self, value: int) -> None:
        self._settings.set("bench_repetitions", int(value))

    def _on_settings_changed(self, name: str, value: object) -> None:
        """Reflect a change made elsewhere (the CLI in another run)."""
        if name == "bench_text" and self.text_edit.text() != value:
            self.text_edit.setText(str(value))
        if name == "bench_repetitions" and self.reps_spin.value() != value:
            self.reps_spin.setValue(int(str(value)))
