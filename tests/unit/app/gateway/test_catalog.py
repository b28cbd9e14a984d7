"""Model ids: a backend by its name, a role by its own name where one backend serves it,
`role@backend` where several could; roles keep home slots."""

from __future__ import annotations

from app.engines.plan import LaunchPlan
from app.gateway.catalog import Served, build_routes, role_slots, served_backends
from app.roles.role import Role, RoleAdapter
from app.runtime.backend import Backend, BackendState
from app.runtime.saved_plans import SavedPlan

COACH = Role("Sports coach", adapters=(RoleAdapter("/loras/coach.gguf"),),
             system_prompt="Coach.")
PROMPT_ONLY = Role("Poet", system_prompt="Write verse.")
PLAIN = Role("Plain")


def backend(name: str, plan: LaunchPlan, host: str = "local",
            state: BackendState = BackendState.READY) -> Backend:
    return Backend(name=name, host=host, engine=plan.engine, model=plan.model, port=8080,
                   endpoint_host="127.0.0.1", ref=f"ref-{name}", plan_json=plan.to_json(),
                   state=state)


QWEN = LaunchPlan(model="/models/qwen.gguf", name="qwen", adapters=("/loras/coach.gguf",))
GEMMA = LaunchPlan(model="/models/gemma.gguf", name="gemma")


def test_a_role_with_adapters_goes_to_the_backend_that_preloaded_them() -> None:
    served = served_backends([backend("qwen", QWEN), backend("gemma", GEMMA)], [])
    routes = build_routes(served, [COACH, PROMPT_ONLY, PLAIN])
    assert routes["sports-coach"].served.name == "qwen"
    assert routes["sports-coach"].role == COACH
    assert routes["qwen"].role is None
    # a prompt-only role fits both: only role@backend, both listed
    assert "poet" not in routes
    assert {routes["poet@qwen"].listed, routes["poet@gemma"].listed} == {True}
    assert "plain" not in routes  # it changes nothing


def test_saved_plans_are_ids_for_a_start_on_demand_and_running_ones_come_first() -> None:
    saved = [SavedPlan("gemma", "local", GEMMA, saved_at=10.0),
             SavedPlan("off", "local", GEMMA, saved_at=20.0, on_demand=False)]
    served = served_backends([backend("qwen", QWEN)], saved)
    assert [(s.name, s.running) for s in served] == [("qwen", True), ("gemma", False)]
    routes = build_routes(served, [])
    assert routes["gemma"].describe()["running"] is False
    assert "off" not in routes


def test_a_name_used_on_two_hosts_is_host_slash_name() -> None:
    served = served_backends([backend("qwen", QWEN), backend("qwen", QWEN, host="server")], [])
    routes = build_routes(served, [])
    assert {"local/qwen", "server/qwen"} <= set(routes)


def test_a_failed_backend_is_not_routed_unless_its_plan_is_saved() -> None:
    dead = backend("qwen", QWEN, state=BackendState.FAILED)
    assert build_routes(served_backends([dead], []), []) == {}
    again = served_backends([dead], [SavedPlan("qwen", "local", QWEN, saved_at=1.0)])
    assert not again[0].running


def test_each_role_has_its_own_home_slot_and_slot_zero_is_left_to_the_base() -> None:
    tutor = Role("Tutor", adapters=(RoleAdapter("/loras/coach.gguf", 0.5),), system_prompt="T")
    plan = LaunchPlan(model="/models/qwen.gguf", name="qwen", adapters=("/loras/coach.gguf",),
                      parallel=3)
    served = served_backends([backend("qwen", plan)], [])
    routes = build_routes(served, [COACH, tutor])
    assert role_slots(routes, served[0]) == {"Sports coach": 1, "Tutor": 2}
    one_slot = served_backends([backend("qwen", QWEN)], [])
    assert role_slots(build_routes(one_slot, [COACH]), one_slot[0]) == {}


def test_a_role_for_another_base_model_is_not_offered_there() -> None:
    only_gemma = Role("Gemma helper", system_prompt="Hi", base_models=("gemma.gguf",))
    routes = build_routes(served_backends([backend("qwen", QWEN), backend("gemma", GEMMA)], []),
                          [only_gemma])
    assert routes["gemma-helper"].served.name == "gemma"
    assert "gemma-helper@qwen" not in routes


def test_served_names_the_model_file() -> None:
    assert Served("qwen", "local", QWEN).model_name == "qwen.gguf"
