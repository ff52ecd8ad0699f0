"""Growth of the separation between neighbouring trajectories."""

from __future__ import annotations

import math

from labkit.core.integrate import Trajectory
from labkit.core.shapes import PerTime
from labkit.errors import ConfigError, DivergenceError

__all__ = ["log_separation", "separation_rate"]


def log_separation(traj: Trajectory) -> PerTime:
    """Mean over members ``1..`` of ``log |y_i(t) - y_0(t)|``, shape ``[time]``.

    ``traj.y`` is ``[member, time, state]``; member 0 is the reference trajectory.
    """
    if traj.y.ndim != 3 or traj.y.shape[0] < 2:
        raise ConfigError(f"need y of shape [member >= 2, time, state], got {tuple(traj.y.shape)}")
    traj.raise_if_diverged()  # diverged, or (adaptive solvers) out of steps
    dist = (traj.y[1:] - traj.y[:1]).norm(dim=-1)
    if (dist <= 0).any():
        raise ConfigError("members coincide with the reference: perturb the initial states")
    return dist.log().mean(dim=0)


def separation_rate(traj: Trajectory, t_min: float, t_max: float) -> float:
    """Least-squares slope of :func:`log_separation` over ``t_min <= t <= t_max``.

    For infinitesimal perturbations and a window before saturation this estimates the
    largest Lyapunov exponent (per unit time). For :math:`\\dot y = \\lambda y` it is
    exactly :math:`\\lambda`.
    """
    if not t_max > t_min:
        raise ConfigError(f"need t_min < t_max, got t_min={t_min!r}, t_max={t_max!r}")
    logsep = log_separation(traj)
    mask = (traj.t >= t_min) & (traj.t <= t_max)
    if int(mask.sum()) < 2:
        raise ConfigError(f"fewer than two samples in [{t_min}, {t_max}]")
    t, s = traj.t[mask].double(), logsep[mask].double()
    tc = t - t.mean()
    slope = float((tc * (s - s.mean())).sum() / (tc * tc).sum())
    if not math.isfinite(slope):
        raise DivergenceError(f"separation rate is not finite ({slope})")
    return slope
