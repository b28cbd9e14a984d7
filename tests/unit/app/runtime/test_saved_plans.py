"""Saved plans: the last plan of each backend by host and name, with its idle time and
whether a Gateway request may start it."""

from __future__ import annotations

import pytest

from app.engines.plan import LaunchPlan
from app.errors import UserError
from app.paths import AppPaths
from app.runtime.saved_plans import SavedPlans

PLAN = LaunchPlan(model="/models/qwen.gguf", name="qwen", context=8192)


def test_a_plan_is_kept_with_its_ttl_across_a_new_start(app_paths: AppPaths) -> None:
    saved = SavedPlans(app_paths.config / "saved_plans.toml")
    saved.remember("qwen", "local", PLAN)
    saved.set_ttl("qwen", 600)
    saved.remember("qwen", "local", LaunchPlan(model="/models/qwen.gguf", name="qwen",
                                               context=4096))
    again = SavedPlans(app_paths.config / "saved_plans.toml").get("qwen")
    assert (again.plan.context, again.ttl_s, again.on_demand) == (4096, 600, True)
    saved.set_on_demand("qwen", False)
    assert not saved.get("qwen").on_demand


def test_unknown_names_and_bad_ttls_are_refused_with_what_is_known(app_paths: AppPaths) -> None:
    saved = SavedPlans(app_paths.config / "saved_plans.toml")
    saved.remember("qwen", "local", PLAN)
    with pytest.raises(UserError, match=r"no saved plan .*'gemma'.*saved: qwen"):
        saved.set_ttl("gemma", 10)
    with pytest.raises(UserError, match="0 \\(never stop\\) or more"):
        saved.set_ttl("qwen", -1)
    saved.remember("qwen", "server", PLAN)
    with pytest.raises(UserError, match="several hosts"):
        saved.get("qwen")
    assert saved.get("qwen", "server").host == "server"


def test_an_entry_that_cannot_be_read_is_kept_and_said(app_paths: AppPaths) -> None:
    path = app_paths.config / "saved_plans.toml"
    path.parent.mkdir(parents=True)
    path.write_text('[[plan]]\nname = "broken"\nhost = "local"\nplan = "{"\n', encoding="utf-8")
    saved = SavedPlans(path)
    saved.remember("qwen", "local", PLAN)
    assert [p.name for p in saved.all()] == ["qwen"]
    assert "cannot be read (the stored plan is not valid JSON" in saved.problems[0]
    assert 'name = "broken"' in path.read_text()
