"""Batched fixed-step integration of ODEs on torch tensors.

Vector fields act on the last axis and broadcast over leading batch axes:
``f(t, y) -> dy/dt`` with ``y`` of shape ``[*batch, state]``. Trajectories come back as
``[*batch, time, state]`` inside a :class:`Trajectory`, which also says, per
trajectory, whether and when it diverged (a non-finite value, or ``|y|`` beyond
``bound``). Diverged trajectories are never returned as silent NaNs: their samples
after the divergence are NaN *and* flagged in ``diverged``/``diverged_at``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import torch

from labkit.errors import ConfigError, DivergenceError

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["DEFAULT_BOUND", "Trajectory", "rk4", "rk4_step"]

#: Magnitude (in the state's own units) beyond which a trajectory counts as diverged.
DEFAULT_BOUND = 1.0e6

VectorField = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclasses.dataclass(frozen=True)
class Trajectory:
    """Result of an integration.

    Attributes:
        t: sample times, ``[time]``.
        y: states, ``[*batch, time, state]``; NaN after a trajectory diverged.
        diverged: ``[*batch]`` bool, True where the trajectory diverged.
        diverged_at: ``[*batch]`` time of divergence (NaN where it did not diverge).
        n_steps: ``[*batch]`` accepted steps per trajectory (adaptive solvers), else None.
    """

    t: torch.Tensor
    y: torch.Tensor
    diverged: torch.Tensor
    diverged_at: torch.Tensor
    n_steps: torch.Tensor | None = None

    @property
    def n_diverged(self) -> int:
        """How many trajectories diverged."""
        return int(self.diverged.sum())

    def raise_if_diverged(self) -> Trajectory:
        """Raise :class:`DivergenceError` naming the first diverged trajectories; else self."""
        if self.n_diverged:
            idx = torch.nonzero(self.diverged)[:5].tolist()
            times = [float(self.diverged_at[tuple(i)]) for i in idx]
            raise DivergenceError(
                f"{self.n_diverged} of {self.diverged.numel()} trajectories diverged; "
                f"first at batch index/time {list(zip(idx, times, strict=True))}"
            )
        return self

    def to_xarray(
        self,
        var_names: Sequence[str] | None = None,
        batch_dims: Sequence[str] | None = None,
        coords: dict[str, Any] | None = None,
    ) -> xr.Dataset:
        """An :class:`xarray.Dataset` with dims ``(*batch_dims, "time", "var")``.

        ``batch_dims`` defaults to ``("ic",)`` for one batch axis and ``ic0, ic1, ...``
        otherwise. ``diverged`` and ``diverged_at`` are data variables over the batch dims.
        """
        import xarray as xr

        nbatch = self.y.ndim - 2
        if batch_dims is None:
            batch_dims = ("ic",) if nbatch == 1 else tuple(f"ic{i}" for i in range(nbatch))
        if len(batch_dims) != nbatch:
            raise ConfigError(f"batch_dims must name {nbatch} axes, got {list(batch_dims)}")
        nvar = self.y.shape[-1]
        if var_names is None:
            var_names = [f"x{i}" for i in range(nvar)]
        if len(var_names) != nvar:
            raise ConfigError(f"var_names must have {nvar} names, got {list(var_names)}")
        dims = (*batch_dims, "time", "var")
        all_coords = {"time": self.t.cpu().numpy(), "var": list(var_names), **(coords or {})}
        return xr.Dataset(
            {
                "y": (dims, self.y.detach().cpu().numpy()),
                "diverged": (tuple(batch_dims), self.diverged.cpu().numpy()),
                "diverged_at": (tuple(batch_dims), self.diverged_at.cpu().numpy()),
            },
            coords=all_coords,
        )


def rk4_step(f: VectorField, t: torch.Tensor, y: torch.Tensor, dt: float) -> torch.Tensor:
    """One classical RK4 step of size ``dt`` from ``(t, y)`` (batched like ``f``)."""
    k1 = f(t, y)
    k2 = f(t + dt / 2, y + (dt / 2) * k1)
    k3 = f(t + dt / 2, y + (dt / 2) * k2)
    k4 = f(t + dt, y + dt * k3)
    return y + (dt / 6) * (k1 + 2 * k2 + 2 * k3 + k4)


def rk4(
    f: VectorField,
    y0: torch.Tensor,
    t_span: tuple[float, float],
    dt: float,
    *,
    save_every: int = 1,
    bound: float = DEFAULT_BOUND,
    on_divergence: Literal["flag", "raise"] = "flag",
) -> Trajectory:
    """Classical 4th-order Runge-Kutta with a fixed step, batched over leading axes.

    Args:
        f: vector field ``f(t, y)``; ``y`` is ``[*batch, state]``, ``t`` a 0-d tensor.
        y0: initial states ``[*batch, state]`` (dtype and device of the whole run).
        t_span: ``(t0, t1)``; ``(t1 - t0) / dt`` must be a whole number of steps.
        dt: step size (> 0).
        save_every: keep every ``save_every``-th step (the first and last are kept).
        bound: a trajectory whose state exceeds this magnitude counts as diverged.
        on_divergence: ``"flag"`` marks diverged trajectories in the result;
            ``"raise"`` raises :class:`DivergenceError` instead.

    Returns:
        A :class:`Trajectory` with ``y`` of shape ``[*batch, time, state]``.

    The global error is :math:`O(\\Delta t^4)`; ``tests/core/test_integrate.py`` measures
    the order on an exact solution and compares with scipy on Lorenz.
    """
    if not isinstance(y0, torch.Tensor) or y0.ndim < 1:
        raise ConfigError(f"y0 must be a tensor [*batch, state], got {type(y0).__name__}")
    if not (isinstance(dt, int | float) and math.isfinite(dt) and dt > 0):
        raise ConfigError(f"dt must be a finite number > 0, got {dt!r}")
    t0, t1 = (float(v) for v in t_span)
    if not t1 > t0:
        raise ConfigError(f"t_span must be increasing, got {t_span!r}")
    steps_f = (t1 - t0) / dt
    n_steps = round(steps_f)
    if abs(steps_f - n_steps) > 1e-6 * max(1.0, steps_f):
        raise ConfigError(f"(t1 - t0) / dt must be a whole number of steps, got {steps_f!r}")
    if not isinstance(save_every, int) or save_every < 1:
        raise ConfigError(f"save_every must be an int >= 1, got {save_every!r}")
    if on_divergence not in ("flag", "raise"):
        raise ConfigError(f"on_divergence must be 'flag' or 'raise', got {on_divergence!r}")
    if not torch.isfinite(y0).all():
        raise ConfigError("y0 contains non-finite values")

    save_at = list(range(0, n_steps + 1, save_every))
    if save_at[-1] != n_steps:
        save_at.append(n_steps)
    batch = y0.shape[:-1]
    out = torch.empty((*batch, len(save_at), y0.shape[-1]), dtype=y0.dtype, device=y0.device)
    diverged = torch.zeros(batch, dtype=torch.bool, device=y0.device)
    diverged_at = torch.full(batch, math.nan, dtype=y0.dtype, device=y0.device)

    y = y0.clone()
    out[..., 0, :] = y
    next_save = 1
    with torch.no_grad():
        for step in range(1, n_steps + 1):
            t = torch.tensor(t0 + (step - 1) * dt, dtype=y0.dtype, device=y0.device)
            y = rk4_step(f, t, y, dt)
            if step == save_at[next_save]:
                bad = ~torch.isfinite(y).all(-1) | (y.abs() > bound).any(-1)
                new = bad & ~diverged
                if new.any():
                    diverged_at[new] = t0 + step * dt
                    diverged |= new
                    if on_divergence == "raise":
                        break
                y = torch.where(diverged[..., None], torch.nan, y)
                out[..., next_save, :] = y
                next_save += 1
    times = torch.tensor([t0 + s * dt for s in save_at], dtype=y0.dtype, device=y0.device)
    result = Trajectory(t=times, y=out, diverged=diverged, diverged_at=diverged_at)
    if on_divergence == "raise":
        result.raise_if_diverged()
    return result
