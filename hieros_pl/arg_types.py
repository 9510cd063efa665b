"""argparse types shared by the command-line tools: checked at parse time, before anything is
loaded; argparse's error names the option (exit 2)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def at_least(minimum: float, kind: type[int] | type[float] = int) -> Callable[[str], Any]:
    """An argparse type: a ``kind`` >= ``minimum``. Checked at parse time, before the run is
    loaded; argparse's error names the option (exit 2)."""

    def parse(text: str) -> Any:
        value = kind(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum:g}, got {value:g}")
        return value

    parse.__name__ = kind.__name__  # argparse's "invalid int value: 'x'"
    return parse


def fraction(text: str) -> float:
    """An argparse type: a float in the open interval (0, 1)."""
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1), got {value:g}")
    return value


count = at_least(1)
"""An argparse type: an integer >= 1."""
