"""Time series for dynamical-systems reconstruction: from the catalogue or from an array.

:func:`reconstruction_data` integrates a catalogue flow with :func:`labkit.core.rk4`,
drops a transient, splits a training series and a test series (its continuation), adds
observation noise to the training series if asked, and standardises both with the
training series' mean and standard deviation. :func:`from_array` wraps a user's series
(NumPy, torch or an xarray ``DataArray``) after checking it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch

from labkit.core.rng import make_generator
from labkit.errors import ConfigError, DataError

__all__ = ["MIN_SERIES_LENGTH", "ReconstructionData", "from_array", "reconstruction_data"]

#: The shortest series accepted (samples); training needs more than its sequence length.
MIN_SERIES_LENGTH = 16

#: Default sampling: this many samples per dominant period of the flow (dysts' ``period``;
#: the GTF paper's Lorenz-63 data, period ~1.5, are sampled at dt = 0.01, i.e. ~150).
SAMPLES_PER_PERIOD = 150

#: RK4 sub-steps are at most this many times dysts' integration step of the system
#: (dysts' steps resolve the fastest time scale with a wide margin; RK4's error at 30x
#: that step is still ~1e-7 per unit time on Lorenz-63).
MAX_STEP_FACTOR = 30.0


@dataclasses.dataclass(frozen=True)
class ReconstructionData:
    """A training series and a test series for reconstruction.

    Attributes:
        train: ``[T, N]`` float64, standardised when ``standardised``.
        test: ``[T_test, N]`` float64 (same scaling), or ``None`` when none was given.
        dt: the sampling interval (time units per sample).
        system: the catalogue name, or a label for user data.
        mean, scale: ``[N]`` the scaling used: ``train = (raw - mean) / scale``
            (zeros and ones when not standardised).
        noise: the observation-noise level added to ``train`` (fraction of each
            dimension's standard deviation).
        lyapunov: the true largest Lyapunov exponent (per time unit, from the
            catalogue's reference data), or ``None`` when unknown.
    """

    train: torch.Tensor
    test: torch.Tensor | None
    dt: float
    system: str
    mean: torch.Tensor
    scale: torch.Tensor
    noise: float = 0.0
    lyapunov: float | None = None

    @property
    def n_obs(self) -> int:
        """The observed dimension ``N``."""
        return int(self.train.shape[-1])

    @property
    def lyapunov_per_step(self) -> float | None:
        """The largest Lyapunov exponent per sample (``lyapunov * dt``), when known."""
        return None if self.lyapunov is None else self.lyapunov * self.dt

    def unscale(self, x: torch.Tensor) -> torch.Tensor:
        """Back to the raw units: ``x * scale + mean``."""
        return x * self.scale.to(x) + self.mean.to(x)


def _as_tensor(x: Any, name: str) -> tuple[torch.Tensor, float | None]:
    """A float64 CPU tensor from NumPy / torch / xarray; also the dt of a time coordinate."""
    dt = None
    if hasattr(x, "dims") and hasattr(x, "values") and hasattr(x, "coords"):  # DataArray
        if x.ndim == 2 and "time" in x.dims:
            x = x.transpose("time", ...)
            t = np.asarray(x.coords["time"].values, dtype=float) if "time" in x.coords else None
            if t is not None and t.size > 1:
                dt = float(np.median(np.diff(t)))
        x = x.values
    if isinstance(x, torch.Tensor):
        out = x.detach().to("cpu", torch.float64)
    else:
        try:
            out = torch.as_tensor(np.asarray(x, dtype=np.float64))
        except (TypeError, ValueError) as exc:
            raise DataError(f"{name} must be an array [time, dim] of numbers, got "
                            f"{type(x).__name__}") from exc
    return out, dt


def _check_series(x: torch.Tensor, name: str) -> torch.Tensor:
    if x.ndim != 2:
        raise DataError(f"{name} must have shape [time, dim] (2 axes), got shape "
                        f"{tuple(x.shape)} ({x.ndim} axes)")
    if x.shape[0] < MIN_SERIES_LENGTH:
        raise DataError(f"{name} is too short: {x.shape[0]} samples, expected at least "
                        f"{MIN_SERIES_LENGTH} (shape [time, dim], got {tuple(x.shape)})")
    if x.shape[1] < 1:
        raise DataError(f"{name} has no dimensions: shape {tuple(x.shape)}, expected [time, dim >= 1]")
    bad = ~torch.isfinite(x)
    if bool(bad.any()):
        rows = torch.nonzero(bad.any(1))[:, 0]
        raise DataError(f"{name} has {int(bad.sum())} non-finite value(s), first at time "
                        f"index {int(rows[0])}: {x[rows[0]].tolist()}")
    return x


def _scaling(train: torch.Tensor, standardise: bool) -> tuple[torch.Tensor, torch.Tensor]:
    if not standardise:
        return torch.zeros(train.shape[1], dtype=torch.float64), torch.ones(train.shape[1], dtype=torch.float64)
    std = train.std(0)
    if bool((std == 0).any()):
        raise DataError(f"cannot standardise: dimension(s) {torch.nonzero(std == 0)[:, 0].tolist()} "
                        "of the series are constant; pass standardise=False")
    return train.mean(0), std


def from_array(x: Any, dt: float | None = None, *, test: Any = None, test_fraction: float = 0.0,
               standardise: bool = True, name: str = "array") -> ReconstructionData:
    """A user's series ``[time, dim]`` (NumPy, torch, or an xarray ``DataArray`` with a
    ``time`` dimension, whose coordinate gives ``dt`` when it is not passed).

    Args:
        x: the series.
        dt: sampling interval (default: from the ``time`` coordinate, else 1).
        test: a separate test series ``[time, dim]``, or
        test_fraction: the last fraction of ``x`` kept as the test series.
        standardise: scale to zero mean and unit variance (with the training part's
            statistics, applied to both).
        name: a label.

    Raises:
        DataError: a wrong number of axes, fewer than :data:`MIN_SERIES_LENGTH` samples,
            non-finite values, or a test series of another dimension.
    """
    raw, coord_dt = _as_tensor(x, "x")
    raw = _check_series(raw, "x")
    dt = coord_dt if dt is None else dt
    dt = 1.0 if dt is None else dt
    if not isinstance(dt, int | float) or isinstance(dt, bool) or not math.isfinite(dt) or dt <= 0:
        raise ConfigError(f"dt must be a finite number > 0, got {dt!r}")
    if not isinstance(test_fraction, int | float) or not 0 <= test_fraction < 1:
        raise ConfigError(f"test_fraction must be in [0, 1), got {test_fraction!r}")
    if test is not None and test_fraction:
        raise ConfigError("give either test or test_fraction, not both")
    if test is not None:
        tst, _ = _as_tensor(test, "test")
        tst = _check_series(tst, "test")
        if tst.shape[1] != raw.shape[1]:
            raise DataError(f"test has {tst.shape[1]} dimensions but x has {raw.shape[1]}: "
                            f"shapes {tuple(tst.shape)} and {tuple(raw.shape)}")
        train = raw
    elif test_fraction:
        cut = raw.shape[0] - int(round(test_fraction * raw.shape[0]))
        train, tst = _check_series(raw[:cut], "x (training part)"), _check_series(raw[cut:], "x (test part)")
    else:
        train, tst = raw, None
    mean, scale = _scaling(train, standardise)
    return ReconstructionData(
        train=(train - mean) / scale, test=None if tst is None else (tst - mean) / scale,
        dt=float(dt), system=name, mean=mean, scale=scale)


def reconstruction_data(system: str = "Lorenz", *, n_steps: int = 100_000, dt: float | None = None,
                        transient: int = 1000, n_test: int | None = None, noise: float = 0.0,
                        standardise: bool = True, seed: int | torch.Generator | None = 0,
                        **params: Any) -> ReconstructionData:
    """Training and test series of a catalogue flow.

    One trajectory from the system's default initial condition is integrated with RK4
    (sub-steps no longer than :data:`MAX_STEP_FACTOR` times dysts' step), sampled every
    ``dt``; the first ``transient`` samples are dropped, the next ``n_steps`` are the
    training series and the following ``n_test`` (default ``n_steps``) the test series.
    Gaussian observation noise of standard deviation ``noise`` times each dimension's
    standard deviation is added to the training series only (the GTF paper's Lorenz-63
    data carry 5%: ``noise=0.05``). Both are standardised with the training statistics.

    Args:
        system: a catalogue flow (:func:`labkit.dynamics.list_systems`).
        n_steps: training samples.
        dt: sampling interval (default: the flow's period / :data:`SAMPLES_PER_PERIOD`).
        transient: samples dropped first.
        n_test: test samples (default ``n_steps``).
        noise: relative observation noise (>= 0).
        standardise: zero mean, unit variance per dimension.
        seed: seeds the noise.
        params: parameter overrides of the flow.

    Example:
        >>> d = reconstruction_data("Lorenz", n_steps=200, dt=0.01, transient=100, n_test=50)
        >>> tuple(d.train.shape), tuple(d.test.shape), round(d.lyapunov, 2)
        ((200, 3), (50, 3), 0.89)
    """
    from labkit.core.integrate import rk4
    from labkit.dynamics._catalogue import get_system

    sys_ = get_system(system)
    if sys_.kind != "flow":
        raise ConfigError(f"{sys_.name} is a {sys_.kind}; reconstruction_data integrates flows")
    for name, v, least in (("n_steps", n_steps, MIN_SERIES_LENGTH), ("transient", transient, 0)):
        if not isinstance(v, int) or isinstance(v, bool) or v < least:
            raise ConfigError(f"{name} must be an int >= {least}, got {v!r}")
    n_test = n_steps if n_test is None else n_test
    if not isinstance(n_test, int) or isinstance(n_test, bool) or n_test < 0:
        raise ConfigError(f"n_test must be an int >= 0, got {n_test!r}")
    if not isinstance(noise, int | float) or not math.isfinite(noise) or noise < 0:
        raise ConfigError(f"noise must be a finite number >= 0, got {noise!r}")
    if dt is None:
        dt = (sys_.period or 100 * sys_.dt) / SAMPLES_PER_PERIOD
    if not isinstance(dt, int | float) or isinstance(dt, bool) or not math.isfinite(dt) or dt <= 0:
        raise ConfigError(f"dt must be a finite number > 0, got {dt!r}")
    sub = max(1, math.ceil(dt / (MAX_STEP_FACTOR * sys_.dt)))
    total = transient + n_steps + n_test
    field = _fast_field(sys_, params)
    traj = rk4(field, sys_.default_state(), (0.0, total * dt), dt / sub, save_every=sub,
               on_divergence="raise")
    y = traj.y[transient + 1:]
    raw_train, raw_test = y[:n_steps], y[n_steps:n_steps + n_test]
    if noise > 0:
        gen = make_generator(seed)
        eps = torch.randn(raw_train.shape, generator=gen, dtype=torch.float64)
        raw_train = raw_train + noise * raw_train.std(0) * eps
    mean, scale = _scaling(raw_train, standardise)
    ref = sys_.reference.get("maximum_lyapunov_estimated")
    return ReconstructionData(
        train=(raw_train - mean) / scale,
        test=(raw_test - mean) / scale if n_test else None, dt=float(dt), system=sys_.name,
        mean=mean, scale=scale, noise=float(noise),
        lyapunov=None if ref is None else float(ref))


def _fast_field(system: Any, params: dict[str, Any]):
    """The system's vector field for :func:`~labkit.core.rk4`, skipping the catalogue's
    general output normalisation (about 1 ms a call, most of the integration's cost) when
    the raw field already returns one tensor per component; checked once against
    :meth:`System.rhs` at the initial state, else the plain field is used."""
    plain = system.vector_field(**params)
    y0 = system.default_state()
    merged = system.params(params, like=y0)
    t0 = torch.zeros((), dtype=y0.dtype)

    def fast(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.stack(tuple(system._field(t, y, merged)), -1)

    try:
        ok = torch.allclose(fast(t0, y0), plain(t0, y0), rtol=1e-12, atol=0)
    except Exception:  # any failure: use the general path
        ok = False
    return fast if ok else plain
