"""Argument types for numbers with a range: a value outside it is refused by argparse with
the rule ("--ctx: must be a whole number of at least 1, not -5"), exit 2, before any work."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def whole(low: int) -> Callable[[str], int]:
    """A whole number of at least `low`."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(
                f"must be a whole number of at least {low}, not {value}")
        return value

    parse.__name__ = "whole number"  # argparse names the type by it in its message
    return parse


def number(low: float, high: float = math.inf, *, low_open: bool = False
           ) -> Callable[[str], float]:
    """A finite number in [low, high] (or (low, high] with `low_open`)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, not {text!r}") from None
        below = value <= low if low_open else value < low
        if not math.isfinite(value) or below or value > high:
            left = "(" if low_open else "["
            right = "]" if math.isfinite(high) else ")"
            raise argparse.ArgumentTypeError(
                f"must be in {left}{low:g}, {high:g}{right}, not {text}")
        return value

    parse.__name__ = "number"
    return parse
