"""The one role check (`check_roles`) the CLI, the Roles page and the role chip call.

Real files (a Hugging Face qwen3_moe model, PEFT adapters whose bases are real folders)
and a loopback server answering in vLLM's documented shapes (vllm_api.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.engines.plan import LaunchPlan
from app.errors import UserError
from app.roles.check import check_roles
from app.roles.role import Role, RoleAdapter
from tests.unit.app.library.builders import HfModel, Shape, write_hf_model, write_peft
from tests.unit.app.roles.vllm_api import VllmState, vllm_api

MOE = Shape(arch="qwen3moe", experts=8, experts_used=2)


@pytest.fixture
def rig(tmp_path: Path) -> dict[str, Path]:
    moe = write_hf_model(tmp_path / "Qwen3-MoE", HfModel(shape=MOE, model_type="qwen3_moe"))
    dense = write_hf_model(tmp_path / "Qwen3-Dense")
    return {
        "model": moe,
        "moe-lora": write_peft(tmp_path / "moe-lora", base=str(moe)),
        "dense-lora": write_peft(tmp_path / "dense-lora", base=str(dense)),
        "big-lora": write_peft(tmp_path / "big-lora", rank=64, base=str(moe)),
    }


def _roles(rig: dict[str, Path]) -> list[Role]:
    return [Role("Plain"),
            Role("Moe", adapters=(RoleAdapter(str(rig["moe-lora"])),)),
            Role("Dense", adapters=(RoleAdapter(str(rig["dense-lora"])),)),
            Role("Big", adapters=(RoleAdapter(str(rig["big-lora"])),))]


def test_a_backend_rigdeck_started_is_judged_with_its_model_and_plan(
        rig: dict[str, Path]) -> None:
    plan = LaunchPlan(model=str(rig["model"]), engine="vllm", gpus=("0",), max_lora_rank=16,
                      adapters=(str(rig["moe-lora"]),))
    state = VllmState(base="Qwen3-MoE", adapters={"moe-lora": str(rig["moe-lora"])})
    with vllm_api(state) as url:
        checked = check_roles(_roles(rig), url, "key", plan)
    assert checked.url == url
    assert checked.served.engine == "vllm"
    assert checked.model is not None
    assert checked.model.architecture == "qwen3_moe"
    verdicts = checked.availability
    assert verdicts["Plain"].ok
    assert verdicts["Moe"].ok
    assert verdicts["Moe"].to_load == ()  # already loaded
    assert (verdicts["Dense"].ok, verdicts["Dense"].reason) == (
        False, "incompatible base: adapter for qwen3, model is qwen3_moe")
    assert (verdicts["Big"].ok, verdicts["Big"].fix) == (False, "relaunch")
    assert "--max-lora-rank 16" in verdicts["Big"].reason


def test_a_bare_url_is_judged_by_what_the_server_says(rig: dict[str, Path]) -> None:
    state = VllmState(base="Qwen3-MoE", adapters={"moe-lora": str(rig["moe-lora"])})
    with vllm_api(state) as url:
        checked = check_roles(_roles(rig), url)
    assert checked.model is None  # not known: the adapters' architecture is not checked
    assert checked.availability["Dense"].ok
    assert checked.availability["Dense"].to_load == _roles(rig)[2].adapters


def test_nothing_answering_is_a_user_error() -> None:
    with pytest.raises(UserError, match=r"nothing answers at http://127\.0\.0\.1:9"):
        check_roles([Role("Plain")], "http://127.0.0.1:9")
