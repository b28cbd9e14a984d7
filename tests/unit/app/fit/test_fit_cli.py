"""`rigdeck fit` as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli.main import main
from tests.unit.app.fit.reference import need, shared_data


def _moe() -> Path:
    return need(shared_data() / "gguf-headers" / "moe30.header.gguf")


def test_json_has_every_field(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["fit", str(_moe()), "--ctx", "32768", "--json", "--gpu-memory", "81559"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["engine"] == "llamacpp"
    assert out["fits"] is True
    assert out["max_ctx"] >= 32768
    dev = out["devices"][0]
    assert set(dev) == {
        "name",
        "weights_mib",
        "kv_mib",
        "compute_mib",
        "output_mib",
        "overhead_mib",
        "total_mib",
    }
    assert dev["total_mib"] == pytest.approx(
        sum(v for k, v in dev.items() if k.endswith("_mib") and k != "total_mib"), abs=0.1
    )
    assert set(out["host"]) == set(dev)


def test_too_small_gpu_does_not_fit_and_advises(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(
        [
            "fit",
            str(_moe()),
            "--ctx",
            "90000",
            "--flash-attn",
            "off",
            "--gpu-memory",
            "10000",
            "--json",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert rc == 1
    assert out["fits"] is False
    changes = [a["change"] for a in out["advice"] if a["fits"]]
    assert any("flash attention" in c for c in changes)
    assert 0 < out["max_ctx"] < 90000


def test_readable_table(capsys: pytest.CaptureFixture[str]) -> None:
    main(["fit", str(_moe()), "--ctx", "4096"])
    text = capsys.readouterr().out
    assert "GPU 0" in text
    assert "host" in text
    assert "fits: yes" in text


def test_missing_file_is_a_clear_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc = main(["fit", str(tmp_path / "nope.gguf")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "no such file" in err
    assert "Traceback" not in err


def test_quantised_v_without_flash_attention_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["fit", str(_moe()), "--flash-attn", "off", "--cache-type-v", "q8_0"])
    assert rc == 2
    assert "flash attention" in capsys.readouterr().err


def test_not_a_gguf_is_a_clear_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"nope" * 10)
    rc = main(["fit", str(bad)])
    assert rc == 2
    assert "GGUF" in capsys.readouterr().err


def test_cpu_plan_puts_everything_on_the_host(capsys: pytest.CaptureFixture[str]) -> None:
    main(["fit", str(_moe()), "--device", "cpu", "--ctx", "2048", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["devices"] == []
    assert out["host"]["weights_mib"] > 5000


def _capacities(text: str) -> list[int]:
    """The "of" column of each GPU row of `rigdeck fit`'s table."""
    return [int(line.split()[-1]) for line in text.splitlines() if line.startswith("GPU ")]


@pytest.mark.parametrize("size", ["96 GB", "96G", "96 GiB", "96gb", "98304"])
def test_gpu_memory_in_gb_or_mib_plans_for_the_same_card(
        capsys: pytest.CaptureFixture[str], size: str) -> None:
    rc = main(["fit", str(_moe()), "--ctx", "4096", "--gpu-memory", size])
    assert rc == 0
    assert _capacities(capsys.readouterr().out) == [98304]


def test_gpu_memory_per_gpu(capsys: pytest.CaptureFixture[str]) -> None:
    main(["fit", str(_moe()), "--gpus", "0,1", "--gpu-memory", "24G,24G"])
    assert _capacities(capsys.readouterr().out) == [24576, 24576]


@pytest.mark.parametrize("size", ["0", "-24G", "lots", "96 GX"])
def test_a_bad_gpu_memory_is_a_clear_error(capsys: pytest.CaptureFixture[str], size: str) -> None:
    rc = main(["fit", str(_moe()), f"--gpu-memory={size}"])
    captured = capsys.readouterr()
    assert rc == 2
    assert captured.out == ""
    assert (f"--gpu-memory: {size!r} is not a memory size; use MiB (98304) or GB (96G)"
            in captured.err)
    assert "Traceback" not in captured.err


def test_the_verdict_says_what_the_host_needs_and_a_cpu_plan_names_no_gpu(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main(["fit", str(_moe()), "--device", "cpu", "--ctx", "2048"])
    text = capsys.readouterr().out
    verdict = next(line for line in text.splitlines() if line.startswith("fits: "))
    # yes or no depends on this machine's RAM; what is said does not
    assert " — the host needs " in verdict
    assert "MiB RAM" in verdict
    assert "GPU" not in verdict
    assert "  host: mapped weights (page cache): " in text


def test_json_says_the_verdict_and_the_yarn_flags_past_the_trained_context(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main(["fit", str(_moe()), "--ctx", "90000", "--json", "--gpu-memory", "81559"])
    out = json.loads(capsys.readouterr().out)
    assert out["context_flags"] == ["--rope-scaling", "yarn", "--rope-scale", "2.2",
                                    "--yarn-orig-ctx", "40960"]
    assert "YaRN" in out["context_note"]
    assert out["verdict"]
    assert any(line.startswith("mapped weights") for line in out["host_needs"])
    assert out["max_ctx"] <= 4 * 40960  # at most what the model can use with YaRN x4
