"""What every reconstruction baseline shares: the data it accepts, the start of a free run
and the checks that a generated series stayed finite and near the data."""

from __future__ import annotations

from typing import Any

import torch

from labkit.core.config import check_int
from labkit.dynamics.reconstruction._data import ReconstructionData
from labkit.errors import DataError, DivergenceError

__all__ = ["ESCAPE_FACTOR", "as_data", "check_generated", "check_n", "escape_bound", "start"]

#: A generated series counts as diverged once a value exceeds this many times the
#: largest magnitude of the training series (in the data's units): far outside any
#: attractor the data show, and long before float overflow.
ESCAPE_FACTOR = 100.0



def as_data(data: ReconstructionData | Any) -> ReconstructionData:
    return data if isinstance(data, ReconstructionData) else ReconstructionData.from_array(data)


def start(data: ReconstructionData, x0: Any) -> torch.Tensor:
    """``x0`` as float64 ``[N]`` (default: first test sample, else last training one)."""
    if x0 is None:
        return (data.test[0] if data.test is not None else data.train[-1]).clone()
    x = torch.as_tensor(x0, dtype=torch.float64).detach().cpu()
    if x.shape != (data.n_obs,):
        raise DataError(f"x0 must have shape ({data.n_obs},), got {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise DataError(f"x0 must be finite, got {x.tolist()}")
    return x


def escape_bound(data: ReconstructionData) -> float:
    return ESCAPE_FACTOR * float(data.train.abs().max().clamp_min(1.0))


def check_generated(y: torch.Tensor, bound: float, name: str) -> torch.Tensor:
    """Raise :class:`DivergenceError` at the first step that is non-finite or beyond
    ``bound``; else ``y``."""
    bad = ~torch.isfinite(y).all(-1) | (y.abs() > bound).any(-1)
    if bool(bad.any()):
        k = int(torch.nonzero(bad)[0, 0])
        raise DivergenceError(f"{name} diverged at step {k} of {y.shape[0] - 1}: "
                              f"{y[k].tolist()} (non-finite or beyond {bound:.3g})")
    return y


def check_n(n_steps: int) -> None:
    check_int("n_steps", n_steps)


