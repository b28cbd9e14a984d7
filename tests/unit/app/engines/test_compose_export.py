"""Plans exported as docker-compose.yml + launch.sh and imported back: the same plans, the
recipe's own flags, GPUs reserved for nvidia, mounts read-only, ports on 127.0.0.1, and
no API key in either file. (Run for real: tests/integration/test_backends_export.py.)"""

from __future__ import annotations

import shlex
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.cli.main import main
from app.engines.compose import plans_from_compose, to_compose
from app.engines.export import exported_backends
from app.engines.plan import LaunchPlan, PlanError
from app.engines.recipes import DEFAULT_IMAGES, launch_spec
from app.engines.shell_launcher import to_shell
from tests.realparts.fixtures import TinyGgufFactory


@pytest.fixture
def plans(tiny_gguf: TinyGgufFactory, tmp_path: Path) -> list[LaunchPlan]:
    """A MoE llama.cpp plan over two GPUs with an adapter and an expert override, and a
    vLLM plan with a LoRA folder, in folders whose names need quoting."""
    moe = tiny_gguf(arch="qwen3moe", filename="qwen $3 moe.gguf")
    lora = tiny_gguf.lora(filename="role, a.gguf")
    hf = tmp_path / "hf models" / "Qwen3-8B"
    hf.mkdir(parents=True)
    return [
        LaunchPlan(model=str(moe), name="qwen-moe", adapters=(str(lora),), context=8192,
                   parallel=2, cache_type_k="q8_0", cache_type_v="q8_0", flash_attn=True,
                   gpus=("0", "1"), tensor_split=(3.0, 1.0), experts=4, n_cpu_moe=2,
                   reasoning_format="deepseek", extra_args=("--temp", "0.6"),
                   labels={"team": "lab"}),
        LaunchPlan(model=str(hf), engine="vllm", name="qwen8b", context=32768,
                   gpus=("GPU-5c0b2f3e-8a1d-4c6e-9f7a-1b2c3d4e5f60",), port=9000,
                   adapters=(str(tmp_path / "hf models" / "lora-sql"),)),
    ]


def _compose(plans: list[LaunchPlan], **options: bool) -> dict[str, dict[str, Any]]:
    text = to_compose(exported_backends(plans, DEFAULT_IMAGES, **options))
    services: dict[str, dict[str, Any]] = yaml.safe_load(text)["services"]
    return services


def test_export_then_import_gives_the_same_plans(plans: list[LaunchPlan]) -> None:
    text = to_compose(exported_backends(plans, DEFAULT_IMAGES))
    assert plans_from_compose(text) == plans


def test_import_needs_no_model_file_to_check_an_expert_override(
        plans: list[LaunchPlan]) -> None:
    text = to_compose(exported_backends(plans, DEFAULT_IMAGES))
    Path(plans[0].model).unlink()  # as on a desktop that took the file from a server
    assert plans_from_compose(text) == plans


def test_each_service_runs_the_recipe_with_gpus_mounts_and_ports(
        plans: list[LaunchPlan]) -> None:
    services = _compose(plans)
    moe, vllm = services["qwen-moe"], services["qwen8b"]
    expected = launch_spec(plans[0], port=8080, bind="0.0.0.0", arch="qwen3moe")
    assert moe["command"] == [a.replace("$", "$$") for a in expected.args]
    assert "qwen3moe.expert_used_count=int:4" in expected.args
    assert moe["image"] == DEFAULT_IMAGES["llamacpp"]
    assert moe["ports"] == ["127.0.0.1:8080:8080"]
    assert vllm["ports"] == ["127.0.0.1:9000:9000"]
    assert moe["deploy"] == {"resources": {"reservations": {"devices": [
        {"driver": "nvidia", "device_ids": ["0", "1"], "capabilities": ["gpu"]}]}}}
    assert vllm["deploy"] == {"resources": {"reservations": {"devices": [
        {"driver": "nvidia", "device_ids": ["GPU-5c0b2f3e-8a1d-4c6e-9f7a-1b2c3d4e5f60"],
         "capabilities": ["gpu"]}]}}}
    volumes = [*moe["volumes"], *vllm["volumes"]]
    assert volumes
    assert all(v["read_only"] is True for v in volumes)
    assert {v["source"] for v in moe["volumes"]} == {  # the files, never their folder
        path.replace("$", "$$") for path in (plans[0].model, *plans[0].adapters)}
    assert vllm["ipc"] == "host"
    assert "ipc" not in moe
    for service in (moe, vllm):  # shut in: no capability, no new privileges, not root
        assert service["cap_drop"] == ["ALL"]
        assert service["security_opt"] == ["no-new-privileges:true"]
        assert service["user"] not in ("", "0", "0:0", "root")
        assert service["pids_limit"] > 0
    assert moe["read_only"] is True
    assert moe["tmpfs"] == ["/tmp:rw,nosuid,nodev,size=512m,mode=1777"]
    assert vllm["environment"] == {
        "HOME": "/tmp", "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
        "VLLM_API_KEY": "${QWEN8B_API_KEY:?set QWEN8B_API_KEY to the API key of qwen8b}"}
    assert moe["labels"]["team"] == "lab"
    assert "rigdeck.managed" not in moe["labels"]


def test_host_networking_listens_on_loopback_without_published_ports(
        plans: list[LaunchPlan]) -> None:
    service = _compose(plans, host_network=True)["qwen-moe"]
    assert service["network_mode"] == "host"
    assert "ports" not in service
    command = service["command"]
    assert isinstance(command, list)
    assert command[command.index("--host") + 1] == "127.0.0.1"


def test_the_launcher_runs_the_same_command_and_keeps_the_key_out(
        plans: list[LaunchPlan]) -> None:
    backends = exported_backends(plans, DEFAULT_IMAGES)
    script = to_shell(backends)
    subprocess.run(["sh", "-n"], input=script, text=True, check=True)
    runs = [line for line in script.replace("\\\n", " ").splitlines() if " docker run " in line]
    assert len(runs) == 2
    words = shlex.split(runs[0])
    assert words[0] == 'LLAMA_API_KEY=$QWEN_MOE_API_KEY'
    image_at = words.index(DEFAULT_IMAGES["llamacpp"])
    assert words[image_at + 1:] == list(backends[0].spec.args)
    options = words[3:image_at]
    assert options[options.index("--gpus") + 1] == '"device=0,1"'
    assert options[options.index("-p") + 1] == "127.0.0.1:8080:8080"
    assert options[options.index("-e") + 1] == "LLAMA_API_KEY"  # the value comes from env
    mounts = [options[i + 1] for i, o in enumerate(options) if o == "--mount"]
    assert all(m.endswith(",readonly") for m in mounts)
    assert ': "${QWEN_MOE_API_KEY:?set QWEN_MOE_API_KEY' in script
    assert "--ipc=host" in shlex.split(runs[1])


def test_a_command_edited_by_hand_is_refused_with_the_difference(
        plans: list[LaunchPlan]) -> None:
    text = to_compose(exported_backends(plans, DEFAULT_IMAGES))
    edited = text.replace("- '8192'", "- '16384'", 1)
    with pytest.raises(PlanError, match=r"qwen-moe: its command was changed after export "
                                        r"\(argument \d+ is '16384', the plan makes '8192'\)"):
        plans_from_compose(edited)


def test_a_compose_file_rigdeck_did_not_write_is_refused() -> None:
    text = "services:\n  web:\n    image: nginx\n"
    with pytest.raises(PlanError, match=r"service web has no rigdeck\.plan label"):
        plans_from_compose(text)
    with pytest.raises(PlanError, match="not valid YAML"):
        plans_from_compose("services: [\n")
    with pytest.raises(PlanError, match="has no services"):
        plans_from_compose("version: '3'\n")


def test_two_plans_with_one_name_or_port_are_refused(plans: list[LaunchPlan]) -> None:
    with pytest.raises(PlanError, match="two plans are named qwen-moe"):
        exported_backends([plans[0], plans[0]], DEFAULT_IMAGES)
    with pytest.raises(PlanError, match="same port"):
        exported_backends([plans[1], LaunchPlan(model="/m.gguf", port=9000)], DEFAULT_IMAGES)


def _write_plan_files(plans: list[LaunchPlan], folder: Path) -> list[str]:
    import tomli_w

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for plan in plans:
        path = folder / f"{plan.backend_name}.toml"
        path.write_text(tomli_w.dumps(plan.to_dict()), encoding="utf-8")
        paths.append(str(path))
    return paths


def test_cli_export_and_import_round_trip_through_plan_files(
        plans: list[LaunchPlan], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = _write_plan_files(plans, tmp_path / "plans")
    out = tmp_path / "server"
    assert main(["export", *files, "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "qwen-moe: port 8080, API key from $QWEN_MOE_API_KEY" in printed
    assert (out / "launch.sh").stat().st_mode & 0o111
    assert main(["import", str(out / "docker-compose.yml"), "-o", str(tmp_path / "back")]) == 0
    back = [LaunchPlan.from_toml(tmp_path / "back" / f"{p.backend_name}.toml") for p in plans]
    assert back == plans
    with (tmp_path / "back" / "qwen8b.toml").open("rb") as handle:
        assert tomllib.load(handle)["port"] == 9000


def test_cli_export_does_not_overwrite_without_force(
        plans: list[LaunchPlan], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = _write_plan_files(plans, tmp_path / "plans")
    out = tmp_path / "server"
    assert main(["export", *files, "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["export", *files, "-o", str(out)]) == 2
    assert "already exist" in capsys.readouterr().err
    assert main(["export", *files, "-o", str(out), "--force"]) == 0


def test_cli_import_of_a_missing_file_is_a_clear_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", str(tmp_path / "nope.yml")]) == 2
    assert f"cannot read {tmp_path / 'nope.yml'}" in capsys.readouterr().err


def test_cli_export_of_a_backend_needs_a_folder(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "qwen-moe"]) == 2
    assert "rigdeck export needs -o DIR, the folder to write to" in capsys.readouterr().err
