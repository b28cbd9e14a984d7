"""JSON the CLI prints: always valid JSON — a value that is not a finite number (an
unbounded context, a missing reading) is null, never `Infinity` or `NaN`, which JSON
has no words for and which `jq` and JavaScript refuse."""

from __future__ import annotations

import json
import math
from typing import Any


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def json_text(value: Any, *, indent: int | None = 2) -> str:
    """`value` as JSON text (compact on one line when `indent` is None)."""
    return json.dumps(_finite(value), indent=indent, ensure_ascii=False, allow_nan=False,
                      separators=(",", ":") if indent is None else None)
