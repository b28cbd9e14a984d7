"""Calibration that runs: a backend started from a Fit plan records, once it is ready, what
the engine really took beside what the planner estimated, and both the Fit workflow and the
backend's card show it (a real llama-server, as a local process, on the CPU)."""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path

from pytestqt.qtbot import QtBot

from app.fit.calibration import CPU_MODEL, CalibrationStore
from app.fit.launch import launch_plan
from app.fit.session import FitSession
from app.runtime.backend import BackendState
from app.runtime.backends_service import BackendsService
from app.runtime.hosts import PROCESSES, processes_host
from app.runtime.keys import KeyKeeper
from app.secrets import SecretStore
from tests.realparts.fixtures import TinyGgufFactory
from tests.realparts.leak_guard import LeakGuard
from ui.backend_card import BackendCard


def _service(binary: Path, run_dir: Path, store: CalibrationStore) -> BackendsService:
    return BackendsService([processes_host()], KeyKeeper(SecretStore()), run_dir=run_dir,
                           llama_server_path=str(binary), calibration=store)


def test_a_ready_backend_records_its_memory_and_the_fit_plan_shows_it(
        qtbot: QtBot, llama_server_binary: Path, tiny_gguf: TinyGgufFactory,
        tmp_path: Path, leak_guard: LeakGuard) -> None:
    model = tiny_gguf()
    data = tmp_path / "data"  # the data folder: where the calibration store lives
    here = socket.gethostname()
    fit = FitSession(data_dir=data, host=here)
    fit.set_gpu_memory("")  # the CPU: no GPU here
    fit.choose_path(model)
    fit.update_plan(ctx=1024)
    chosen = fit.chosen()
    assert chosen is not None
    assert [fit.last_run] == [None]  # nothing measured yet
    plan = replace(launch_plan(chosen.model_path, chosen.plan), name="calib", threads=1,
                   port=leak_guard.free_port())
    store = CalibrationStore(data)
    service = _service(llama_server_binary, tmp_path / "run", store)
    again: BackendsService | None = None
    try:
        backend = service.start(plan, PROCESSES, wait=True).backend
        assert backend.state is BackendState.READY

        [rec] = store.runs(here, (CPU_MODEL,))
        assert (rec.key.engine, rec.key.gpu_model) == ("llamacpp", CPU_MODEL)
        assert rec.key.engine_version  # the log's build line
        assert rec.source == "engine"
        assert rec.buffers["model:CPU_Mapped"] > 0  # read from the server's own log
        assert rec.buffers["kv:CPU"] > 0
        assert rec.measured_mib == sum(rec.buffers.values())
        assert abs(rec.residual_mib) <= 0.03 * rec.measured_mib  # the estimate beside
        print(f"calibration: measured {rec.measured_mib:.3f} MiB, "
              f"estimated {rec.estimated_mib:.3f} MiB, buffers {rec.buffers}")

        assert backend.measured_ram_mib == rec.measured_mib
        assert backend.measured_vram_mib is None
        card = BackendCard(backend, "process")
        qtbot.add_widget(card)
        assert f"RAM {rec.measured_mib:.0f} MiB" in card.details_label.text()
        assert "VRAM" not in card.details_label.text()

        service.refresh()  # ready again: the same start is not a second observation
        again = _service(llama_server_binary, tmp_path / "run", store)
        [found] = again.refresh()  # a restarted Rigdeck finds it, measures, records nothing
        assert found.measured_ram_mib == rec.measured_mib
        assert len(store.runs(here, (CPU_MODEL,))) == 1

        fit.choose_path(model)  # the Fit page reads the model (and the store) again
        assert [fit.last_run] == [rec]
        fit.update_plan(ctx=2048)
        assert [fit.last_run] == [None]  # another plan was not measured
    finally:
        if backend.state.is_live:
            service.stop(backend)
        service.close()
        if again is not None:
            again.close()
