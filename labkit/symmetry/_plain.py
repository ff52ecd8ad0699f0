"""Plain, JSON-safe values for the ``as_dict()`` of symmetry results."""

from __future__ import annotations

import math
from typing import SupportsFloat

__all__ = ["plain_number"]


def plain_number(value: SupportsFloat | None) -> float | None:
    """``value`` as a Python float; None for None and for NaN or an infinity (JSON has
    neither)."""
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None
