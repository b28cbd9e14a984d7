"""The calibration store: estimate-vs-measured records kept in the data folder, per machine."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from app.engines.llamacpp_log import BufferReport
from app.engines.plan import LaunchPlan
from app.fit.calibration import (
    FILE_NAME,
    MAX_RECORDS,
    CalibrationKey,
    CalibrationStore,
    plan_key,
)
from app.fit.launch import launch_plan
from app.fit.plan import FitPlan
from app.paths import AppPaths

H100 = CalibrationKey("rig-1", "NVIDIA H100 80GB HBM3", "llamacpp", "b6000")


def test_a_record_comes_back_from_the_data_folder(app_paths: AppPaths) -> None:
    CalibrationStore(app_paths.data).record(H100, 6813.0, 7200.0)
    assert (app_paths.data / FILE_NAME).is_file()
    again = CalibrationStore(app_paths.data)  # a later run of the app
    assert again.residual_mib(H100) == pytest.approx(387.0)
    assert again.apply(H100, 10_000.0) == pytest.approx(10_387.0)


def test_the_residual_is_the_mean_of_the_matching_records(tmp_path: Path) -> None:
    store = CalibrationStore(tmp_path)
    store.record(H100, 6000.0, 6400.0)  # +400
    store.record(H100, 8000.0, 8200.0)  # +200
    assert store.residual_mib(H100) == pytest.approx(300.0)
    assert store.apply(H100, 5000.0) == pytest.approx(5300.0)


@pytest.mark.parametrize(
    "other",
    [
        CalibrationKey("rig-2", H100.gpu_model, H100.engine, H100.engine_version),
        CalibrationKey(H100.host, "NVIDIA RTX 4090", H100.engine, H100.engine_version),
        CalibrationKey(H100.host, H100.gpu_model, "vllm", H100.engine_version),
        CalibrationKey(H100.host, H100.gpu_model, H100.engine, "b7000"),
    ],
    ids=["host", "gpu", "engine", "version"],
)
def test_records_of_another_key_do_not_apply(tmp_path: Path, other: CalibrationKey) -> None:
    store = CalibrationStore(tmp_path)
    store.record(H100, 6000.0, 6400.0)
    assert store.residual_mib(other) is None
    assert store.apply(other, 5000.0) == 5000.0


def test_the_last_run_matches_host_gpu_and_engine_of_any_version(tmp_path: Path) -> None:
    store = CalibrationStore(tmp_path)
    store.record(H100, 6000.0, 6400.0)
    newer = store.record(CalibrationKey("rig-1", H100.gpu_model, "llamacpp", "b7000"), 1.0, 2.0)
    store.record(CalibrationKey("rig-1", H100.gpu_model, "vllm", "0.11"), 3.0, 4.0)
    assert store.last_run("rig-1", H100.gpu_model, "llamacpp") == newer
    assert store.last_run("rig-1", "NVIDIA RTX 4090", "llamacpp") is None


def test_the_engines_buffers_are_kept_with_the_record(tmp_path: Path) -> None:
    report = BufferReport(model={"CUDA0": 5347.57, "CPU_Mapped": 593.5}, kv={"CUDA0": 704.0})
    rec = CalibrationStore(tmp_path).record(H100, 6813.0, 7200.0, report)
    assert rec.buffers == {"model:CUDA0": 5347.57, "model:CPU_Mapped": 593.5, "kv:CUDA0": 704.0}
    saved = json.loads((tmp_path / FILE_NAME).read_text(encoding="utf-8"))
    assert saved[0]["buffers"]["kv:CUDA0"] == 704.0
    assert saved[0]["key"]["gpu_model"] == H100.gpu_model


def test_only_the_newest_records_are_kept(tmp_path: Path) -> None:
    store = CalibrationStore(tmp_path)
    path = tmp_path / FILE_NAME
    old = [
        {"key": asdict(H100), "estimated_mib": 0.0, "measured_mib": 1000.0, "at": i}
        for i in range(MAX_RECORDS)
    ]
    path.write_text(json.dumps(old), encoding="utf-8")
    store.record(H100, 0.0, 0.0)
    assert len(json.loads(path.read_text(encoding="utf-8"))) == MAX_RECORDS
    # the oldest (+1000) went; MAX_RECORDS - 1 of them and the new +0 remain
    expected = 1000.0 * (MAX_RECORDS - 1) / MAX_RECORDS
    assert store.residual_mib(H100) == pytest.approx(expected)


def test_an_unreadable_file_is_ignored_and_then_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / FILE_NAME).write_text("{not json", encoding="utf-8")
    store = CalibrationStore(tmp_path)
    with caplog.at_level(logging.WARNING):
        assert store.residual_mib(H100) is None
    assert "ignoring unreadable calibration file" in caplog.text
    store.record(H100, 100.0, 150.0)
    assert store.residual_mib(H100) == pytest.approx(50.0)


def test_the_next_estimate_is_corrected_by_the_version_that_ran_last(tmp_path: Path) -> None:
    store = CalibrationStore(tmp_path)
    assert store.machine_residual(H100.host, H100.gpu_model, H100.engine) is None
    older = CalibrationKey(H100.host, H100.gpu_model, H100.engine, "b5000")
    store.record(older, 6000.0, 7000.0)
    store.record(H100, 6000.0, 6400.0)
    store.record(H100, 6000.0, 6500.0)
    assert store.machine_residual(H100.host, H100.gpu_model, H100.engine) == pytest.approx(450.0)
    assert store.machine_residual(H100.host, "CPU", H100.engine) is None


def test_a_start_is_recorded_once_and_a_plan_is_named_by_what_sizes_it(tmp_path: Path) -> None:
    store = CalibrationStore(tmp_path)
    store.record(H100, 10.0, 11.0, start="processes:123:1700000000")
    assert store.has_start("processes:123:1700000000")
    assert not store.has_start("processes:124:1700000000")
    started = LaunchPlan(model="/m.gguf", context=8192, name="mine", port=8080, threads=4)
    from_fit = launch_plan(Path("/m.gguf"), FitPlan(ctx=8192, parallel=None, device="cpu"))
    assert plan_key(started) == plan_key(from_fit)
    assert plan_key(replace(started, context=4096)) != plan_key(started)
