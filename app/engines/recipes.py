"""One entry point for every engine's recipe, so callers never branch on the engine."""

from __future__ import annotations

from app.engines import llamacpp, vllm
from app.engines.plan import LaunchPlan, PlanError
from app.engines.spec import LaunchSpec

DEFAULT_IMAGES = {llamacpp.ENGINE: llamacpp.DEFAULT_IMAGE, vllm.ENGINE: vllm.DEFAULT_IMAGE}


def launch_spec(plan: LaunchPlan, *, port: int, bind: str = "127.0.0.1", image: str = "",
                in_container: bool = True, arch: str | None = None) -> LaunchSpec:
    """The engine's launch for `plan`.

    Raises:
        PlanError: unknown engine, or values the engine cannot take together.
    """
    if plan.engine == llamacpp.ENGINE:
        return llamacpp.recipe(plan, port=port, bind=bind, image=image,
                               in_container=in_container, arch=arch)
    if plan.engine == vllm.ENGINE:
        return vllm.recipe(plan, port=port, bind=bind, image=image, in_container=in_container,
                           arch=arch)
    raise PlanError(f"unknown engine {plan.engine!r}")
