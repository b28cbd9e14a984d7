"""Tray and alerts fed by the sampling thread: the gauge, the tooltip, one notification
per excursion with the trace's real values, and sampling that outlives the window."""

from dataclasses import replace

import pytest
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication, QCheckBox, QDoubleSpinBox, QSystemTrayIcon
from pytestqt.qtbot import QtBot

from app.paths import AppPaths
from app.settings import SettingsStore
from app.telemetry.alerts import AlertConfig, Severity
from app.telemetry.replay import ReplaySampler, load_trace
from app.telemetry.service import MonitorService
from tests.unit.app.telemetry.shared_data import h100_trace
from ui.monitor_feed import MonitorFeed, alert_config
from ui.monitor_tray import TrayMonitor
from ui.notifier import Level, Notifier
from ui.pages.settings_page import SettingsPage
from ui.services import Services
from ui.tray import TrayIcon
from ui.tray_gauge import COLOURS, gauge_icon

# slowdown 89 °C - 48 = 41 °C (the trace's peak); VRAM 8.4 % of 81559 MiB = 6851 MiB
LOWERED = AlertConfig(gpu_temp_margin_c=48, vram_pct=8.4, cooldown_s=3600)


class RecordingTray(TrayIcon):
    """The real tray icon, with its notifications recorded instead of shown."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[tuple[str, str]] = []

    def showMessage(self, title: str, message: str, *args: object) -> None:
        self.messages.append((title, message))


def _running_feed(config: AlertConfig, interval_s: float = 0.005) -> MonitorFeed:
    replay = ReplaySampler(load_trace(h100_trace()), step=True)
    return MonitorFeed(MonitorService([replay], interval_s=interval_s, alerts=config))


def test_alerts_fire_once_per_excursion_from_the_sampling_thread(qtbot: QtBot) -> None:
    feed = _running_feed(LOWERED)
    tray = RecordingTray()
    _monitor = TrayMonitor(feed, tray, Notifier("log"))  # kept: Qt holds its slots weakly
    feed.start()
    try:
        # two whole passes of the trace: the second excursion falls in the cool-down
        qtbot.waitUntil(lambda: feed.service.cost.samples >= 2 * 397 + 10, timeout=30000)
    finally:
        feed.stop()
    qtbot.waitUntil(lambda: len(tray.messages) >= 2, timeout=5000)
    QApplication.processEvents()
    assert sorted(tray.messages) == [
        ("GPU 0 at 41 °C", "NVIDIA H100 80GB HBM3 is 48 °C from its slowdown threshold (89 °C)."),
        ("VRAM nearly full on GPU 0", "6.7 of 79.6 GiB used (8 %) on NVIDIA H100 80GB HBM3."),
    ]


def test_the_tray_shows_the_hottest_gpu_and_vram_each_sample(qtbot: QtBot) -> None:
    feed = _running_feed(AlertConfig(), interval_s=0.01)
    tray = RecordingTray()
    monitor = TrayMonitor(feed, tray, Notifier("log"))
    feed.start()
    try:
        qtbot.waitUntil(lambda: "Hottest" in monitor.tooltip, timeout=10000)
    finally:
        feed.stop()
    tooltip = tray.toolTip()
    assert tooltip.startswith("Rigdeck\nHottest: GPU 0 at 3")  # 37-41 °C in the trace
    assert "VRAM: GPU 0 6.6 / 79.6 GiB (8 %)" in tooltip or "6.7 / 79.6 GiB" in tooltip
    assert feed.service.severity is Severity.OK


def test_without_a_tray_alerts_reach_the_banner(qtbot: QtBot) -> None:
    feed = _running_feed(replace(LOWERED, vram_pct=200))
    notifier = Notifier("log")
    monitor = TrayMonitor(feed, None, notifier)
    feed.start()
    try:
        qtbot.waitUntil(lambda: len(monitor.shown_alerts) >= 1, timeout=30000)
    finally:
        feed.stop()
    notice = notifier.history[-1]
    assert notice.level is Level.WARNING
    assert notice.text.startswith("GPU 0 at 41 °C: ")


def test_a_backend_event_is_a_notification_with_a_cooldown(qtbot: QtBot) -> None:
    feed = _running_feed(AlertConfig())
    tray = RecordingTray()
    _monitor = TrayMonitor(feed, tray, Notifier("log"))
    with qtbot.wait_signal(feed.alert_raised, timeout=5000):
        feed.service.backend_event("qwen3", "oom", "cudaMalloc failed: out of memory")
    feed.service.backend_event("qwen3", "oom", "again")  # cooling down: not shown
    QApplication.processEvents()
    assert tray.messages == [
        ("Backend qwen3 ran out of memory", "cudaMalloc failed: out of memory")
    ]


@pytest.mark.parametrize("severity", list(Severity))
def test_the_gauge_colour_says_the_worst_state(qtbot: QtBot, severity: Severity) -> None:
    image = gauge_icon(severity, 10).pixmap(64, 64).toImage()
    centre = image.pixelColor(32, 32)
    assert centre.name() == QColor(COLOURS[severity]).name()
    top = image.pixelColor(32, 8)  # the ring starts at 12 o'clock: filled at 50 %
    assert top.alpha() == 255


def test_settings_page_changes_reach_the_alert_engine(qtbot: QtBot, services: Services) -> None:
    page = SettingsPage(services)
    qtbot.add_widget(page)
    vram = page.monitor_boxes["alert_vram_pct"]
    throttling = page.monitor_boxes["alert_throttling"]
    assert isinstance(vram, QDoubleSpinBox)
    assert isinstance(throttling, QCheckBox)
    vram.setValue(80)
    throttling.setChecked(False)
    config = services.monitor.service.alerts.config
    assert config.vram_pct == 80
    assert not config.throttling
    assert config == alert_config(services.settings)
    page.interval_box.setValue(0.5)
    assert services.monitor.service.interval_s == 0.5


def test_sampling_goes_on_with_the_window_closed_and_stops_at_quit(
    qtbot: QtBot, app_paths: AppPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ui.application import RigdeckApp

    store = SettingsStore(app_paths.settings_file)
    store.set("sampling_interval_s", 0.1)
    qapp = QApplication.instance()
    assert isinstance(qapp, QApplication)
    monkeypatch.setattr(qapp, "quit", lambda: None)
    rigdeck = RigdeckApp(qapp, app_paths)
    qtbot.add_widget(rigdeck.window)
    service = rigdeck.services.monitor.service
    qtbot.waitUntil(lambda: service.running, timeout=5000)  # once the event loop runs
    rigdeck.window.hide()  # what closing to the tray does
    seen = service.cost.samples
    qtbot.waitUntil(lambda: service.cost.samples >= seen + 3, timeout=10000)
    assert not QSystemTrayIcon.isSystemTrayAvailable() or rigdeck.tray is not None
    rigdeck.quit()
    assert not service.running
