"""Delay differential equations ``x' = f(x(t), x(t - tau), t)`` by the method of steps.

dysts' six delay systems (Mackey-Glass, Ikeda, ...) are scalar with one delay ``tau``.
They are integrated with classical RK4 on a grid whose step divides ``tau``: the delayed
value at a grid point is a stored sample, and at a half step it comes from the cubic
Hermite interpolant of the stored samples and slopes, which keeps the scheme fourth
order (measured in the tests). Batched over any leading axes and over parameter batches.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import torch

from labkit.core.integrate import DEFAULT_BOUND, Trajectory
from labkit.errors import ConfigError

__all__ = ["integrate_delay"]


@functools.cache
def _delay_rhs(name: str) -> tuple[Callable[..., Any], tuple[str, ...]]:
    from labkit.dynamics.catalogue._catalogue import _dysts, _own_members, _shimmed

    cls = getattr(_dysts("flows"), name)
    rhs = _shimmed(_own_members(cls)["_rhs"])
    names = list(inspect.signature(rhs).parameters)
    return rhs, tuple(names[names.index("t") + 1:])


def integrate_delay(
    name: str,
    history: float | torch.Tensor,
    t_span: tuple[float, float],
    dt: float,
    *,
    save_every: int = 1,
    bound: float = DEFAULT_BOUND,
    dtype: torch.dtype = torch.float64,
    **params: Any,
) -> Trajectory:
    """Integrate the delay system ``name`` over ``t_span = (t0, t1)`` from a constant
    history on ``[t0 - tau, t0]``.

    Args:
        name: one of ``list_systems("delay")`` (:func:`labkit.dynamics.list_systems`;
            case-insensitive).
        history: the value of ``x`` on ``[t0 - tau, t0]``: a number or a tensor
            ``[*batch]``.
        t_span: ``(t0, t1)``, the start (where the history ends) and the final time,
            as for the ODE integrators (:func:`labkit.core.rk4`).
        dt: step; ``tau / dt`` and ``(t1 - t0) / dt`` must be whole numbers.
        save_every: keep every ``save_every``-th step.
        bound: a trajectory beyond this magnitude is flagged as diverged.
        **params: parameter overrides (numbers, or tensors broadcasting with ``history``).

    Returns:
        A :class:`~labkit.core.Trajectory` with ``y`` ``[*batch, time, 1]`` and times from
        ``t0``.

    Example:
        >>> traj = integrate_delay("MackeyGlass", 0.5, (0.0, 32.0), 0.5, save_every=16)
        >>> traj.t.tolist(), tuple(traj.y.shape)
        ([0.0, 8.0, 16.0, 24.0, 32.0], (5, 1))
    """
    from labkit.dynamics.catalogue._catalogue import _metadata, _resolve, list_systems

    canonical = _resolve(name, list_systems("delay"))
    rhs, names = _delay_rhs(canonical)
    defaults = dict(_metadata()[canonical]["parameters"])
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ConfigError(f"unknown parameter(s) {unknown} for {canonical}; parameters: {defaults}")
    values: Mapping[str, Any] = defaults | params
    tau = float(values["tau"])
    if not (isinstance(dt, int | float) and math.isfinite(dt) and dt > 0):
        raise ConfigError(f"dt must be a finite number > 0, got {dt!r}")
    t0, t1 = _check_span(t_span)
    length = t1 - t0
    lag, n_steps = round(tau / dt), round(length / dt)
    if abs(lag * dt - tau) > 1e-9 * tau or abs(n_steps * dt - length) > 1e-9 * length:
        raise ConfigError(f"dt must divide tau = {tau} and t1 - t0 = {length}; got dt = {dt}")
    if not isinstance(save_every, int) or save_every < 1:
        raise ConfigError(f"save_every must be an int >= 1, got {save_every!r}")
    x = torch.as_tensor(history, dtype=dtype)
    if not torch.isfinite(x).all():
        raise ConfigError("history contains non-finite values")
    args = [values[p] for p in names]
    # The batch is the broadcast of the history with any tensor parameters.
    shapes = [x.shape] + [v.shape for v in args if isinstance(v, torch.Tensor)]
    x = x.expand(torch.broadcast_shapes(*shapes)).clone()

    def f(xx: torch.Tensor, xd: torch.Tensor, t: float) -> torch.Tensor:
        return torch.as_tensor(rhs(xx, xd, t, *args), dtype=dtype).expand_as(xx)

    # The last `lag + 1` samples and slopes (x(t - tau) ... x(t)); before t = 0 the history
    # is constant, so its slope is 0. The slope at t is known once the step from t starts.
    xs = deque([x.clone() for _ in range(lag + 1)], maxlen=lag + 1)
    fs = deque([torch.zeros_like(x) for _ in range(lag + 1)], maxlen=lag + 1)
    saved, times = [x.clone()], [t0]
    diverged = torch.zeros(x.shape, dtype=torch.bool)
    diverged_at = torch.full(x.shape, math.nan, dtype=dtype)
    with torch.no_grad():
        for k in range(n_steps):
            t = t0 + k * dt
            k1 = f(x, xs[0], t)  # xs[0] = x(t - tau)
            fs[-1] = k1
            x0, f0, x1, f1 = xs[0], fs[0], xs[1], fs[1]  # x(t - tau), x(t + dt - tau)
            if k + 1 <= lag:  # [t - tau, t + dt - tau] lies in the (constant) history
                mid = x0
            else:  # cubic Hermite; breakpoints (t = 0, tau, ...) fall on grid points
                mid = 0.5 * (x0 + x1) + dt / 8 * (f0 - f1)
            k2 = f(x + dt / 2 * k1, mid, t + dt / 2)
            k3 = f(x + dt / 2 * k2, mid, t + dt / 2)
            k4 = f(x + dt * k3, x1, t + dt)
            x = x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
            bad = (~torch.isfinite(x) | (x.abs() > bound)) & ~diverged
            if bad.any():
                diverged_at[bad] = t + dt
                diverged |= bad
            x = torch.where(diverged, torch.nan, x)
            xs.append(x)
            fs.append(torch.zeros_like(x))  # its slope is set by the next step
            if (k + 1) % save_every == 0 or k + 1 == n_steps:
                saved.append(x.clone())
                times.append(t + dt)
    y = torch.stack(saved, dim=-1)[..., None]
    return Trajectory(t=torch.tensor(times, dtype=dtype), y=y, diverged=diverged,
                      diverged_at=diverged_at)


def _check_span(t_span: Any) -> tuple[float, float]:
    """``(t0, t1)`` as floats; a pair of finite numbers with ``t1 > t0``, else ConfigError."""
    ok = (isinstance(t_span, tuple | list) and len(t_span) == 2
          and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                  for v in t_span))
    if not ok or not t_span[1] > t_span[0]:
        raise ConfigError(f"t_span must be a pair (t0, t1) of finite numbers with t1 > t0, "
                          f"got {t_span!r}")
    return float(t_span[0]), float(t_span[1])
