"""GPU memory as users type it: MiB, GB (binary, as on the card's box) or one per GPU."""

from __future__ import annotations

import pytest

from app.errors import UserError
from app.fit.capacities import parse_gpu_memory


@pytest.mark.parametrize("text", ["96 GB", "96G", "96 GiB", "96gb", "96g", "98304",
                                  "98304 MiB", "98304MB", " 96 GB "])
def test_a_96_gb_card_is_98304_mib_however_it_is_written(text: str) -> None:
    assert parse_gpu_memory(text) == [98304]


def test_one_value_per_gpu_separated_by_commas() -> None:
    assert parse_gpu_memory("24G,24G") == [24576, 24576]
    assert parse_gpu_memory("24 GB, 16384") == [24576, 16384]
    assert parse_gpu_memory("24G; 24G") == [24576, 24576]


def test_fractions_are_exact_and_a_part_mib_is_rounded_down() -> None:
    assert parse_gpu_memory("23.5G") == [24064]
    assert parse_gpu_memory("1.0001G") == [1024]  # 1024.1024 MiB
    assert parse_gpu_memory("0.5T") == [524288]
    assert parse_gpu_memory("97887.9") == [97887]


def test_nothing_typed_is_a_cpu_only_plan() -> None:
    assert parse_gpu_memory("") == []
    assert parse_gpu_memory("  ") == []


@pytest.mark.parametrize("text", ["0", "0G", "-5", "-24G", "lots", "96 GX", "96 kB",
                                  "1e5", "0.0001M", "24G,0"])
def test_what_is_not_a_size_says_how_to_write_one(text: str) -> None:
    with pytest.raises(UserError) as raised:
        parse_gpu_memory(text)
    message = str(raised.value)
    assert message.startswith("GPU memory: '")
    assert "is not a memory size; use MiB (98304) or GB (96G)" in message
    assert raised.value.exit_code == 2


def test_the_message_names_the_field_it_came_from() -> None:
    with pytest.raises(UserError, match=r"^--gpu-memory: '0' is not a memory size; use MiB "
                                        r"\(98304\) or GB \(96G\)"):
        parse_gpu_memory("0", label="--gpu-memory")
