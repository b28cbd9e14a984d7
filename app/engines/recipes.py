"""One entry point for every engine's recipe, so callers never branch on the engine."""

from __future__ import annotations

import logging
from pathlib import Path

from app.engines import llamacpp, vllm
from app.engines.plan import LaunchPlan, PlanError
from app.engines.spec import LaunchSpec

log = logging.getLogger(__name__)

DEFAULT_IMAGES = {llamacpp.ENGINE: llamacpp.DEFAULT_IMAGE, vllm.ENGINE: vllm.DEFAULT_IMAGE}


def image_setting(engine: str) -> str:
    """The setting that holds `engine`'s container image (llamacpp_image, vllm_image)."""
    return f"{engine}_image"


def model_arch(plan: LaunchPlan) -> str | None:
    """The GGUF architecture of the plan's model when a recipe needs it (an expert-count
    override) and the file is here to read; None otherwise (the recipe says why)."""
    if plan.experts is None or not plan.model.endswith(".gguf"):
        return None
    try:
        from app.library.gguf import read_gguf_header

        return read_gguf_header(Path(plan.model)).architecture
    except Exception as exc:  # the recipe says why an arch is needed
        log.info("could not read the architecture of %s: %s", plan.model, exc)
        return None


def launch_spec(plan: LaunchPlan, *, port: int, bind: str = "127.0.0.1", image: str = "",
                in_container: bool = True, arch: str | None = None,
                local: bool = True) -> LaunchSpec:
    """The engine's launch for `plan`; `local`: its files are on this machine (their
    links are followed and exactly they are mounted).

    Raises:
        PlanError: unknown engine, or values the engine cannot take together.
    """
    if plan.engine == llamacpp.ENGINE:
        return llamacpp.recipe(plan, port=port, bind=bind, image=image,
                               in_container=in_container, arch=arch, local=local)
    if plan.engine == vllm.ENGINE:
        return vllm.recipe(plan, port=port, bind=bind, image=image, in_container=in_container,
                           arch=arch, local=local)
    raise PlanError(f"unknown engine {plan.engine!r}")
