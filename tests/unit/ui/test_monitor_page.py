"""The Monitor page fed by the H100 trace: the peaks a user reads are the trace's own."""

from collections.abc import Iterator

import numpy as np
import pytest
from PySide6.QtCore import QPointF
from pytestqt.qtbot import QtBot

from app.telemetry.alerts import AlertConfig
from app.telemetry.nvml import NvmlSampler
from app.telemetry.replay import ReplaySampler, load_trace
from app.telemetry.service import MonitorService
from tests.unit.app.telemetry.fake_nvml import FakeNvml
from tests.unit.app.telemetry.shared_data import h100_trace
from ui.monitor_feed import MonitorFeed
from ui.pages.monitor_page import MonitorPage
from ui.services import Services

T0 = 1_700_000_000.0
PEAK_T = T0 + 124 * 0.1  # the row of the power peak (253.3 W)


def _use(services: Services, service: MonitorService) -> MonitorFeed:
    services.monitor.stop()
    services.monitor = MonitorFeed(service, services.settings)
    return services.monitor


@pytest.fixture
def replayed(services: Services) -> Iterator[MonitorService]:
    """The whole trace, frame by frame, in the history (one sample per 0.1 s)."""
    trace = load_trace(h100_trace())
    service = MonitorService([ReplaySampler(trace, step=True)], interval_s=0.1)
    service.set_backend_pids({7628: "moe30"})
    for index in range(len(trace.frames)):
        service.step(T0 + index * 0.1)
    _use(services, service)
    yield service
    service.stop()


def _page(qtbot: QtBot, services: Services) -> MonitorPage:
    page = MonitorPage(services)
    qtbot.add_widget(page)
    page.resize(1100, 900)
    page.show()
    qtbot.wait_exposed(page)
    return page


@pytest.mark.usefixtures("replayed")
def test_the_trace_peaks_show_at_their_values(qtbot: QtBot, services: Services) -> None:
    page = _page(qtbot, services)
    panel = page.gpu_panels["nvidia0"]
    assert panel.title_label.text() == "GPU 0 · NVIDIA H100 80GB HBM3"
    titles = {name: title.text for name, title in panel.titles.items()}
    assert "peak 253.3 W" in titles["power"]
    assert "limit 700 W" in titles["power"]
    assert "peak 41 °C" in titles["temp"]
    assert "slowdown 89 °C" in titles["temp"]
    assert "peak 6.71 GiB" in titles["vram"]
    assert "of 79.6 GiB" in titles["vram"]
    assert "moe30 6.2" in titles["vram"]  # the llama-server's 6388 MiB, attributed

    _x, power = panel.power.values()
    _x, temp = panel.temp.values()
    assert np.nanmax(power) == pytest.approx(253.3, abs=0.01)
    assert np.nanmax(temp) == 41
    _x, stacked = panel.vram_layers["nvidia0.vram.other"].getData()
    assert np.nanmax(stacked) == pytest.approx(6876 / 1024)  # the stack's top = used
    assert panel.slowdown.value() == 89
    assert panel.power_limit.value() == 700
    assert panel.vram_total.value() == pytest.approx(81559 / 1024)
    assert page.status_label.text() == (
        "Demo: replaying nvml_trace_h100.csv (not this machine's GPUs)."
    )


@pytest.mark.usefixtures("replayed")
def test_hovering_reads_out_the_values_under_the_cursor(qtbot: QtBot, services: Services) -> None:
    page = _page(qtbot, services)
    panel = page.gpu_panels["nvidia0"]
    scene_pos = panel.power_plot.vb.mapViewToScene(QPointF(PEAK_T - panel.end, 100.0))
    panel._on_scene_mouse_moved(scene_pos)
    text = panel.readout_label.text()
    assert "253.3 W" in text
    assert "41 °C" in text
    assert "GPU 43 %" in text
    assert "VRAM 6.71 GiB (moe30 6.24, other 0.48)" in text
    assert all(cursor.isVisible() for cursor in panel.cursors)


def test_peaks_survive_the_decimated_ranges(qtbot: QtBot, services: Services) -> None:
    trace = load_trace(h100_trace())
    service = MonitorService([ReplaySampler(trace, step=True)], interval_s=1.0)
    for index in range(3 * 3600):  # three hours at 1 s, every frame of the trace in turn
        service.step(T0 + index)
    _use(services, service)
    page = _page(qtbot, services)
    for seconds in (3600.0, 86400.0):
        page.set_range(seconds)
        panel = page.gpu_panels["nvidia0"]
        assert "peak 253.3 W" in panel.titles["power"].text
        assert "peak 41 °C" in panel.titles["temp"].text
        assert panel.power.band.isVisible()  # min-max band drawn for decimated data
        _x, mean = panel.power.values()
        assert np.nanmax(mean) < 253.3  # a bucket's mean is below the peak it holds
    service.stop()


@pytest.mark.usefixtures("replayed")
def test_redrawn_only_while_visible(qtbot: QtBot, services: Services) -> None:
    page = _page(qtbot, services)
    assert page.timer.isActive()
    drawn = page.redraws
    page.redraw()
    assert page.redraws == drawn  # nothing new: no redraw
    page.hide()
    assert not page.timer.isActive()
    page.show()
    assert page.timer.isActive()


def test_no_driver_is_said_and_the_host_still_draws(qtbot: QtBot, services: Services) -> None:
    sampler = NvmlSampler()
    if sampler.sample().status.available:
        pytest.skip("this machine has an NVIDIA driver")
    services.monitor.service.step()
    page = _page(qtbot, services)
    assert page.gpu_panels == {}
    assert page.status_label.isVisible()
    assert page.status_label.text() == (
        "No GPU readings: no NVIDIA driver (the NVML library was not found). "
        "Host readings continue below."
    )
    assert page.host_panel.titles["ram"].text.startswith("RAM ")
    assert "cores" in page.host_panel.titles["cpu"].text


def test_a_lost_gpu_is_marked_and_the_other_keeps_drawing(qtbot: QtBot, services: Services) -> None:
    fake = FakeNvml(load_trace(h100_trace()), gpus=2)
    service = MonitorService([NvmlSampler(fake)], alerts=AlertConfig())
    for row in range(5):
        fake.row = row
        service.step(T0 + row)
    fake.lost.add(1)
    fake.row = 124
    service.step(T0 + 5)
    _use(services, service)
    page = _page(qtbot, services)
    assert page.gpu_panels["nvidia1"].title_label.text().endswith("LOST (fell off the bus)")
    assert "GPU 1 lost" in page.status_label.text()
    assert "Power 253 W" in page.gpu_panels["nvidia0"].titles["power"].text
    service.stop()


def test_sampling_switched_off_is_said(qtbot: QtBot, services: Services) -> None:
    services.settings.set("monitor_enabled", False)
    page = _page(qtbot, services)
    assert page.status_label.text() == (
        "Sampling is off (Settings → Monitor and alerts → Sample GPUs and host while "
        "Rigdeck runs).")
    service = services.monitor.service
    services.monitor.start()
    assert [service.running] == [False]  # the setting wins
    services.settings.set("monitor_enabled", True)  # turned on from Settings: it starts
    assert [service.running] == [True]
    qtbot.waitUntil(lambda: services.monitor.latest is not None, timeout=10000)
    services.settings.set("monitor_enabled", False)
    assert [service.running] == [False]
