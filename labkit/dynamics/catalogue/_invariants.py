"""Invariants of trajectories: power spectra, correlation dimension, Poincare sections.

All act on sampled trajectories ``[*batch, time, state]`` (``Trajectory.y``) on a
uniform time grid, with torch, on the trajectories' device.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from jaxtyping import Float
from torch import Tensor

from labkit.core.shapes import PerTrajectory, Times, TimeSeries
from labkit.errors import ConfigError, DataError

if TYPE_CHECKING:
    from labkit.dynamics.catalogue._catalogue import System

__all__ = ["OrbitDiagram", "PoincareSection", "correlation_dimension", "correlation_sum",
           "local_maxima", "orbit_diagram", "poincare_section", "power_spectrum"]


def _check_series(y: torch.Tensor, name: str = "y", min_len: int = 4) -> torch.Tensor:
    if not isinstance(y, torch.Tensor) or y.ndim < 2:
        raise ConfigError(f"{name} must be a tensor [*batch, time, state], got "
                          f"{getattr(y, 'shape', type(y).__name__)}")
    if y.shape[-2] < min_len:
        raise DataError(f"{name} has {y.shape[-2]} samples; at least {min_len} are needed")
    if not torch.isfinite(y).all():
        raise DataError(f"{name} contains non-finite values (a diverged trajectory?)")
    return y


def power_spectrum(y: TimeSeries, dt: float, *, detrend: bool = True, window: str = "hann"
                   ) -> tuple[Float[Tensor, " freq"], Float[Tensor, "*batch freq state"]]:
    r"""One-sided power spectral density of each component, by a windowed periodogram.

    Args:
        y: samples ``[*batch, time, state]`` at spacing ``dt``.
        dt: sampling interval (time units).
        detrend: subtract each series' mean first.
        window: ``"hann"`` or ``"boxcar"``.

    Returns:
        ``(freqs, psd)``: frequencies ``[n_freq]`` in cycles per time unit and the density
        ``[*batch, n_freq, state]``, normalized so that
        :math:`\sum_f \mathrm{psd}\,\Delta f` equals the variance of the (windowed) series.
    """
    y = _check_series(y)
    if not (isinstance(dt, int | float) and dt > 0):
        raise ConfigError(f"dt must be a number > 0, got {dt!r}")
    n = y.shape[-2]
    x = y - y.mean(dim=-2, keepdim=True) if detrend else y
    if window == "hann":
        w = torch.hann_window(n, periodic=False, dtype=y.dtype, device=y.device)
    elif window == "boxcar":
        w = torch.ones(n, dtype=y.dtype, device=y.device)
    else:
        raise ConfigError(f"window must be 'hann' or 'boxcar', got {window!r}")
    spec = torch.fft.rfft(x * w[:, None], dim=-2)
    psd = spec.abs() ** 2 * dt / (w**2).sum()
    if n % 2 == 0:
        psd[..., 1:-1, :] *= 2
    else:
        psd[..., 1:, :] *= 2
    freqs = torch.fft.rfftfreq(n, d=dt, dtype=y.dtype, device=y.device)
    return freqs, psd


def correlation_sum(points: TimeSeries, radii: Float[Tensor, " radii"], *,
                    theiler: int = 0) -> Float[Tensor, "*batch radii"]:
    """Fraction of distinct pairs closer than each radius, ``[*batch, n_radii]``.

    ``points`` is ``[*batch, n, state]``; pairs closer than ``theiler`` in index (time)
    are left out, so that neighbours along one trajectory do not count as recurrences.
    """
    points = _check_series(points, "points")
    n = points.shape[-2]
    dist = torch.cdist(points, points)
    i = torch.arange(n, device=points.device)
    keep = (i[None, :] - i[:, None]) > theiler
    d = dist[..., keep]  # [*batch, n_pairs]
    if d.shape[-1] == 0:
        raise DataError(f"no pairs left: {n} points with a Theiler window of {theiler}")
    return (d[..., None, :] < radii[:, None]).to(points.dtype).mean(-1)


def correlation_dimension(points: TimeSeries, *, r_min: float, r_max: float,
                          n_radii: int = 12, theiler: int = 0) -> PerTrajectory:
    r"""Grassberger-Procaccia correlation dimension: the slope of :math:`\log C(r)` against
    :math:`\log r` over the scaling range ``[r_min, r_max]``, ``[*batch]``.

    Reference: P. Grassberger and I. Procaccia, Characterization of strange attractors,
    Phys. Rev. Lett. 50, 346 (1983) (Lorenz: 2.05 +- 0.01).
    """
    if not 0 < r_min < r_max:
        raise ConfigError(f"need 0 < r_min < r_max, got r_min={r_min!r}, r_max={r_max!r}")
    radii = torch.logspace(math.log10(r_min), math.log10(r_max), n_radii,
                           dtype=points.dtype, device=points.device)
    c = correlation_sum(points, radii, theiler=theiler)
    if (c <= 0).any():
        raise DataError(f"no pairs closer than r_min = {r_min}: raise r_min or add points")
    x, yv = radii.log(), c.log()
    xc = x - x.mean()
    return ((yv - yv.mean(-1, keepdim=True)) * xc).sum(-1) / (xc * xc).sum()


@dataclasses.dataclass(frozen=True)
class PoincareSection:
    """Crossings of a hyperplane, one batch member at a time (counts differ).

    Attributes:
        points: per batch member (flattened order), a tensor ``[n_crossings, state]``.
        times: the matching crossing times ``[n_crossings]``.
    """

    points: list[Float[Tensor, "_crossings state"]]
    times: list[Float[Tensor, " _crossings"]]

    @property
    def counts(self) -> list[int]:
        """Crossings per batch member."""
        return [int(p.shape[0]) for p in self.points]

    def as_dict(self) -> dict[str, Any]:
        """Plain numbers: ``counts``, and per batch member the crossing ``points``
        (``[n_crossings][state]`` lists) and ``times``."""
        return {"counts": self.counts, "points": [p.tolist() for p in self.points],
                "times": [t.tolist() for t in self.times]}

    def summary(self) -> str:
        """One line: how many trajectories crossed how often."""
        counts = self.counts
        if not counts:
            return "Poincare section of no trajectories"
        return (f"Poincare section: {sum(counts)} crossings of {len(counts)} trajectories "
                f"({min(counts)} to {max(counts)} each)")


def poincare_section(y: TimeSeries, t: Times, normal: Float[Tensor, " state"] | Sequence[float],
                     offset: float = 0.0, *, direction: int = 1) -> PoincareSection:
    """Where trajectories cross the plane ``normal . y = offset`` (linear interpolation
    between samples). ``direction`` 1 keeps upward crossings, -1 downward, 0 both."""
    y = _check_series(y, min_len=2)
    normal = torch.as_tensor(normal, dtype=y.dtype, device=y.device)
    if normal.shape != (y.shape[-1],) or not bool(normal.abs().sum() > 0):
        raise ConfigError(f"normal must be a non-zero vector of length {y.shape[-1]}, "
                          f"got {normal.tolist()}")
    if direction not in (-1, 0, 1):
        raise ConfigError(f"direction must be -1, 0 or 1, got {direction!r}")
    s = y @ normal - offset  # [*batch, time]
    a, b = s[..., :-1], s[..., 1:]
    up, down = (a < 0) & (b >= 0), (a > 0) & (b <= 0)
    cross = up if direction == 1 else down if direction == -1 else up | down
    frac = a / (a - b).where(cross, torch.ones_like(a))
    flat_y = y.reshape(-1, *y.shape[-2:])
    flat_c, flat_f = cross.reshape(-1, cross.shape[-1]), frac.reshape(-1, frac.shape[-1])
    points, times = [], []
    for yy, cc, ff in zip(flat_y, flat_c, flat_f, strict=True):
        idx = torch.nonzero(cc)[:, 0]
        w = ff[idx][:, None]
        points.append(yy[idx] + w * (yy[idx + 1] - yy[idx]))
        times.append(t[idx] + w[:, 0] * (t[idx + 1] - t[idx]))
    return PoincareSection(points, times)


@dataclasses.dataclass(frozen=True)
class OrbitDiagram:
    """Local maxima of one variable after a transient, per parameter value.

    Attributes:
        parameter: the swept parameter's name.
        values: the parameter values ``[n_values]``.
        maxima: per value, the maxima of all its initial conditions, ``[n_maxima]``.
        variable: index of the state variable whose maxima are taken.
    """

    parameter: str
    values: Float[Tensor, " values"]
    maxima: list[Float[Tensor, " _maxima"]]
    variable: int

    def as_dict(self) -> dict[str, Any]:
        """Plain numbers: ``parameter``, ``variable``, the parameter ``values``, the number
        of maxima per value (``n_maxima``) and the ``maxima`` themselves (one list per
        value)."""
        return {"parameter": self.parameter, "variable": self.variable,
                "values": self.values.tolist(), "n_maxima": [int(m.numel()) for m in self.maxima],
                "maxima": [m.tolist() for m in self.maxima]}

    def summary(self) -> str:
        """One line: the sweep and how many maxima it found."""
        counts = [int(m.numel()) for m in self.maxima]
        if not counts:
            return f"orbit diagram over no values of {self.parameter}"
        lo, hi = float(self.values.min()), float(self.values.max())
        return (f"orbit diagram: maxima of variable {self.variable} for {len(counts)} values "
                f"of {self.parameter} in [{lo:.4g}, {hi:.4g}]: {sum(counts)} maxima "
                f"({min(counts)} to {max(counts)} per value)")


def local_maxima(y: Float[Tensor, "*batch time"]) -> list[Float[Tensor, " _maxima"]]:
    """Interior local maxima of series ``[*batch, time]``, refined by a parabola through
    each peak and its neighbours; one tensor per batch member (flattened order)."""
    if y.shape[-1] < 3:
        raise DataError(f"need at least 3 samples to find maxima, got {y.shape[-1]}")
    a, b, c = y[..., :-2], y[..., 1:-1], y[..., 2:]
    peak = (b > a) & (b >= c)
    curv = a - 2 * b + c
    vertex = b - (c - a) ** 2 / (8 * curv.where(peak, -torch.ones_like(curv)))
    flat_p, flat_v = peak.reshape(-1, peak.shape[-1]), vertex.reshape(-1, vertex.shape[-1])
    return [v[p] for v, p in zip(flat_v, flat_p, strict=True)]


def orbit_diagram(system: System, parameter: str, values: Float[Tensor, " values"], *,
                  n_ics: int = 4, t_transient: float, t_record: float, dt: float, variable: int = 0,
                  seed: int | torch.Generator | None = 0, spread: float = 0.1) -> OrbitDiagram:
    """The orbit (bifurcation) diagram of a flow: integrate ``n_ics`` initial conditions
    near the default one for every value of ``parameter`` in one batched RK4 run (a
    ``[n_values, n_ics]`` batch, on the device of ``values``), drop ``t_transient``, and
    collect the maxima of ``variable`` over ``t_record``.

    Raises:
        labkit.errors.DivergenceError: naming the parameter values whose runs diverged.
    """
    from labkit.core.integrate import rk4
    from labkit.core.rng import make_generator
    from labkit.errors import DivergenceError

    if parameter not in system.parameters:
        raise ConfigError(f"{system.name} has no parameter {parameter!r}; parameters: "
                          f"{sorted(system.parameters)}")
    values = torch.as_tensor(values, dtype=torch.float64).flatten()
    if not 0 <= variable < system.dim:
        raise ConfigError(f"variable must be in [0, {system.dim - 1}], got {variable!r}")
    gen = make_generator(seed)
    base = torch.tensor(system.initial_condition, dtype=values.dtype)
    noise = spread * base.abs().clamp_min(1.0) * torch.randn(
        len(values), n_ics, system.dim, generator=gen, dtype=values.dtype)
    y0 = (base + noise).to(values.device)
    steps_t = round(t_transient / dt)
    field = system.vector_field(**{parameter: values[:, None]})
    warm = rk4(field, y0, (0.0, steps_t * dt), dt, save_every=max(1, steps_t))
    start = warm.y[..., -1, :]
    steps_r = round(t_record / dt)
    run = rk4(field, torch.where(torch.isfinite(start), start, y0), (0.0, steps_r * dt), dt)
    bad = (warm.diverged | run.diverged).any(-1)
    if bad.any():
        raise DivergenceError(f"{system.name}: runs diverged for {parameter} = "
                              f"{values[bad].tolist()[:5]}")
    peaks = local_maxima(run.y[..., variable])
    per_value = [torch.cat(peaks[i * n_ics:(i + 1) * n_ics]) for i in range(len(values))]
    return OrbitDiagram(parameter, values, per_value, variable)
