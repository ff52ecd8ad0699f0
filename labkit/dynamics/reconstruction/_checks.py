"""Input checks shared by the reconstruction metrics: series ``[time, dim]`` or batches
``[batch, time, dim]`` (numpy or torch, any device) become float64 numpy arrays, with
errors that name the bad series."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from labkit.errors import DataError

#: A series whose standard deviation is below this fraction of ``1 + |mean|`` is constant.
CONSTANT_RTOL = 1.0e-12

__all__ = ["CONSTANT_RTOL", "Series", "as_array", "as_scale", "check_finite", "pair", "result",
           "true_spread"]

Series = np.ndarray | torch.Tensor

# --------------------------------------------------------------------------- input checks

def as_array(name: str, x: Any) -> tuple[np.ndarray, bool]:
    """``x`` as float64 ``[batch, time, dim]`` and whether it came batched."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise DataError(f"{name} must be a numeric array [time, dim] or [batch, time, dim], "
                        f"got {type(x).__name__}") from err
    if arr.ndim not in (2, 3):
        raise DataError(f"{name} must have shape [time, dim] or [batch, time, dim], got "
                        f"{tuple(arr.shape)}")
    batched = arr.ndim == 3
    arr = arr if batched else arr[None]
    if arr.shape[1] < 2 or arr.shape[2] < 1 or arr.shape[0] < 1:
        raise DataError(f"{name} must have at least 2 time steps and 1 dimension, got shape "
                        f"{tuple(arr.shape[int(not batched):])}")
    return arr, batched


def check_finite(name: str, arr: np.ndarray, *, generated: bool) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        b, t, _ = np.argwhere(bad)[0]
        where = f"time index {t}" + (f" of batch member {b}" if arr.shape[0] > 1 else "")
        if generated:
            raise DataError(f"{name} has {int(bad.sum())} non-finite values (first at {where}):"
                            " the model diverged, and a diverged trajectory has no attractor "
                            "to compare; the metric is undefined rather than NaN")
        raise DataError(f"{name} has {int(bad.sum())} non-finite values (first at {where}); "
                        "reference data must be finite")


def pair(x_true: Series, x_gen: Series, gen_name: str = "x_gen"
          ) -> tuple[np.ndarray, np.ndarray, bool]:
    """Both series checked, on a common batch axis (a single series is broadcast)."""
    a, ba = as_array("x_true", x_true)
    b, bb = as_array(gen_name, x_gen)
    if a.shape[2] != b.shape[2]:
        raise DataError(f"x_true has {a.shape[2]} dimensions but {gen_name} has {b.shape[2]}: "
                        f"shapes {tuple(a.shape[int(not ba):])} and "
                        f"{tuple(b.shape[int(not bb):])}")
    if a.shape[0] != b.shape[0] and 1 not in (a.shape[0], b.shape[0]):
        raise DataError(f"batch sizes differ: x_true {a.shape[0]}, {gen_name} {b.shape[0]} "
                        "(one of them may be a single series, which is broadcast)")
    check_finite("x_true", a, generated=False)
    check_finite(gen_name, b, generated=True)
    n = max(a.shape[0], b.shape[0])
    return (np.broadcast_to(a, (n, *a.shape[1:])), np.broadcast_to(b, (n, *b.shape[1:])),
            ba or bb)


def result(values: list[float], batched: bool) -> float | torch.Tensor:
    return torch.tensor(values, dtype=torch.float64) if batched else float(values[0])


def true_spread(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and standard deviation (``ddof=1``) of true data ``[time, dim]``;
    a constant dimension is a :class:`DataError` (nothing to bin or standardise by)."""
    mean, std = x.mean(0), x.std(0, ddof=1)
    const = std <= CONSTANT_RTOL * (1 + np.abs(mean))
    if const.any():
        raise DataError(f"x_true is constant in dimension(s) {np.flatnonzero(const).tolist()} "
                        f"(value {mean[const].tolist()}): true data must vary in every "
                        "dimension")
    return mean, std



def as_scale(scale: Series | float) -> np.ndarray:
    if isinstance(scale, torch.Tensor):
        scale = scale.detach().cpu().numpy()
    return np.asarray(scale, dtype=np.float64)


