"""The Bench's matrix as a user writes it: `--vary KEY=V1,V2`, the variants it makes, and
the clear refusals of what cannot be run."""

from __future__ import annotations

import pytest

from app.bench.matrix import MAX_VARIANTS, check_variants, expand, parse_matrix
from app.engines.plan import LaunchPlan
from app.errors import UserError

BASE = LaunchPlan(model="/models/qwen3-30b-a3b.gguf", context=8192)


def test_the_product_of_two_variations_varies_the_first_key_slowest() -> None:
    variants = expand(parse_matrix(["experts=2,4,8,16", "ctk=f16,q8_0"]))

    assert [v.label for v in variants][:3] == ["experts=2 ctk=f16", "experts=2 ctk=q8_0",
                                                "experts=4 ctk=f16"]
    assert len(variants) == 8
    plan = variants[-1].plan(BASE)
    assert (plan.experts, plan.cache_type_k, plan.cache_type_v, plan.context) == \
        (16, "q8_0", None, 8192)


def test_kv_sets_both_cache_types_and_think_is_a_request_setting() -> None:
    [on, off] = expand(parse_matrix(["think=on,off"]))
    [q8] = expand(parse_matrix(["kv=q8_0"]))

    assert (on.think, off.think) == (True, False)
    assert on.plan(BASE) == BASE  # no relaunch for thinking
    assert (q8.plan(BASE).cache_type_k, q8.plan(BASE).cache_type_v) == ("q8_0", "q8_0")


def test_aliases_and_switches_read_as_the_flags_do() -> None:
    [variant] = expand(parse_matrix(["n-cpu-moe=12", "fa=off", "np=2", "quant=/m/q4.gguf"]))
    plan = variant.plan(BASE)

    assert (plan.n_cpu_moe, plan.flash_attn, plan.parallel, plan.model) == \
        (12, False, 2, "/m/q4.gguf")
    assert variant.label == "ncmoe=12 fa=off parallel=2 quant=q4.gguf"


@pytest.mark.parametrize(("texts", "said"), [
    (["experts"], "write KEY=V1,V2"),
    (["speed=1,2"], "unknown key; use one of experts, think"),
    (["experts=two"], "'two' is not a whole number"),
    (["ctk=q9"], "'q9' is not a KV cache type"),
    (["fa=maybe"], "neither on nor off"),
    (["experts="], "give at least one value"),
    (["experts=2,2"], "given twice"),
    (["experts=2", "experts=4"], "more than once"),
])
def test_a_matrix_that_cannot_be_read_is_refused_with_the_reason(texts: list[str],
                                                                 said: str) -> None:
    with pytest.raises(UserError, match=said):
        parse_matrix(texts)


def test_a_matrix_too_large_is_refused_before_anything_starts() -> None:
    values = ",".join(str(n) for n in range(1, 17))
    with pytest.raises(UserError, match=f"at most {MAX_VARIANTS}"):
        expand(parse_matrix([f"experts={values}", f"ctx={values}"]))


def test_a_variant_whose_values_conflict_is_named_and_the_others_run() -> None:
    variants = expand(parse_matrix(["fa=on,off", "ctv=f16,q8_0"]))

    problems = check_variants(variants, BASE)

    assert list(problems) == [3]  # fa=off with a quantised V cache
    assert "needs flash attention" in problems[3]
