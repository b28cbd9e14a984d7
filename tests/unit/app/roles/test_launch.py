"""Launching with roles: which adapters are preloaded (and which roles a model offers),
the engines' flags, the memory."""

from __future__ import annotations

from pathlib import Path

from app.engines import llamacpp, vllm
from app.engines.plan import LaunchPlan
from app.fit.llamacpp_estimate import estimate_llamacpp
from app.fit.plan import FitPlan
from app.library.gguf import read_gguf_header
from app.library.loader import load_entry
from app.roles.binding import read_adapters
from app.roles.launch import plan_with_roles, roles_for_model, vllm_max_rank
from app.roles.role import Role, RoleAdapter
from app.runtime.fit_check import adapter_bytes
from tests.realparts.gguf_factory import TinyModelSpec, write_lora_adapter, write_tiny_model
from tests.unit.app.library.builders import (
    Shape,
    write_gguf,
    write_gguf_lora,
    write_hf_model,
    write_peft,
)


def test_llamacpp_preloads_each_compatible_adapter_once_without_applying(
        tmp_path: Path) -> None:
    model = write_gguf(tmp_path / "base.gguf")
    coach = write_gguf_lora(tmp_path / "coach.gguf")
    tutor = write_gguf_lora(tmp_path / "tutor.gguf")
    wide = write_gguf_lora(tmp_path / "wide.gguf", Shape(hidden=128, head_dim=32))
    roles = [Role("Coach", adapters=(RoleAdapter(str(coach)),)),
             Role("Both", adapters=(RoleAdapter(str(coach)), RoleAdapter(str(tutor), 0.5))),
             Role("Wide", adapters=(RoleAdapter(str(wide)),)),
             Role("Gone", adapters=(RoleAdapter(str(tmp_path / "gone.gguf")),)),
             Role("Plain")]
    launch = plan_with_roles(LaunchPlan(model=str(model)), roles, model=load_entry(model),
                             adapters=read_adapters(roles))
    assert launch.plan.adapters == (str(coach), str(tutor))
    assert launch.roles == ("Coach", "Both")
    assert [name for name, _ in launch.skipped] == ["Wide", "Gone"]
    assert launch.skipped[0][1].startswith("incompatible base")
    args = llamacpp.recipe(launch.plan, port=8080, in_container=False).args
    assert args.count("--lora") == 2
    assert "--lora-init-without-apply" in args


def test_vllm_gets_enable_lora_max_loras_and_a_rank_vllm_accepts(tmp_path: Path) -> None:
    base = write_hf_model(tmp_path / "hf-base")
    small = write_peft(tmp_path / "coach", rank=8)
    big = write_peft(tmp_path / "tutor", rank=24, modules=("q_proj", "k_proj", "o_proj"))
    roles = [Role("Coach", adapters=(RoleAdapter(str(small)),)),
             Role("Tutor", adapters=(RoleAdapter(str(big)),))]
    launch = plan_with_roles(LaunchPlan(model=str(base), engine="vllm", gpus=("0",)), roles,
                             model=load_entry(base), adapters=read_adapters(roles))
    assert launch.plan.max_lora_rank == 32
    spec = vllm.recipe(launch.plan, port=8000, in_container=False)
    args = list(spec.args)
    assert args[args.index("--max-loras") + 1] == "2"
    assert args[args.index("--max-lora-rank") + 1] == "32"
    assert "--enable-lora" in args
    assert f"coach={small}" in args
    assert f"tutor={big}" in args
    assert spec.env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"


def test_vllm_max_rank_rounds_up_to_allowed_values() -> None:
    assert [vllm_max_rank([r]) for r in (4, 8, 9, 100, 300, 512)] == [8, 8, 16, 128, 320, 512]
    assert vllm_max_rank([]) == 16


def test_fit_counts_the_preloaded_adapters_on_the_layers_device(tmp_path: Path) -> None:
    model = write_gguf(tmp_path / "base.gguf")
    lora = write_gguf_lora(tmp_path / "coach.gguf", rank=64)
    header = read_gguf_header(model)
    size = adapter_bytes((str(lora),))
    assert size == lora.stat().st_size
    plain = estimate_llamacpp(header, FitPlan(ctx=512))
    with_roles = estimate_llamacpp(header, FitPlan(ctx=512, adapter_bytes=size))
    added = with_roles.devices[0].weights_mib - plain.devices[0].weights_mib
    assert abs(added - size / 2**20) < 0.01
    assert with_roles.devices[0].buffers["lora:CUDA0"] == added
    cpu = estimate_llamacpp(header, FitPlan(ctx=512, device="cpu", adapter_bytes=size))
    cpu_plain = estimate_llamacpp(header, FitPlan(ctx=512, device="cpu"))
    assert cpu.host.weights_mib > cpu_plain.host.weights_mib


def test_roles_for_a_model_offer_only_adapters_of_its_architecture(tmp_path: Path) -> None:
    """The Start dialog's list: a qwen3 LoRA has the qwen3moe model's attention shapes,
    yet llama-server refuses it ("model arch and LoRA arch mismatch")."""
    moe = TinyModelSpec(arch="qwen3moe")
    model = write_tiny_model(tmp_path / "moe.gguf", moe)
    moe_lora = write_lora_adapter(tmp_path / "moe-lora.gguf", moe)
    dense_lora = write_lora_adapter(tmp_path / "dense-lora.gguf", TinyModelSpec(arch="qwen3"))
    roles = [Role("Plain"),
             Role("Moe", adapters=(RoleAdapter(str(moe_lora)),)),
             Role("Dense", adapters=(RoleAdapter(str(dense_lora)),)),
             Role("Gone", adapters=(RoleAdapter(str(tmp_path / "gone.gguf")),))]

    found = roles_for_model(roles, str(model))

    assert [(fit.role.name, fit.reason) for fit in found.roles] == [
        ("Moe", None),
        ("Dense", "incompatible base: adapter for qwen3, model is qwen3moe"),
        ("Gone", f"adapter file missing: {tmp_path / 'gone.gguf'}")]
    launch = found.plan_with(LaunchPlan(model=str(model)), ["Moe", "Dense", "Gone"])
    assert launch.plan.adapters == (str(moe_lora),)
    assert launch.roles == ("Moe",)
    assert found.plan_with(LaunchPlan(model=str(model)), []).plan.adapters == ()


def test_no_role_fits_a_model_that_cannot_be_read(tmp_path: Path) -> None:
    lora = write_gguf_lora(tmp_path / "coach.gguf")
    roles = [Role("Coach", adapters=(RoleAdapter(str(lora)),))]
    assert roles_for_model(roles, "").roles[0].reason == "choose a model first"
    missing = roles_for_model(roles, str(tmp_path / "typo.gguf")).roles[0]
    assert missing.reason == "the model cannot be read here: file not found"
    assert roles_for_model(roles, str(lora)).roles[0].reason == (
        "coach.gguf is an adapter, not a model")
