"""Lyapunov exponents of a learned *map* (an RNN step) from its Jacobians along an orbit.

QR re-orthonormalisation every step (Benettin et al. 1980); exponents per time unit when
``dt`` is the sampling interval of the data, so they compare with a flow's exponents.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from labkit.core.config import check_int, check_positive
from labkit.core.integrate import DEFAULT_BOUND
from labkit.core.shapes import PerTrajectory, States
from labkit.dynamics.catalogue._lyapunov import LyapunovResult
from labkit.errors import ConfigError, DataError, DivergenceError

__all__ = ["lyapunov_spectrum_map", "max_lyapunov_exponent_map"]


def lyapunov_spectrum_map(
    jacobian: Callable[[torch.Tensor], torch.Tensor],
    step: Callable[[torch.Tensor], torch.Tensor],
    z0: States,
    *,
    n_steps: int,
    transient: int = 0,
    dt: float = 1.0,
    n_exponents: int | None = None,
    bound: float = DEFAULT_BOUND,
) -> LyapunovResult:
    r"""Lyapunov exponents of a discrete map :math:`z_{t+1} = F(z_t)` from its Jacobians
    along an orbit (Benettin et al. 1980): the tangent frame is pushed forward,
    :math:`Q \leftarrow J(z_t)\, Q`, re-orthonormalised by QR at every step and
    :math:`\log |R_{ii}|` accumulated,

    .. math:: \lambda_i = \frac{1}{n\,\Delta t} \sum_{t=1}^{n} \log |R^{(t)}_{ii}|,

    so that with ``dt`` the time a step of the map stands for (a model trained on data
    sampled every ``dt``), the exponents are per unit time and compare with the flow's.

    Args:
        jacobian: ``J(z)`` of the map at states ``[*batch, dim]``, ``[*batch, dim, dim]``
            (e.g. a PLRNN's analytic Jacobian, or ``torch.func.jacfwd``).
        step: the map ``F(z)``, batched like ``jacobian``.
        z0: initial states ``[*batch, dim]`` (float64 advised).
        n_steps: steps averaged over, after ``transient`` steps of the state alone.
        dt: time per step.
        n_exponents: how many leading exponents (default: all).
        bound: a state beyond this magnitude counts as diverged.

    Returns:
        A :class:`LyapunovResult` with exponents ``[*batch, n_exponents]``, decreasing.

    Raises:
        DivergenceError: the orbit leaves ``bound`` or becomes non-finite.
    """
    if not isinstance(z0, torch.Tensor) or z0.ndim < 1:
        raise ConfigError(f"z0 must be a tensor [*batch, dim], got {type(z0).__name__}")
    check_int("n_steps", n_steps)
    check_int("transient", transient, least=0)
    check_positive("dt", dt)
    dim = z0.shape[-1]
    m = dim if n_exponents is None else n_exponents
    check_int("n_exponents", m)
    if m > dim:
        raise ConfigError(f"n_exponents must be <= dim = {dim}, got {m}")

    def check(z: torch.Tensor, i: int) -> None:
        if not bool((torch.isfinite(z) & (z.abs() <= bound)).all()):
            raise DivergenceError(f"the orbit diverged by step {i} (non-finite or beyond "
                                  f"{bound:g}); it has no Lyapunov exponents")

    z = z0.clone()
    with torch.no_grad():
        for i in range(transient):
            z = step(z)
            if i % 100 == 99:
                check(z, i + 1)
        check(z, transient)
        frame = torch.eye(dim, m, dtype=z.dtype, device=z.device).expand(*z.shape[:-1], dim, m)
        log_growth = torch.zeros(*z.shape[:-1], m, dtype=z.dtype, device=z.device)
        for i in range(n_steps):
            jac = jacobian(z)
            if jac.shape != (*z.shape, dim):
                raise DataError(f"jacobian(z) must have shape {(*z.shape, dim)}, "
                                f"got {tuple(jac.shape)}")
            frame = jac @ frame
            if m == 1:  # QR of one column is its norm
                norm = torch.linalg.vector_norm(frame, dim=-2)
                frame = frame / norm[..., None]
                log_growth += torch.log(norm)
            else:
                frame, r = torch.linalg.qr(frame)
                log_growth += torch.log(torch.diagonal(r, dim1=-2, dim2=-1).abs())
            z = step(z)
            if i % 100 == 99:
                check(z, transient + i + 1)
        check(z, transient + n_steps)
    exponents = torch.sort(log_growth / (n_steps * dt), dim=-1, descending=True).values
    return LyapunovResult(exponents=exponents, time=n_steps * dt)


def max_lyapunov_exponent_map(
    jacobian: Callable[[torch.Tensor], torch.Tensor],
    step: Callable[[torch.Tensor], torch.Tensor],
    z0: States,
    *,
    n_steps: int,
    transient: int = 0,
    dt: float = 1.0,
    bound: float = DEFAULT_BOUND,
) -> PerTrajectory:
    r"""The largest Lyapunov exponent of a map, per unit time, ``[*batch]``: one tangent
    vector, renormalised every step (:func:`lyapunov_spectrum_map` with one exponent).

    Example (the logistic map at r = 4, whose exponent is :math:`\ln 2`):
        >>> import torch
        >>> lam = max_lyapunov_exponent_map(
        ...     lambda x: (4 - 8 * x)[..., None], lambda x: 4 * x * (1 - x),
        ...     torch.tensor([0.1234], dtype=torch.float64), n_steps=100_000)
        >>> abs(float(lam) - 0.6931) < 0.02
        True
    """
    res = lyapunov_spectrum_map(jacobian, step, z0, n_steps=n_steps, transient=transient,
                                dt=dt, n_exponents=1, bound=bound)
    return res.exponents[..., 0]


# --------------------------------------------------------------------------- reports
