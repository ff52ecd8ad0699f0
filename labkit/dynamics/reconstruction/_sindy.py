"""SINDy (sparse regression of the vector field, through pysindy) as a reconstruction
baseline; pysindy is imported inside :func:`train_sindy` only."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import torch
from torch import nn

from labkit.core.config import Config, check_int, check_positive
from labkit.core.integrate import rk4, rk4_step
from labkit.dynamics.reconstruction._data import ReconstructionData
from labkit.dynamics.reconstruction._free_run import (
    as_data,
    check_generated,
    check_n,
    escape_bound,
    start,
)
from labkit.errors import ConfigError, DivergenceError

__all__ = ['SINDyConfig', 'SINDyResult', 'train_sindy']


@dataclasses.dataclass(frozen=True, kw_only=True)
class SINDyConfig(Config):
    r"""SINDy (Brunton, Proctor, Kutz 2016, PNAS 113, 3932): the vector field as a sparse
    combination of library functions, :math:`\dot x = \Xi\, \theta(x)`, found by
    sequentially thresholded least squares (STLSQ) on derivatives estimated from the
    sampled series by finite differences (pysindy).

    Attributes:
        degree: the polynomial library's degree (with the constant and cross terms).
        threshold: STLSQ's threshold: coefficients below it (in the data's units per time
            unit) are set to zero.
        alpha: STLSQ's ridge regularisation.
        max_iter: STLSQ iterations.
        fd_order: order of accuracy of the finite-difference derivative (pysindy's
            ``FiniteDifference``). The default 4 recovers Lorenz-63's coefficients to
            ~0.1% from clean data at dt = 0.01, where pysindy's default 2 is off by 4%
            on the small ``-y`` term; on noisy data a lower order amplifies the noise
            less.
        substeps: RK4 steps per sample when generating.
    """

    degree: int = 2
    threshold: float = 0.1
    alpha: float = 0.05
    max_iter: int = 20
    fd_order: int = 4
    substeps: int = 1

    def validate(self) -> None:
        check_int("degree", self.degree)
        check_positive("threshold", self.threshold, allow_zero=True)
        check_positive("alpha", self.alpha, allow_zero=True)
        check_int("max_iter", self.max_iter)
        check_int("fd_order", self.fd_order)
        check_int("substeps", self.substeps)


class _Polynomial(nn.Module):
    """:math:`\\dot x = \\Xi\\, \\theta(x)` with monomials :math:`\\theta_j = \\prod_i
    x_i^{P_{ji}}` (batched, torch)."""

    def __init__(self, powers: torch.Tensor, coefficients: torch.Tensor) -> None:
        super().__init__()
        self.powers: torch.Tensor
        self.xi: torch.Tensor
        self.register_buffer("powers", powers.to(torch.float64))
        self.register_buffer("xi", coefficients.to(torch.float64))

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        theta = (x[..., None, :] ** self.powers).prod(-1)
        return theta @ self.xi.T


@dataclasses.dataclass(frozen=True)
class SINDyResult:
    r"""A SINDy model.

    The equations are in the units of the data it was fitted on: on standardised data
    (:func:`~labkit.dynamics.reconstruction_data`'s default) they describe
    :math:`z = (x - \mu) / s`, so their coefficients are not the system's parameters;
    fit on ``standardise=False`` data to read those off (for Lorenz-63,
    :math:`\dot x = \sigma (y - x)` appears as ``-10 x + 10 y``).

    Attributes:
        coefficients: :math:`\Xi`, ``[N, n_features]`` (float64).
        feature_names: the library's terms (``"1"``, ``"x0"``, ``"x0 x1"``, ...).
        equations: one readable equation per dimension.
        seconds: wall time of the fit.
        config, data: the settings and the data.
        model: the fitted ``pysindy.SINDy``.
        name: ``"SINDy"``.
    """

    coefficients: torch.Tensor
    feature_names: tuple[str, ...]
    equations: tuple[str, ...]
    seconds: float
    config: SINDyConfig
    data: ReconstructionData = dataclasses.field(repr=False)
    model: Any = dataclasses.field(repr=False)
    field: _Polynomial = dataclasses.field(repr=False)
    name: str = "SINDy"

    def as_dict(self) -> dict[str, Any]:
        """Plain numbers and strings: ``name``, ``equations`` (one string per dimension),
        ``n_terms`` (non-zero coefficients), ``seconds``."""
        return {"name": self.name, "equations": list(self.equations),
                "n_terms": int((self.coefficients != 0).sum()), "seconds": float(self.seconds)}

    def summary(self) -> str:
        """The fitted equations, one line per dimension (``x0' = ...``)."""
        lines = [f"{self.name}: {int((self.coefficients != 0).sum())} terms, fitted in "
                 f"{self.seconds:.2f} s"]
        lines += [f"  x{i}' = {eq}" for i, eq in enumerate(self.equations)]
        return "\n".join(lines)

    def coefficient(self, dim: int, term: str) -> float:
        """The coefficient of library term ``term`` (e.g. ``"x0 x2"``) in equation ``dim``."""
        if term not in self.feature_names:
            raise ConfigError(f"term must be one of {list(self.feature_names)}, got {term!r}")
        return float(self.coefficients[dim, self.feature_names.index(term)])

    def vector_field(self, x: torch.Tensor) -> torch.Tensor:
        """The learned :math:`\\dot x` at ``x`` ``[..., N]``."""
        return self.field(torch.zeros(()), torch.as_tensor(x, dtype=torch.float64))

    def forecast(self, x0: torch.Tensor, n_steps: int) -> torch.Tensor:
        """States ``n_steps`` samples after each start ``[B, N]`` (RK4), for
        :func:`~labkit.dynamics.prediction_error`."""
        h = self.data.dt / self.config.substeps
        y = torch.as_tensor(x0, dtype=torch.float64)
        t = torch.zeros((), dtype=torch.float64)
        with torch.no_grad():
            for _ in range(n_steps * self.config.substeps):
                y = rk4_step(self.field, t, y, h)
        return y

    def generate(self, n_steps: int, x0: Any = None) -> torch.Tensor:
        """The learned ODE integrated with RK4 (``substeps`` per sample), ``[n_steps + 1, N]``.

        Raises:
            DivergenceError: a non-finite or escaping state, naming the step (sample).
        """
        check_n(n_steps)
        y0 = start(self.data, x0)
        s = self.config.substeps
        bound = escape_bound(self.data)
        traj = rk4(self.field, y0, (0.0, n_steps * self.data.dt), self.data.dt / s, save_every=s,
                   bound=bound, fast="eager")
        return check_generated(traj.y, bound, self.name)


def train_sindy(data: ReconstructionData | Any, config: SINDyConfig = SINDyConfig()
                ) -> SINDyResult:
    """Fit SINDy (pysindy's ``PolynomialLibrary``, ``STLSQ``, ``FiniteDifference``) to the
    training series at its sampling interval ``data.dt``.

    Example:
        >>> from labkit.dynamics.reconstruction import reconstruction_data
        >>> d = reconstruction_data(n_steps=2000, dt=0.01, n_test=0, standardise=False)
        >>> res = train_sindy(d)
        >>> round(res.coefficient(0, "x1"), 1)  # Lorenz-63: dx/dt = 10 (y - x)
        10.0
    """
    import pysindy as ps

    began = time.perf_counter()
    data = as_data(data)
    if not isinstance(config, SINDyConfig):
        raise ConfigError(f"config must be a SINDyConfig, got {type(config).__name__}")
    names = [f"x{i}" for i in range(data.n_obs)]
    library = ps.PolynomialLibrary(degree=config.degree)
    model = ps.SINDy(
        optimizer=ps.STLSQ(threshold=config.threshold, alpha=config.alpha,
                           max_iter=config.max_iter),
        feature_library=library,
        differentiation_method=ps.FiniteDifference(order=config.fd_order))
    model.fit(data.train.numpy(), t=data.dt, feature_names=names)
    xi = torch.as_tensor(model.coefficients(), dtype=torch.float64)
    powers = torch.as_tensor(library.powers_, dtype=torch.float64)
    if not bool(torch.isfinite(xi).all()):
        raise DivergenceError(f"SINDy's regression gave non-finite coefficients: {xi.tolist()}")
    return SINDyResult(
        coefficients=xi, feature_names=tuple(model.get_feature_names()),
        equations=tuple(model.equations()), seconds=time.perf_counter() - began,
        config=config, data=data, model=model, field=_Polynomial(powers, xi))


