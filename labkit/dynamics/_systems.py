"""Chaotic flows as batched torch vector fields, with cited parameters from data files."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import torch

from labkit.errors import ConfigError

__all__ = ["lorenz", "system_info"]


@cache
def _table() -> dict[str, Any]:
    text = resources.files("labkit.dynamics").joinpath("data/systems.json").read_text()
    return json.loads(text)


def system_info(name: str) -> dict[str, Any]:
    """Parameters, default initial condition, time step, reference invariants and citation."""
    table = _table()
    if name not in table:
        raise ConfigError(f"unknown system {name!r}; known systems: {sorted(table)}")
    return json.loads(json.dumps(table[name]))  # a copy the caller may change


def lorenz(
    t: torch.Tensor,
    y: torch.Tensor,
    *,
    sigma: float | torch.Tensor = 10.0,
    rho: float | torch.Tensor = 28.0,
    beta: float | torch.Tensor = 8.0 / 3.0,
) -> torch.Tensor:
    """Lorenz-63 vector field on ``y[..., 0:3]``.

    .. math:: \\dot x = \\sigma (y - x),\\quad \\dot y = x(\\rho - z) - y,\\quad
              \\dot z = x y - \\beta z

    Parameters may be tensors that broadcast against ``y[..., 0]`` (a parameter batch).
    """
    x, yy, z = y.unbind(-1)
    return torch.stack((sigma * (yy - x), x * (rho - z) - yy, x * yy - beta * z), dim=-1)
