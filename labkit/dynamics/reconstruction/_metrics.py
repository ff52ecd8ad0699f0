r"""The metrics of dynamical-systems reconstruction (DSR), with their finite-sample floor.

A reconstruction is judged on its *free-running* trajectory ``x_gen`` against held-out
data ``x_true`` (Hess et al. 2023, "Generalized Teacher Forcing for Learning Chaotic
Dynamics", and the lab's earlier papers):

- :func:`state_space_divergence` :math:`D_{stsp}`: Kullback-Leibler divergence between
  the two occupation measures in state space (geometry, long-term statistics);
- :func:`power_spectrum_error` :math:`D_H`: Hellinger distance between the smoothed
  power spectra (temporal structure);
- :func:`prediction_error`: the :math:`n`-step-ahead mean squared error (short term);
- :func:`valid_prediction_time`: how long a forecast stays close, in Lyapunov times;
- :func:`max_lyapunov_exponent_map`: the learned map's largest Lyapunov exponent, from
  its Jacobians, per unit time so that it compares with the flow's.

The definitions and default settings are those of the official GTF-shPLRNN code
(DurstewitzLab, Julia, ``src/measures``; ``settings/defaults.json``: 30 bins, GMM scaling
1.0, smoothing 20, 20-step prediction error); where labkit departs from it the docstring
says so and why. Two independent stretches of the same true system are never at zero:
:func:`metric_floor` measures that finite-sample floor, and :func:`dsr_metrics` reports it
beside the model's numbers.

Series are ``[time, dim]`` (numpy arrays or torch tensors on any device); most functions
also take batches ``[batch, time, dim]`` and then return a float64 tensor ``[batch]``
instead of a float. Metrics are computed in float64 with numpy/scipy on the CPU.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch

from labkit.core.config import check_in, check_int, check_positive
from labkit.core.rng import numpy_rng
from labkit.dynamics.reconstruction._checks import (
    CONSTANT_RTOL,
    Series,
    as_array,
    check_finite,
    pair,
    result,
    true_spread,
)
from labkit.dynamics.reconstruction._prediction import (
    prediction_error,
)
from labkit.errors import ConfigError, DataError

__all__ = ["BINNED_MAX_DIM", "DSRMetrics", "LAPLACE_ALPHA", "MetricFloor", "dsr_metrics",
           "metric_floor", "power_spectrum_error", "state_space_divergence"]

#: ``method="auto"`` bins state space up to this dimension and uses the GMM estimate
#: above it: the official ``decide_on_measure`` (``N < 6 ? bins : GMM``). At 30 bins a
#: 6-dimensional grid has 7e8 cells, far more than any series has samples.
BINNED_MAX_DIM = 5
#: Laplace (additive) smoothing of histogram counts, in counts per cell (official value).
LAPLACE_ALPHA = 1.0e-5
#: Margin of the binning grid beyond the true data's range, in standard deviations.
GRID_MARGIN = 0.1
#: Kernel radius of the spectral smoothing, in standard deviations (scipy's ``truncate``).
SMOOTHING_TRUNCATE = 4.0


# --------------------------------------------------------------------------- D_stsp

def state_space_divergence(
    x_true: Series,
    x_gen: Series,
    *,
    bins: int = 30,
    method: str = "auto",
    scaling: float = 1.0,
    mc_samples: int = 1000,
    max_samples: int = 10_000,
    seed: int | None = 0,
) -> float | torch.Tensor:
    r"""State-space divergence :math:`D_{stsp} = \mathrm{KL}(p_{true} \,\|\, p_{gen})`.

    **Binned** (``method="binned"``): the occupation histograms of both series on one grid
    of ``bins`` cells per dimension spanning the *true* data, per dimension from
    :math:`\min x - 0.1\,s` to :math:`\max x + 0.1\,s` (``s`` the standard deviation,
    ``ddof=1``; :data:`GRID_MARGIN`), cells closed on the left. Generated points outside
    the grid are dropped and each histogram is normalised by its own in-grid count, with
    Laplace smoothing of :data:`LAPLACE_ALPHA` counts per cell:

    .. math:: p_k = \frac{n_k + \alpha}{n + \alpha K},\quad
              q_k = \frac{m_k + \alpha}{m + \alpha K},\quad
              D_{stsp} = \sum_{k=1}^{K} p_k \log\frac{p_k}{q_k},\quad K = \text{bins}^d.

    All as in the official code; the sum runs over occupied cells plus one closed-form term
    for the (identical) empty ones, so memory grows with the samples, not with ``K``.
    Because the grid follows the true data, the value does not change when both series are
    shifted or rescaled per dimension. Identical histograms give exactly 0. When no
    generated point lies on the grid the result is ``inf`` (the official code returns
    NaN there).

    **GMM** (``method="gmm"``, for high dimension): each series becomes a mixture of
    isotropic Gaussians of variance ``scaling`` centred on its first ``max_samples``
    points, and the KL divergence is the Monte Carlo average of
    :math:`\log p(s) - \log q(s)` over ``mc_samples`` draws ``s`` from the true mixture
    (Hershey & Olsen 2007), as in the official code. The official datasets are z-scored,
    so here both series are standardised by the true data's mean and standard deviation
    first (``scaling`` is then in units of the true variance). Unlike the official code,
    densities are evaluated in log space (log-sum-exp), so draws far from every generated
    point count with their true, large, log-ratio instead of being dropped as underflow.
    Deterministic for a given ``seed``.

    ``method="auto"`` bins for ``dim <= BINNED_MAX_DIM`` (5, the official choice) and
    uses the GMM above.

    Args:
        x_true: true data ``[time, dim]`` or ``[batch, time, dim]``.
        x_gen: the model's free-running trajectory, same ``dim`` (any length).
        bins: cells per dimension (binned).
        method: ``"auto"``, ``"binned"`` or ``"gmm"``.
        scaling: variance of the mixture components, in standardised units (GMM).
        mc_samples: Monte Carlo draws (GMM).
        max_samples: points of each series used as mixture centres (GMM).
        seed: seed of the Monte Carlo draws (GMM; a NumPy generator from
            :func:`labkit.core.numpy_rng`, None for fresh entropy).

    Returns:
        A float, or a float64 tensor ``[batch]`` for batched input (a single series on
        either side is compared with every member of the other).

    Raises:
        DataError: non-finite values (in ``x_gen``: "the model diverged"), mismatched
            dimensions or batches, fewer than ``bins`` (binned) or 2 samples, or a
            constant dimension of ``x_true``.
        ConfigError: bad settings.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(5000, 2))
        >>> state_space_divergence(x, x)
        0.0
    """
    check_in("method", method, ("auto", "binned", "gmm"))
    check_int("bins", bins)
    check_positive("scaling", scaling)
    check_int("mc_samples", mc_samples)
    check_int("max_samples", max_samples)
    if seed is not None:
        check_int("seed", seed, least=0)
    a, b, batched = pair(x_true, x_gen)
    dim = a.shape[2]
    if method == "auto":
        method = "binned" if dim <= BINNED_MAX_DIM else "gmm"
    if method == "binned":
        if float(bins) ** dim >= 2.0**62:
            raise ConfigError(f"bins ** dim = {bins}**{dim} cells is too many to index; use "
                              "method='gmm' or fewer bins")
        for name, x in (("x_true", a), ("x_gen", b)):
            if x.shape[1] < bins:
                raise DataError(f"{name} has {x.shape[1]} samples, fewer than bins = {bins}: "
                                "a histogram needs at least one sample per bin on average")
        values = [_kl_binned(ta, tb, bins) for ta, tb in zip(a, b, strict=True)]
    else:
        rng = numpy_rng(seed)
        values = [_kl_gmm(ta, tb, scaling, mc_samples, max_samples, rng)
                  for ta, tb in zip(a, b, strict=True)]
    return result(values, batched)


def _cells(x: np.ndarray, lo: np.ndarray, width: np.ndarray, bins: int) -> np.ndarray:
    """Flat cell index of each point of ``x`` on the grid; points off the grid dropped."""
    idx = np.floor((x - lo) / width * bins)
    inside = ((idx >= 0) & (idx < bins)).all(1)
    return np.asarray(np.ravel_multi_index(idx[inside].astype(np.int64).T,
                                           (bins,) * x.shape[1]))


def _kl_binned(x: np.ndarray, y: np.ndarray, bins: int) -> float:
    _, std = true_spread(x)
    lo = x.min(0) - GRID_MARGIN * std
    width = x.max(0) + GRID_MARGIN * std - lo
    keys_x, counts_x = np.unique(_cells(x, lo, width, bins), return_counts=True)
    keys_y, counts_y = np.unique(_cells(y, lo, width, bins), return_counts=True)
    n, m = counts_x.sum(), counts_y.sum()
    if m == 0:
        return math.inf
    cells = np.union1d(keys_x, keys_y)
    nx = np.zeros(cells.size)
    ny = np.zeros(cells.size)
    nx[np.searchsorted(cells, keys_x)] = counts_x
    ny[np.searchsorted(cells, keys_y)] = counts_y
    alpha, n_cells = LAPLACE_ALPHA, float(bins) ** x.shape[1]
    p = (nx + alpha) / (n + alpha * n_cells)
    q = (ny + alpha) / (m + alpha * n_cells)
    p0, q0 = alpha / (n + alpha * n_cells), alpha / (m + alpha * n_cells)
    empty = (n_cells - cells.size) * p0 * math.log(p0 / q0)
    return float(np.sum(p * np.log(p / q)) + empty)


def _log_mixture(s: np.ndarray, centres: np.ndarray, var: float) -> np.ndarray:
    """Log density (up to the shared Gaussian normaliser) of the equal-weight isotropic
    mixture on ``centres`` at the points ``s``; in chunks to bound memory."""
    from scipy.special import logsumexp

    c2 = np.sum(centres**2, 1)
    out = np.empty(len(s))
    for i in range(0, len(s), 256):
        blk = s[i:i + 256]
        d2 = np.maximum(np.sum(blk**2, 1)[:, None] + c2[None] - 2 * blk @ centres.T, 0.0)
        out[i:i + 256] = logsumexp(-0.5 * d2 / var, axis=1)
    return out - math.log(len(centres))


def _kl_gmm(x: np.ndarray, y: np.ndarray, var: float, n_mc: int, max_t: int,
            rng: np.random.Generator) -> float:
    mean, std = true_spread(x)
    xs = (x[:max_t] - mean) / std
    ys = (y[:max_t] - mean) / std
    draws = xs[rng.integers(0, len(xs), n_mc)] + math.sqrt(var) * rng.standard_normal(
        (n_mc, xs.shape[1]))
    return float(np.mean(_log_mixture(draws, xs, var) - _log_mixture(draws, ys, var)))


# --------------------------------------------------------------------------- D_H

def _spectra(x: np.ndarray, smoothing: float) -> tuple[np.ndarray, np.ndarray]:
    """Normalised smoothed power spectra ``[batch, n_freq, dim]`` of z-scored series, and
    a mask ``[batch, dim]`` of constant dimensions (whose spectrum is undefined)."""
    from scipy.ndimage import gaussian_filter1d

    mean, std = x.mean(1, keepdims=True), x.std(1, ddof=1, keepdims=True)
    const = (std <= CONSTANT_RTOL * (1 + np.abs(mean)))[:, 0, :]
    z = (x - mean) / np.where(std > 0, std, 1.0)
    ps = np.abs(np.fft.rfft(z, axis=1)) ** 2
    if smoothing > 0:
        ps = np.maximum(gaussian_filter1d(ps, smoothing, axis=1, mode="reflect",
                                          truncate=SMOOTHING_TRUNCATE), 0.0)
    total = ps.sum(1, keepdims=True)
    return ps / np.where(total > 0, total, 1.0), const


def power_spectrum_error(
    x_true: Series,
    x_gen: Series,
    *,
    smoothing: float = 20.0,
) -> float | torch.Tensor:
    r"""Power-spectrum error :math:`D_H`: the Hellinger distance between the smoothed,
    normalised power spectra of the two series, averaged over dimensions.

    Per dimension (as the official ``power_spectrum_error``): z-score the series (mean 0,
    standard deviation 1 with ``ddof=1``), take :math:`|\mathrm{rfft}|^2` over the whole
    series (no window, no frequency cut-off: every bin from 0 to Nyquist), smooth it with a
    Gaussian of standard deviation ``smoothing`` *frequency bins* (scipy's
    ``gaussian_filter1d``: radius ``4 * smoothing``, ``mode="reflect"``, which the official
    Julia filter was written to match), clip rounding negatives, normalise to unit sum,
    and

    .. math:: D_H(p, q) = \sqrt{\tfrac12 \textstyle\sum_k (\sqrt{p_k} - \sqrt{q_k})^2}
              \in [0, 1].

    ``smoothing`` counts bins, so the same value smooths a longer series over a narrower
    band of frequencies; compare values only at equal lengths. (The older Python code of
    the lab cut spectra at a maximum frequency and averaged over trajectories; the
    GTF-shPLRNN code used here does neither.) A *constant* dimension of ``x_gen`` (a
    model stuck at a fixed point) has no spectrum and scores the maximum, 1.

    Args:
        x_true, x_gen: ``[time, dim]`` or ``[batch, time, dim]``, the *same* length,
            at least ``4 * round(4 * smoothing) + 1`` samples so that the spectrum is
            wider than the smoothing kernel.
        smoothing: the kernel's standard deviation in frequency bins (>= 0; 0 = none).

    Returns:
        A float in [0, 1], or a float64 tensor ``[batch]`` for batched input.

    Raises:
        DataError: non-finite values (in ``x_gen``: "the model diverged"), different
            lengths or dimensions, too short a series, a constant dimension of ``x_true``.
    """
    check_positive("smoothing", smoothing, allow_zero=True)
    a, b, batched = pair(x_true, x_gen)
    if a.shape[1] != b.shape[1]:
        raise DataError(f"power_spectrum_error needs series of equal length (their spectra "
                        f"share one frequency grid), got {a.shape[1]} and {b.shape[1]} time "
                        "steps; cut the longer one")
    min_len = max(4 * int(SMOOTHING_TRUNCATE * smoothing + 0.5) + 1, 4)
    if a.shape[1] < min_len:
        raise DataError(f"series of {a.shape[1]} time steps are too short for smoothing = "
                        f"{smoothing}: at least {min_len} are needed")
    p, const_true = _spectra(a, smoothing)
    if const_true.any():
        bad = np.argwhere(const_true)[0]
        raise DataError(f"x_true is constant in dimension {int(bad[1])}"
                        + (f" of batch member {int(bad[0])}" if batched else "")
                        + ": true data must vary in every dimension")
    q, const_gen = _spectra(b, smoothing)
    hd = np.sqrt(np.maximum(0.5 * np.sum((np.sqrt(p) - np.sqrt(q)) ** 2, axis=1), 0.0))
    hd = np.where(const_gen, 1.0, np.minimum(hd, 1.0))
    return result(hd.mean(1).tolist(), batched)


# --------------------------------------------------------------------------- Lyapunov

@dataclasses.dataclass(frozen=True)
class MetricFloor:
    """The metrics between two stretches of the *same* true system: the smallest values a
    perfect model could reach with series of this length (the finite-sample floor).

    Attributes:
        d_stsp: :func:`state_space_divergence` between the two stretches.
        d_h: :func:`power_spectrum_error` between them.
        n_samples: the length of the second stretch (the role ``x_gen`` plays).
    """

    d_stsp: float
    d_h: float
    n_samples: int

    def as_dict(self) -> dict[str, Any]:
        """The fields as a flat dictionary."""
        return dataclasses.asdict(self)

    def summary(self) -> str:
        """One line: the floor of each metric and the length it holds for."""
        return (f"floor over {self.n_samples} samples: D_stsp {self.d_stsp:.3g}, "
                f"D_H {self.d_h:.3g}")


def metric_floor(
    x_true_a: Series,
    x_true_b: Series,
    *,
    bins: int = 30,
    smoothing: float = 20.0,
    method: str = "auto",
    **gmm: Any,
) -> MetricFloor:
    """:math:`D_{stsp}` and :math:`D_H` between two independent stretches ``[time, dim]``
    of the same true system (a later segment of one long run, or another initial
    condition on the attractor), with the settings used for the model. ``x_true_b``
    stands where the model's trajectory will, so give it that trajectory's length.
    ``gmm`` passes ``scaling``, ``mc_samples``, ``max_samples``, ``seed`` on.
    """
    a, ba = as_array("x_true_a", x_true_a)
    b, bb = as_array("x_true_b", x_true_b)
    if ba or bb:
        raise DataError("metric_floor takes single series [time, dim], got batches "
                        f"{tuple(a.shape)} and {tuple(b.shape)}")
    check_finite("x_true_b", b, generated=False)
    d_stsp = state_space_divergence(a[0], b[0], bins=bins, method=method, **gmm)
    d_h = power_spectrum_error(a[0], b[0], smoothing=smoothing)
    return MetricFloor(d_stsp=float(d_stsp), d_h=float(d_h), n_samples=b.shape[1])


@dataclasses.dataclass(frozen=True)
class DSRMetrics:
    """A reconstruction's metrics, beside the data's own floor.

    Attributes:
        d_stsp: state-space divergence of the model (:func:`state_space_divergence`).
        d_h: power-spectrum Hellinger distance (:func:`power_spectrum_error`).
        floor_d_stsp, floor_d_h: the same between ``x_true`` and a second true stretch
            (:func:`metric_floor`); ``None`` when no reference was given.
        prediction_error: the ``n_steps``-ahead MSE (:func:`prediction_error`); ``None``
            when no model was given.
        lyapunov_model, lyapunov_true: largest Lyapunov exponents (per unit time), as
            given; ``None`` when not.
        method: the :math:`D_{stsp}` estimate used (``"binned"`` or ``"gmm"``).
        bins, smoothing, n_steps: the settings.
    """

    d_stsp: float
    d_h: float
    floor_d_stsp: float | None
    floor_d_h: float | None
    prediction_error: float | None
    lyapunov_model: float | None
    lyapunov_true: float | None
    method: str
    bins: int
    smoothing: float
    n_steps: int

    @property
    def lyapunov_relative_error(self) -> float | None:
        """``|lambda_model - lambda_true| / |lambda_true|``, when both are known."""
        if self.lyapunov_model is None or self.lyapunov_true is None:
            return None
        return abs(self.lyapunov_model - self.lyapunov_true) / abs(self.lyapunov_true)

    def as_dict(self) -> dict[str, Any]:
        """The fields (and the Lyapunov relative error) as a flat dictionary."""
        return dataclasses.asdict(self) | {"lyapunov_relative_error":
                                           self.lyapunov_relative_error}

    def summary(self) -> str:
        """One line: each metric with its floor in parentheses."""
        def floor(v: float | None) -> str:
            return "" if v is None else f" (floor {v:.3g})"

        parts = [f"D_stsp {self.d_stsp:.3g}{floor(self.floor_d_stsp)}",
                 f"D_H {self.d_h:.3g}{floor(self.floor_d_h)}"]
        if self.prediction_error is not None:
            parts.append(f"PE({self.n_steps}) {self.prediction_error:.3g}")
        if self.lyapunov_model is not None:
            true = "" if self.lyapunov_true is None else f" (true {self.lyapunov_true:.4g})"
            parts.append(f"lambda_max {self.lyapunov_model:.4g}{true}")
        return ", ".join(parts)


def dsr_metrics(
    x_true: Series,
    x_gen: Series,
    *,
    reference: Series | None = None,
    model: Any = None,
    n_steps: int = 20,
    lyapunov_model: float | None = None,
    lyapunov_true: float | None = None,
    bins: int = 30,
    smoothing: float = 20.0,
    method: str = "auto",
    **gmm: Any,
) -> DSRMetrics:
    """All of a reconstruction's metrics on single series ``[time, dim]``.

    Args:
        x_true: held-out true data.
        x_gen: the model's free-running trajectory, the length of ``x_true`` (D_H
            compares spectra of equal length).
        reference: a second, independent true stretch of the same length: the floor
            (:func:`metric_floor` of ``x_true`` and ``reference``) is reported beside.
        model: a step or forecaster (see :func:`prediction_error`) for the ``n_steps``
            prediction error on ``x_true``.
        lyapunov_model, lyapunov_true: largest exponents to record (see
            :func:`max_lyapunov_exponent_map`).
        bins, smoothing, method, gmm: the metrics' settings (official defaults).

    Raises:
        DataError: as the metrics do; in particular a non-finite ``x_gen`` ("the model
            diverged").
    """
    for name, x in (("x_true", x_true), ("x_gen", x_gen)):
        if as_array(name, x)[1]:
            raise DataError(f"dsr_metrics takes single series [time, dim]; {name} is a batch "
                            "(call the metric functions for batches)")
    dim = as_array("x_true", x_true)[0].shape[2]
    resolved = method if method != "auto" else ("binned" if dim <= BINNED_MAX_DIM else "gmm")
    d_stsp = state_space_divergence(x_true, x_gen, bins=bins, method=method, **gmm)
    d_h = power_spectrum_error(x_true, x_gen, smoothing=smoothing)
    floor = (None if reference is None else
             metric_floor(x_true, reference, bins=bins, smoothing=smoothing, method=method,
                          **gmm))
    pe = None if model is None else float(prediction_error(model, x_true, n_steps=n_steps))
    return DSRMetrics(
        d_stsp=float(d_stsp), d_h=float(d_h),
        floor_d_stsp=None if floor is None else floor.d_stsp,
        floor_d_h=None if floor is None else floor.d_h,
        prediction_error=pe,
        lyapunov_model=None if lyapunov_model is None else float(lyapunov_model),
        lyapunov_true=None if lyapunov_true is None else float(lyapunov_true),
        method=resolved, bins=bins, smoothing=float(smoothing), n_steps=n_steps)
