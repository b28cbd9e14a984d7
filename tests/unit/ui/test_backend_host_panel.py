"""A host's panel: its GPUs as lanes (name, free memory) even when idle, a backend on two
GPUs on both lanes (by index or UUID), CPU backends on their own lane, and the doctor's
failures with their fix."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from app.runtime.backend import Backend, BackendState
from app.runtime.doctor import Check, CheckStatus, HostReport
from app.runtime.host_gpus import HostGpu
from app.runtime.hosts import Host
from app.runtime.observed import Foreign
from ui.backend_host_panel import HostPanel, lanes

GPUS = (HostGpu("0", "GPU-aaaa", "NVIDIA H100 80GB HBM3", 81559.0, 61440.0),
        HostGpu("1", "GPU-bbbb", "NVIDIA H100 80GB HBM3", 81559.0, 81000.0),
        HostGpu("2", "GPU-cccc", "NVIDIA RTX A6000", 49140.0, None))


def _backend(name: str, gpus: tuple[str, ...], state: BackendState = BackendState.READY
             ) -> Backend:
    return Backend(name=name, host="server", engine="llamacpp", model=f"/models/{name}.gguf",
                   port=8080, endpoint_host="127.0.0.1", ref=name, gpus=gpus, state=state)


def test_lanes_follow_the_hosts_gpus_and_a_split_backend_is_on_each() -> None:
    big = _backend("qwen3-32b", ("0", "GPU-bbbb"))
    small = _backend("gemma", ("GPU-cccc",))
    cpu = _backend("embed", ())
    unknown = _backend("other", ("7",))
    assert lanes([big, small, cpu, unknown], GPUS) == [
        ("0", [big]), ("1", [big]), ("2", [small]), ("7", [unknown]), ("CPU", [cpu])]
    assert lanes([], GPUS) == [("0", []), ("1", []), ("2", [])]


def test_the_panel_shows_gpus_backends_doctor_and_other_containers(qtbot: QtBot) -> None:
    report = HostReport("server", "ssh://me@server", (
        Check("Docker engine", CheckStatus.OK, "Docker 27.3.1 (API 1.47) on Ubuntu 24.04"),
        Check("NVIDIA GPUs", CheckStatus.OK, "GPU requests work"),
        Check("Engine images", CheckStatus.FAIL, "no engine image is on this host",
              "docker pull ghcr.io/ggml-org/llama.cpp:server-cuda"),
        Check("Free disk", CheckStatus.SKIP, "not measured on a remote host"),
        Check("Ports", CheckStatus.OK, "ports are published on 127.0.0.1")), GPUS)
    big = _backend("qwen3-32b", ("0", "1"))
    panel = HostPanel(Host("server", "ssh://me@server"), [big], error=None, report=report,
                      foreign=[Foreign("server", "jupyter", "jupyter/base:latest", "running")])
    qtbot.add_widget(panel)
    texts = [label.text() for label in panel.findChildren(QLabel)]
    assert "<b>GPU 0</b><br>NVIDIA H100 80GB HBM3<br>60.0 GiB free" in texts
    assert "<b>GPU 2</b><br>NVIDIA RTX A6000" in texts
    assert [c.backend for c in panel.cards] == [big, big]
    assert texts.count("free") == 1  # GPU 2 has nothing on it
    doctor = panel.doctor_label.text()
    assert "<b>Docker engine</b>: Docker 27.3.1" in doctor
    assert ("<b>Engine images</b>: no engine image is on this host <i>Fix: docker pull "
            "ghcr.io/ggml-org/llama.cpp:server-cuda</i>") in doctor
    assert "NVIDIA GPUs, Ports" in doctor
    assert "Free disk: not checked (not measured on a remote host)" in doctor
    assert panel.foreign_label.text() == ("Not started by Rigdeck (read-only): jupyter "
                                          "(jupyter/base:latest, running)")
