"""Short-term reconstruction metrics: the :math:`n`-step prediction error and the valid
prediction time (see :mod:`labkit.dynamics.reconstruction._metrics` for the long-term ones
and the conventions)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from labkit.core.config import check_int, check_positive
from labkit.core.shapes import PerTrajectory, SeriesLike
from labkit.dynamics.reconstruction._checks import (
    as_array,
    as_scale,
    check_finite,
    result,
)
from labkit.errors import ConfigError, DataError, DivergenceError

__all__ = ["VPT_THRESHOLD", "prediction_error", "valid_prediction_time"]

#: Normalised-RMSE threshold of :func:`valid_prediction_time` (Vlachas et al. 2020).
VPT_THRESHOLD = 0.5

# --------------------------------------------------------------------------- short term

def prediction_error(
    model: Any,
    x_true: SeriesLike,
    *,
    n_steps: int = 20,
) -> float | PerTrajectory:
    r"""The ``n_steps``-ahead prediction error: from every true state :math:`x_t`
    (:math:`t < T - n`) run the model :math:`n` steps and take the mean squared error
    against :math:`x_{t+n}`, over all starts and dimensions (the official
    ``prediction_error``, there with :math:`n = 20`).

    Args:
        model: either a callable ``step(x) -> x_next`` acting on observed states
            ``[N, dim]`` (applied ``n_steps`` times), or an object with a method
            ``forecast(x0, n_steps) -> x_n`` mapping observed starts ``[N, dim]`` to the
            predicted observations ``n_steps`` later ``[N, dim]`` (for a model with a
            latent state that ``x0`` only initialises). The first applies when there is
            no ``forecast`` attribute. Called under ``torch.no_grad()``.
        x_true: true data ``[time, dim]`` or ``[batch, time, dim]`` (all members' starts
            go to the model at once); a numpy array becomes a tensor of its own dtype, so
            pass a tensor of the model's dtype and device.
        n_steps: the horizon (>= 1; ``time > n_steps``).

    Returns:
        The MSE, a float (or a float64 tensor ``[batch]``).

    Raises:
        DataError: non-finite or too short ``x_true``, or a model output of the wrong shape.
        DivergenceError: the model's predictions are non-finite.
    """
    check_int("n_steps", n_steps)
    x = x_true if isinstance(x_true, torch.Tensor) else torch.as_tensor(np.asarray(x_true))
    arr, batched = as_array("x_true", x)
    check_finite("x_true", arr, generated=False)
    x = x if batched else x[None]
    n_b, n_t, dim = x.shape
    if n_t <= n_steps:
        raise DataError(f"x_true has {n_t} time steps; n_steps = {n_steps} needs more")
    starts = x[:, : n_t - n_steps].reshape(-1, dim)
    with torch.no_grad():
        forecast = getattr(model, "forecast", None)
        if forecast is not None:
            z = forecast(starts, n_steps)
        else:
            if not callable(model):
                raise ConfigError(f"model must be callable step(x) or have forecast(x0, n), "
                                  f"got {type(model).__name__}")
            z = starts
            for _ in range(n_steps):
                z = model(z)
    if not isinstance(z, torch.Tensor) or z.shape != starts.shape:
        raise DataError(f"the model must return predictions of shape {tuple(starts.shape)}, "
                        f"got {getattr(z, 'shape', type(z).__name__)}")
    if not torch.isfinite(z).all():
        raise DivergenceError(f"the model diverged: {int((~torch.isfinite(z)).sum())} "
                              f"non-finite values in its {n_steps}-step predictions")
    target = x[:, n_steps:].reshape(-1, dim).to(z)
    sq = ((z - target) ** 2).reshape(n_b, -1).mean(1).double().cpu()
    return sq if batched else float(sq[0])


def valid_prediction_time(
    x_true: SeriesLike,
    x_pred: SeriesLike,
    *,
    dt: float,
    lyapunov_exponent: float,
    threshold: float = VPT_THRESHOLD,
    scale: Float[np.ndarray | Tensor, "#state"] | float | None = None,
) -> float | PerTrajectory:
    r"""Valid prediction time in Lyapunov times (Vlachas et al. 2020, Neural Networks 126,
    191-217; used by Gilpin 2023 in Lyapunov times).

    The normalised root-mean-square error at each sample,

    .. math:: \mathrm{NRMSE}(t) = \sqrt{\frac1d \sum_{i=1}^{d}
              \Big(\frac{\hat x_i(t) - x_i(t)}{\sigma_i}\Big)^2},

    with :math:`\sigma_i` the standard deviation of dimension :math:`i` of the true data;
    the forecast is valid for the leading samples with :math:`\mathrm{NRMSE} \le`
    ``threshold`` (0.5, Vlachas et al.; Pathak et al. 2018 use 0.4 with a norm-wise error),
    and

    .. math:: \mathrm{VPT} = k \,\Delta t\, \lambda_{max}

    for :math:`k` such samples before the first that exceeds the threshold: the full length
    (``time * dt * lambda``) when none does, 0 when the first already does. A non-finite
    prediction (a diverged forecast) counts as exceeding.

    Args:
        x_true, x_pred: ``[time, dim]`` or ``[batch, time, dim]`` of equal shape, sample
            ``k`` of each at the same time (start the series at the first forecast step,
            or at the shared initial condition: either way ``k`` counts valid samples).
        dt: time between samples.
        lyapunov_exponent: the true system's largest exponent (per unit time, > 0).
        threshold: the NRMSE threshold.
        scale: :math:`\sigma_i`, a number or ``[dim]``; default: the standard deviation of
            ``x_true`` over all its samples. For short forecast windows pass the
            attractor's, from a long true series.

    Returns:
        A float (or a float64 tensor ``[batch]``), in Lyapunov times.

    Raises:
        DataError: non-finite ``x_true``, shapes that differ, a zero or non-finite scale.
        ConfigError: bad ``dt``, exponent or threshold.
    """
    check_positive("dt", dt)
    check_positive("lyapunov_exponent", lyapunov_exponent)
    check_positive("threshold", threshold)
    a, batched = as_array("x_true", x_true)
    b, _ = as_array("x_pred", x_pred)
    if a.shape != b.shape:
        raise DataError(f"x_true and x_pred must have the same shape, got "
                        f"{tuple(a.shape[int(not batched):])} and "
                        f"{tuple(b.shape[int(not batched):])}")
    check_finite("x_true", a, generated=False)
    sigma = (a.reshape(-1, a.shape[2]).std(0) if scale is None
             else np.broadcast_to(as_scale(scale), (a.shape[2],)))
    if not (np.all(np.isfinite(sigma)) and np.all(sigma > 0)):
        raise DataError(f"the scale must be finite and > 0 in every dimension, got "
                        f"{np.asarray(sigma).tolist()} (a constant x_true needs scale=...)")
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.sqrt(np.mean(((b - a) / sigma) ** 2, axis=2))
    bad = ~(err <= threshold)  # NaN counts as exceeding
    first = np.where(bad.any(1), bad.argmax(1), a.shape[1])
    return result((first * dt * lyapunov_exponent).tolist(), batched)


