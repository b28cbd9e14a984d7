"""The Settings page: edits the settings model; every change is saved at once."""

from functools import partial
from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSystemTrayIcon,
    QVBoxLayout,
    QWidget,
)

from app.autostart import tray_command
from app.settings import THEMES, Settings, setting_limits, shown_settings
from ui.about_group import about_group
from ui.services import Services
from ui.settings_bench import BenchGroup
from ui.settings_engines import EnginesGroup
from ui.settings_gateway import GatewayGroup
from ui.settings_hosts import HostsGroup


class SettingsPage(QWidget):
    """General, model folders, secrets and logs; reflects changes made elsewhere too."""

    def __init__(self, services: Services) -> None:
        super().__init__()
        self._services = services
        self._settings = services.settings
        outer = QVBoxLayout(self)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        outer.addWidget(scroll)
        body = QWidget()
        scroll.setWidget(body)
        layout = QVBoxLayout(body)
        layout.addWidget(self._general_group())
        layout.addWidget(self._monitor_group())
        layout.addWidget(self._chat_group())
        self.engines_group = EnginesGroup(services)
        layout.addWidget(self.engines_group)
        self.hosts_group = HostsGroup(services)
        layout.addWidget(self.hosts_group)
        self.gateway_group = GatewayGroup(services)
        layout.addWidget(self.gateway_group)
        self.bench_group = BenchGroup(services)
        layout.addWidget(self.bench_group)
        layout.addWidget(self._folders_group())
        layout.addWidget(self._secrets_group())
        layout.addWidget(self._logs_group())
        layout.addWidget(about_group())
        layout.addStretch(1)
        self._settings.changed.connect(self._on_settings_changed)
        self._shown_once = False

    def showEvent(self, event: QShowEvent) -> None:
        """The images the local engine has are asked for when the page is first seen."""
        super().showEvent(event)
        if not self._shown_once:
            self._shown_once = True
            self.engines_group.refresh_images()

    # ------------------------------------------------------------------ groups
    def _general_group(self) -> QGroupBox:
        group = QGroupBox("General")
        form = QFormLayout(group)
        self.close_to_tray_box = QCheckBox("Keep running in the tray when the window is closed")
        self.close_to_tray_box.setToolTip(Settings.description("close_to_tray"))
        self.close_to_tray_box.setChecked(self._settings.get("close_to_tray"))
        if not QSystemTrayIcon.isSystemTrayAvailable():
            self.close_to_tray_box.setEnabled(False)
            self.close_to_tray_box.setText(
                "Keep running in the tray (no system tray here: closing the window quits)"
            )
        self.close_to_tray_box.toggled.connect(self._on_close_to_tray_toggled)
        form.addRow(self.close_to_tray_box)
        form.addRow(self._login_box())
        self.theme_box = QComboBox()
        self.theme_box.addItems([theme.capitalize() for theme in THEMES])
        self.theme_box.setCurrentIndex(THEMES.index(self._settings.get("theme")))
        self.theme_box.setToolTip(Settings.description("theme"))
        self.theme_box.currentIndexChanged.connect(self._on_theme_box_changed)
        form.addRow("Colours", self.theme_box)
        self.interval_box = QDoubleSpinBox()
        self.interval_box.setRange(*setting_limits("sampling_interval_s"))
        self.interval_box.setSingleStep(0.5)
        self.interval_box.setSuffix(" s")
        self.interval_box.setValue(self._settings.get("sampling_interval_s"))
        self.interval_box.setToolTip(Settings.description("sampling_interval_s"))
        self.interval_box.valueChanged.connect(self._on_interval_box_changed)
        form.addRow("Monitor interval", self.interval_box)
        return group

    def _login_box(self) -> QCheckBox:
        """"Start Rigdeck in the tray at login": writes or removes the system's login item."""
        self.login_box = QCheckBox("Start Rigdeck in the tray at login")
        self.login_box.setChecked(bool(self._settings.get("start_in_tray_at_login")))
        item = self._services.login_item
        if item is None:
            self.login_box.setEnabled(False)
            self.login_box.setText("Start Rigdeck at login (not available on this system)")
        else:
            self.login_box.setToolTip(
                f"{Settings.description('start_in_tray_at_login')}\nWritten to: {item.where}"
            )
        self.login_box.toggled.connect(self._on_login_box_toggled)
        return self.login_box

    def _monitor_group(self) -> QGroupBox:
        """Sampling and alert thresholds; each control writes its setting at once."""
        group = QGroupBox("Monitor and alerts")
        form = QFormLayout(group)
        self.monitor_boxes: dict[str, QCheckBox | QDoubleSpinBox] = {}
        checks = (
            ("monitor_enabled", "Sample GPUs and host while Rigdeck runs"),
            ("monitor_keep_history", "Keep the last day of history across restarts"),
            ("alerts_enabled", "Show alerts as desktop notifications"),
            ("alert_throttling", "Alert when a GPU throttles for heat or power"),
            ("alert_backend", "Alert when a backend dies or runs out of memory"),
        )
        for name, text in checks:
            box = QCheckBox(text)
            box.setChecked(bool(self._settings.get(name)))
            box.setToolTip(Settings.description(name))
            box.toggled.connect(lambda checked, n=name: self._settings.set(n, checked))
            self.monitor_boxes[name] = box
            form.addRow(box)
        spins = (
            ("alert_gpu_temp_margin_c", " °C of slowdown", 1.0),
            ("alert_vram_pct", " %", 1.0),
            ("alert_host_ram_pct", " %", 1.0),
            ("alert_swap_growth_mib", " MiB in 5 min", 64.0),
            ("alert_cooldown_s", " s", 60.0),
        )
        for name, suffix, step in spins:
            label = shown_settings()[name][1]
            spin = QDoubleSpinBox()
            spin.setRange(*setting_limits(name))
            spin.setSingleStep(step)
            spin.setDecimals(0 if step >= 1 else 1)
            spin.setSuffix(suffix)
            spin.setValue(float(self._settings.get(name)))
            spin.setToolTip(Settings.description(name))
            spin.valueChanged.connect(lambda value, n=name: self._settings.set(n, float(value)))
            self.monitor_boxes[name] = spin
            form.addRow(label, spin)
        return group

    def _chat_group(self) -> QGroupBox:
        """What a chat accepts from a server."""
        group = QGroupBox("Chat")
        form = QFormLayout(group)
        self.max_reply_spin = QSpinBox()
        low, high = setting_limits("chat_max_reply_mib")
        self.max_reply_spin.setRange(int(low), int(high))
        self.max_reply_spin.setSuffix(" MiB")
        self.max_reply_spin.setValue(int(self._settings.get("chat_max_reply_mib")))
        self.max_reply_spin.setToolTip(Settings.description("chat_max_reply_mib"))
        self.max_reply_spin.valueChanged.connect(
            lambda value: self._settings.set("chat_max_reply_mib", int(value)))
        form.addRow(shown_settings()["chat_max_reply_mib"][1], self.max_reply_spin)
        return group

    def _folders_group(self) -> QGroupBox:
        group = QGroupBox("Model folders")
        layout = QVBoxLayout(group)
        hint = QLabel(
            "Folders searched (with their subfolders) for GGUF models, Hugging Face folders "
            "and LoRA adapters. The Hugging Face cache, Ollama and LM Studio are found "
            "by themselves."
        )
        hint.setWordWrap(True)
        layout.addWidget(hint)
        self.folders_list = QListWidget()
        self.folders_list.addItems(self._settings.get("model_folders"))
        self.folders_list.setToolTip(Settings.description("model_folders"))
        self.folders_list.setMinimumHeight(90)
        self.folders_list.setMaximumHeight(160)
        layout.addWidget(self.folders_list)
        row = QHBoxLayout()
        self.add_folder_button = QPushButton("Add folder…")
        self.add_folder_button.clicked.connect(self._on_add_folder_clicked)
        self.remove_folder_button = QPushButton("Remove")
        self.remove_folder_button.clicked.connect(self._on_remove_folder_clicked)
        row.addWidget(self.add_folder_button)
        row.addWidget(self.remove_folder_button)
        row.addStretch(1)
        layout.addLayout(row)
        return group

    def _secrets_group(self) -> QGroupBox:
        group = QGroupBox("API keys and tokens")
        layout = QVBoxLayout(group)
        self.secrets_label = QLabel("Looking for the system keyring…")
        secrets = self._services.secrets

        def keyring_state() -> str:  # finding the keyring may ask D-Bus: a worker's job
            reason = secrets.unavailable_reason()
            if reason:
                return f"⚠ {reason}"
            backend = type(secrets.backend()).__module__.rsplit(".", 1)[-1]
            return (f"API keys and tokens are kept in the system keyring ({backend}), "
                    "never in files.")

        self._services.tasks.run(keyring_state, description="Checking the keyring",
                                 on_done=self.secrets_label.setText)
        self.secrets_label.setWordWrap(True)
        self.secrets_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.secrets_label)
        return group

    def _logs_group(self) -> QGroupBox:
        group = QGroupBox("Files")
        form = QFormLayout(group)
        paths = self._services.paths
        for title, path in (("Settings", paths.settings_file), ("Log", paths.log_file)):
            label = QLabel(str(path))
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            form.addRow(title, label)
        open_logs = QPushButton("Open log folder")
        open_logs.clicked.connect(
            lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(paths.logs)))
        )
        form.addRow("", open_logs)
        return group

    # ------------------------------------------------------------------ handlers
    def _on_close_to_tray_toggled(self, checked: bool) -> None:
        self._settings.set("close_to_tray", checked)

    def _on_login_box_toggled(self, checked: bool) -> None:
        item = self._services.login_item
        if item is None:
            return
        self._settings.set("start_in_tray_at_login", checked)
        job = partial(item.enable, tray_command()) if checked else item.disable
        self._services.tasks.run(
            job,
            description="Starting Rigdeck at login" if checked else "Not starting at login",
            on_error=partial(self._on_login_item_failed, checked),
        )

    def _on_login_item_failed(self, wanted: bool, error: BaseException) -> None:
        """The login item could not be changed: say why and show the state it kept."""
        self._settings.set("start_in_tray_at_login", not wanted)
        self._services.notifier.error(
            "Starting Rigdeck at login" if wanted else "Not starting at login", error
        )

    def _on_theme_box_changed(self, index: int) -> None:
        self._settings.set("theme", THEMES[index])

    def _on_interval_box_changed(self, value: float) -> None:
        self._settings.set("sampling_interval_s", round(value, 2))

    def _on_add_folder_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a model folder", str(Path.home()))
        if folder:
            self.add_folder(folder)

    def add_folder(self, folder: str) -> None:
        """Add `folder` to the searched folders (once); the library rescans."""
        self._services.library.add_folder(folder)

    def _on_remove_folder_clicked(self) -> None:
        selected = {item.text() for item in self.folders_list.selectedItems()}
        if not selected:
            return
        folders = [f for f in self._settings.get("model_folders") if f not in selected]
        self._settings.set("model_folders", folders)

    def _on_settings_changed(self, name: str, value: object) -> None:
        if name == "model_folders" and isinstance(value, list):
            self.folders_list.clear()
            self.folders_list.addItems([str(v) for v in value])
        elif name == "theme" and isinstance(value, str):
            self.theme_box.setCurrentIndex(THEMES.index(value))
        elif name == "close_to_tray" and isinstance(value, bool):
            self.close_to_tray_box.setChecked(value)
        elif name == "start_in_tray_at_login" and isinstance(value, bool):
            self.login_box.blockSignals(True)  # reflect only: the item is already as it is
            self.login_box.setChecked(value)
            self.login_box.blockSignals(False)


def settings_page(services: Services, _open_settings: object) -> QWidget:
    return SettingsPage(services)
