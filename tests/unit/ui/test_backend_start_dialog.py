"""The Start dialog's roles: those whose adapters fit the model are offered checked, the
others shown disabled with the reason; the plan carries only the checked, fitting ones.

Real tiny GGUF files (a qwen3moe model; LoRAs for qwen3moe and for qwen3, whose attention
shapes are the same) and the app's own role feed and task runner.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QDialog, QListWidgetItem
from pytestqt.qtbot import QtBot

from app.engines.plan import LaunchPlan
from app.roles.role import Role, RoleAdapter
from tests.realparts.fixtures import TinyGgufFactory
from tests.realparts.gguf_factory import TinyModelSpec
from ui.backend_start_dialog import BackendStartDialog
from ui.services import Services

WAIT_MS = 20_000
MOE = TinyModelSpec(arch="qwen3moe")
DENSE = TinyModelSpec(arch="qwen3")


def _items(dialog: BackendStartDialog) -> dict[str, QListWidgetItem]:
    items = (dialog.roles_list.item(row) for row in range(dialog.roles_list.count()))
    return {str(item.data(Qt.ItemDataRole.UserRole)): item for item in items}


def _dialog(qtbot: QtBot, services: Services, plan: LaunchPlan | None = None
            ) -> BackendStartDialog:
    dialog = BackendStartDialog(["local", "processes"], plan,
                                read_roles=services.roles.roles_for_model)
    qtbot.add_widget(dialog)
    dialog.show()
    return dialog


def test_fitting_roles_are_checked_others_disabled_with_the_reason(
        qtbot: QtBot, services: Services, tiny_gguf: TinyGgufFactory) -> None:
    model = tiny_gguf(MOE, filename="moe.gguf")
    moe_lora = tiny_gguf.lora(MOE, filename="moe-lora.gguf")
    dense_lora = tiny_gguf.lora(DENSE, filename="dense-lora.gguf")
    services.roles.save(Role("Expert", adapters=(RoleAdapter(str(moe_lora)),)))
    services.roles.save(Role("Writer", icon="✎", adapters=(RoleAdapter(str(dense_lora)),)))
    dialog = _dialog(qtbot, services)
    QTest.keyClicks(dialog.model_edit, str(model))
    qtbot.waitUntil(lambda: dialog.model_roles is not None, timeout=WAIT_MS)

    items = _items(dialog)
    assert list(items) == ["Expert", "Writer"]  # shipped roles have no adapters
    expert, writer = items["Expert"], items["Writer"]
    assert expert.text() == "Expert"
    assert expert.checkState() == Qt.CheckState.Checked
    assert expert.flags() & Qt.ItemFlag.ItemIsEnabled
    assert writer.text() == "✎ Writer — incompatible base: adapter for qwen3, model is qwen3moe"
    assert not writer.flags() & Qt.ItemFlag.ItemIsEnabled
    assert writer.checkState() == Qt.CheckState.Unchecked
    assert "1 of 2 roles with adapters fit this model" in dialog.roles_label.text()

    dialog.accept_button.click()
    assert dialog.result() == QDialog.DialogCode.Accepted
    assert dialog.plan().adapters == (str(moe_lora),)


def test_unchecking_a_role_leaves_its_adapter_out(
        qtbot: QtBot, services: Services, tiny_gguf: TinyGgufFactory) -> None:
    model = tiny_gguf(MOE, filename="moe.gguf")
    first = tiny_gguf.lora(MOE, filename="first.gguf", seed=1)
    second = tiny_gguf.lora(MOE, filename="second.gguf", seed=2)
    services.roles.save(Role("First", adapters=(RoleAdapter(str(first)),)))
    services.roles.save(Role("Second", adapters=(RoleAdapter(str(second)),)))
    dialog = _dialog(qtbot, services, LaunchPlan(model=str(model), context=512))
    qtbot.waitUntil(lambda: dialog.model_roles is not None, timeout=WAIT_MS)  # prefilled
    assert dialog.plan().adapters == (str(first), str(second))

    dialog.roles_list.setFocus()
    dialog.roles_list.setCurrentItem(_items(dialog)["Second"])
    QTest.keyClick(dialog.roles_list, Qt.Key.Key_Space)  # the user unticks it
    assert dialog.checked_roles() == ["First"]
    assert dialog.plan().adapters == (str(first),)
    assert dialog.plan().context == 512


def test_start_waits_for_the_roles_of_a_model_just_typed(
        qtbot: QtBot, services: Services, tiny_gguf: TinyGgufFactory) -> None:
    """Start right after typing: the plan is built once the roles for that model are
    known, so a fitting role is not silently dropped."""
    model = tiny_gguf(MOE, filename="moe.gguf")
    lora = tiny_gguf.lora(MOE, filename="moe-lora.gguf")
    services.roles.save(Role("Expert", adapters=(RoleAdapter(str(lora)),)))
    dialog = _dialog(qtbot, services)
    qtbot.waitUntil(lambda: dialog.model_roles is not None, timeout=WAIT_MS)  # empty field
    dialog.model_edit.setText(str(model))
    assert dialog.model_roles is None
    with qtbot.wait_signal(dialog.accepted, timeout=WAIT_MS):
        dialog.accept_button.click()
    assert dialog.plan().adapters == (str(lora),)


def test_a_slot_per_role_says_its_kv_cost_and_sets_the_slots_and_context(
        qtbot: QtBot, services: Services, tiny_gguf: TinyGgufFactory) -> None:
    spec = TinyModelSpec(arch="qwen3", layers=2, kv_heads=2, head_dim=64)
    model = tiny_gguf(spec, filename="dense.gguf")
    first = tiny_gguf.lora(spec, filename="first.gguf", seed=1)
    second = tiny_gguf.lora(spec, filename="second.gguf", seed=2)
    services.roles.save(Role("First", adapters=(RoleAdapter(str(first)),)))
    services.roles.save(Role("Second", adapters=(RoleAdapter(str(second)),)))
    dialog = _dialog(qtbot, services, LaunchPlan(model=str(model), context=8192))
    qtbot.waitUntil(lambda: dialog.model_roles is not None, timeout=WAIT_MS)
    assert dialog.slots_label.text() == ""
    dialog.slots_box.click()
    # 2 layers x (K + V) x 2 KV heads x 64 x 2 bytes (f16) = 1 KiB a token; 8192 a slot
    assert dialog.slots_label.text() == ("3 slots (the base model's and 2 for the roles) of "
                                         "8,192 tokens each: context 24,576, about 16 MiB "
                                         "more KV cache than one slot.")
    plan = dialog.plan()
    assert (plan.parallel, plan.context) == (3, 24576)
    dialog.roles_list.setFocus()
    dialog.roles_list.setCurrentItem(_items(dialog)["Second"])
    QTest.keyClick(dialog.roles_list, Qt.Key.Key_Space)
    assert "2 slots" in dialog.slots_label.text()
    assert "about 8 MiB more" in dialog.slots_label.text()
    assert (dialog.plan().parallel, dialog.plan().context) == (2, 16384)
