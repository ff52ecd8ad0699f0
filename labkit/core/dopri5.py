"""Adaptive Dormand-Prince 5(4) with a step size of its own for every trajectory.

Ensemble members do not share a step: each trajectory carries its own time and step
size, accepts or rejects its own steps against ``rtol``/``atol``, and is written onto
the common output grid ``t_eval`` by the method's 4th-order continuous extension (no
extra evaluations of ``f``). A batched result therefore equals, to rounding, the same
trajectories integrated one at a time. Reference: J. R. Dormand and P. J. Prince, A
family of embedded Runge-Kutta formulae, J. Comput. Appl. Math. 6, 19-26 (1980);
step-size control as in Hairer, Norsett and Wanner, Solving ODEs I, section II.4.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch

from labkit.core._tableau import _A, _C, _D, _E
from labkit.core.integrate import Trajectory, resolve_bound
from labkit.core.shapes import States, VectorField
from labkit.errors import ConfigError

__all__ = ["dopri5"]

#: Step-size controller: safety factor and bounds on the change per step.
_SAFETY, _MIN_FACTOR, _MAX_FACTOR = 0.9, 0.2, 10.0


def _dense(y0, y1, ks, h, theta):
    """The 4th-order interpolant of one accepted step at fraction ``theta``."""
    diff = y1 - y0
    bspl = h * ks[0] - diff
    r4 = diff - h * ks[6] - bspl
    r5 = h * sum(d * k for d, k in zip(_D, ks, strict=True) if d != 0.0)
    return y0 + theta * (diff + (1 - theta) * (bspl + theta * (r4 + (1 - theta) * r5)))


def dopri5(
    f: VectorField,
    y0: States,
    t_eval: Sequence[float] | torch.Tensor,
    *,
    rtol: float = 1e-6,
    atol: float = 1e-9,
    h0: float | None = None,
    max_steps: int = 1_000_000,
    bound: float | None = None,
    on_divergence: Literal["flag", "raise"] = "flag",
    fast: Literal["auto", "compiled", "eager"] = "auto",
) -> Trajectory:
    """Integrate ``dy/dt = f(t, y)`` from ``t_eval[0]``, each trajectory with its own steps.

    Args:
        f: vector field ``f(t, y)``; ``y`` is ``[*batch, state]`` and ``t`` is
            ``[*batch]``, one time per trajectory (a field that scales the whole state
            by ``t`` uses ``t[..., None]``).
        y0: initial states ``[*batch, state]`` (their dtype and device are the run's).
        t_eval: increasing output times; the first is the initial time.
        rtol, atol: tolerances of the local error estimate (per component).
        h0: first step; by default chosen from ``|y0|`` and ``|f(y0)|``.
        max_steps: attempted (accepted or rejected) steps per trajectory; one that has
            not reached ``t_eval[-1]`` after them stops with ``out_of_steps`` (status
            ``"max_steps"``), which is not a divergence.
        bound: a trajectory with a component beyond this magnitude counts as diverged
            (as does a non-finite one). A number applies to every trajectory and takes
            precedence; None (the default) gives each its
            :func:`~labkit.core.integrate.default_bound` (``max(1e6, 1e4 * max(|y0|,
            scale))``, ``scale`` the catalogue field's attractor extent at its
            parameters), the same rule as :func:`~labkit.core.rk4`, in both the compiled
            and the eager solver.
        on_divergence: ``"flag"`` marks failed trajectories in the result; ``"raise"``
            raises :class:`~labkit.errors.DivergenceError` for a divergence and
            :class:`~labkit.errors.StepLimitError` for a trajectory out of steps.
        fast: ``"auto"`` integrates with a compiled C kernel (:mod:`labkit.core.kernels`)
            when ``f`` carries a kernel source (catalogue fields do) and ``y0`` is
            float32/float64 on the CPU, else eagerly; ``"compiled"`` insists on the
            kernel, ``"eager"`` never uses it. The kernel runs the same stages,
            controller and dense output per trajectory (tests: equal to the eager
            solver to rounding, and to scipy's DOP853 within the tolerance).

    Returns:
        A :class:`Trajectory` on ``t_eval`` with ``y`` ``[*batch, time, state]`` and
        ``n_steps`` (accepted steps per trajectory). A trajectory that diverges, or
        whose step size collapses (a singularity or extreme stiffness), is flagged in
        ``diverged`` with the time it happened and NaN afterwards; one that ran out of
        steps, in ``out_of_steps`` with the time it had reached (``out_of_steps_at``) and
        NaN afterwards. :attr:`Trajectory.status` says which, per trajectory (``"ok"``,
        ``"diverged"``, ``"max_steps"``).
    """
    if not isinstance(y0, torch.Tensor) or y0.ndim < 1:
        raise ConfigError(f"y0 must be a tensor [*batch, state], got {type(y0).__name__}")
    if not torch.isfinite(y0).all():
        raise ConfigError("y0 contains non-finite values")
    t_out = torch.as_tensor(t_eval, dtype=y0.dtype, device=y0.device).flatten()
    if t_out.numel() < 2 or not bool((t_out[1:] > t_out[:-1]).all()):
        raise ConfigError(f"t_eval must hold >= 2 increasing times, got {t_eval!r}")
    for name, tol in (("rtol", rtol), ("atol", atol)):
        if not (isinstance(tol, int | float) and tol >= 0 and math.isfinite(tol)):
            raise ConfigError(f"{name} must be a finite number >= 0, got {tol!r}")
    if rtol == 0 and atol == 0:
        raise ConfigError("rtol and atol cannot both be 0")
    if on_divergence not in ("flag", "raise"):
        raise ConfigError(f"on_divergence must be 'flag' or 'raise', got {on_divergence!r}")
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise ConfigError(f"max_steps must be an int >= 1, got {max_steps!r}")
    bounds = resolve_bound(bound, f, y0)

    if fast not in ("auto", "compiled", "eager"):
        raise ConfigError(f"fast must be 'auto', 'compiled' or 'eager', got {fast!r}")
    if fast != "eager":
        from labkit.core.kernels import kernel_for, run_dopri5

        found = kernel_for(getattr(f, "kernel_source", None), y0)
        if found is not None:
            out, status, stopped_at, steps = run_dopri5(
                found[0], found[1], y0, t_out, rtol=rtol, atol=atol, h0=h0,
                max_steps=max_steps, bound=bounds)
            done = _result(t_out, out, status == 1, status == 2, stopped_at, steps, max_steps)
            return done.raise_if_diverged() if on_divergence == "raise" else done
        if fast == "compiled":
            raise ConfigError("fast='compiled' needs a catalogue field and a float32/float64 "
                              "state on the CPU, a system that compiles and a C compiler")

    batch, dim = y0.shape[:-1], y0.shape[-1]
    n_out = t_out.numel()
    dtype, device = y0.dtype, y0.device
    t_end = float(t_out[-1])
    y = y0.clone()
    t = torch.full(batch, float(t_out[0]), dtype=dtype, device=device)
    out = torch.full((*batch, n_out, dim), math.nan, dtype=dtype, device=device)
    out[..., 0, :] = y
    flat_out = out.view(-1, n_out, dim)
    next_out = torch.ones(batch, dtype=torch.long, device=device)
    active = torch.ones(batch, dtype=torch.bool, device=device)
    diverged = torch.zeros(batch, dtype=torch.bool, device=device)
    starved = torch.zeros(batch, dtype=torch.bool, device=device)
    stopped_at = torch.full(batch, math.nan, dtype=dtype, device=device)
    accepted = torch.zeros(batch, dtype=torch.long, device=device)
    rows = torch.arange(math.prod(batch), device=device).view(batch)

    with torch.no_grad():
        k1 = f(t, y)
        scale = atol + rtol * y.abs()
        if h0 is None:
            d0 = ((y / scale) ** 2).mean(-1).sqrt()
            d1 = ((k1 / scale) ** 2).mean(-1).sqrt()
            tiny = (d0 < 1e-5) | (d1 < 1e-5)
            h = torch.where(tiny, torch.full_like(d0, 1e-6), 0.01 * d0 / d1.clamp_min(1e-300))
        else:
            h = torch.full(batch, float(h0), dtype=dtype, device=device)
        h = torch.clamp(h, max=t_end - float(t_out[0]))
        attempts = 0
        while bool(active.any()):
            attempts += 1
            h_step = torch.where(active, torch.minimum(h, t_end - t), torch.zeros_like(h))
            hs = h_step[..., None]
            ks = [k1]
            for i in range(1, 7):
                yi = y + hs * sum(a * k for a, k in zip(_A[i], ks, strict=True) if a != 0.0)
                ks.append(f(t + _C[i] * h_step, yi))
            y_new = yi  # stage 7 is evaluated at the 5th-order solution (FSAL)
            err = hs * sum(e * k for e, k in zip(_E, ks, strict=True) if e != 0.0)
            tol = atol + rtol * torch.maximum(y.abs(), y_new.abs())
            err_norm = ((err / tol) ** 2).mean(-1).sqrt()
            finite = torch.isfinite(y_new).all(-1) & torch.isfinite(err_norm)
            ok = active & finite & (err_norm <= 1.0)

            blown = torch.zeros_like(ok)
            if bool(ok.any()):
                t_new = t + h_step
                while True:  # write every output time crossed by an accepted step
                    idx = next_out.clamp(max=n_out - 1)
                    target = t_out[idx]
                    due = ok & (next_out < n_out) & (target <= t_new * (1 + 1e-15))
                    if not bool(due.any()):
                        break
                    theta = ((target - t) / h_step.clamp_min(torch.finfo(dtype).tiny)).clamp(0, 1)
                    value = _dense(y, y_new, ks, hs, theta[..., None])
                    flat_out[rows[due], idx[due]] = value[due]
                    next_out = next_out + due.long()
                t = torch.where(ok, t_new, t)
                y = torch.where(ok[..., None], y_new, y)
                k1 = torch.where(ok[..., None], ks[6], k1)
                accepted += ok.long()
                blown = ok & (y.abs() > bounds[..., None]).any(-1)

            factor = _SAFETY * err_norm.clamp_min(1e-10) ** -0.2
            factor = torch.where(finite, factor.clamp(_MIN_FACTOR, _MAX_FACTOR),
                                 torch.full_like(factor, _MIN_FACTOR))
            h = torch.where(active, h_step * factor, h)
            stuck = active & ~ok & (h <= 1e-14 * t.abs().clamp_min(1.0))
            bad = blown | stuck
            # out of steps: still short of the end after max_steps attempts (a
            # trajectory whose last allowed attempt reached the end is done, not starved)
            out_now = active & ~bad & (next_out < n_out) & (attempts >= max_steps)
            stopped = bad | out_now
            if bool(stopped.any()):
                stopped_at = torch.where(stopped, t, stopped_at)
                diverged |= bad
                starved |= out_now
                active &= ~stopped
                if on_divergence == "raise":
                    break
            active &= next_out < n_out

    result = _result(t_out, out.reshape(*batch, n_out, dim), diverged.reshape(batch),
                     starved.reshape(batch), stopped_at.reshape(batch),
                     accepted.reshape(batch), max_steps)
    if on_divergence == "raise":
        result.raise_if_diverged()
    return result


def _result(t_out: torch.Tensor, y: torch.Tensor, diverged: torch.Tensor,
            starved: torch.Tensor, stopped_at: torch.Tensor, steps: torch.Tensor,
            max_steps: int) -> Trajectory:
    """The :class:`Trajectory` of either solver: ``stopped_at`` split into the times of
    the diverged and of the starved trajectories."""
    nan = torch.full_like(stopped_at, math.nan)
    return Trajectory(t=t_out, y=y, diverged=diverged,
                      diverged_at=torch.where(diverged, stopped_at, nan), n_steps=steps,
                      out_of_steps=starved,
                      out_of_steps_at=torch.where(starved, stopped_at, nan),
                      max_steps=max_steps)
