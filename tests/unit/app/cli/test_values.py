"""Numbers out of their range are refused before any work; JSON output is always JSON."""

from __future__ import annotations

import json
import math

import pytest

from app.cli.json_text import json_text
from app.cli.main import main


@pytest.mark.parametrize(("argv", "said"), [
    (["fit", "m.gguf", "--ctx", "-5"], "--ctx: must be a whole number of at least 1, not -5"),
    (["fit", "m.gguf", "--parallel", "0"], "--parallel: must be a whole number of at least 1"),
    (["fit", "m.gguf", "--n-cpu-moe", "-1"], "--n-cpu-moe: must be a whole number of at least 0"),
    (["fit", "m.gguf", "--gpu-memory-utilization", "5"],
     "--gpu-memory-utilization: must be in (0, 1], not 5"),
    (["fit", "m.gguf", "--gpu-memory-utilization", "0"], "must be in (0, 1], not 0"),
    (["fit", "m.gguf", "--margin", "nan"], "--margin: must be in [0, inf), not nan"),
    (["logs", "x", "--tail", "-1"], "--tail: must be a whole number of at least 0, not -1"),
    (["down", "x", "--timeout", "-3"], "--timeout: must be in [0, inf), not -3"),
    (["up", "--model", "m.gguf", "--timeout", "0"], "--timeout: must be in (0, inf), not 0"),
])
def test_a_value_out_of_range_is_refused_with_the_rule(
        argv: list[str], said: str, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse's own refusal
        code = int(str(stop.code))
    assert code == 2
    assert said in capsys.readouterr().err


def test_json_output_has_no_infinity_or_nan() -> None:
    text = json_text({"context": math.inf, "readings": [1.5, math.nan], "name": "q"})
    assert json.loads(text) == {"context": None, "readings": [1.5, None], "name": "q"}
    assert "Infinity" not in text
    assert "NaN" not in text
