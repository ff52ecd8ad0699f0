r"""Baselines for dynamical-systems reconstruction, judged on the same data and metrics as
the shPLRNN: an echo state network (reservoir computer), SINDy (sparse regression of the
vector field, through pysindy) and a neural ODE.

Every trainer takes a :class:`~labkit.dynamics.ReconstructionData` and returns a result
with the same small interface as :class:`~labkit.dynamics.GTFResult`:

- ``generate(n, x0=None) -> Tensor [n + 1, N]``: a free-running (autonomous) series in the
  data's units, float64 on the CPU, row 0 being ``x0`` (default: the first test sample,
  else the last training sample); :class:`~labkit.errors.DivergenceError` naming the
  step when it leaves the finite numbers or escapes far beyond the data
  (:data:`ESCAPE_FACTOR`);
- ``name``: what kind of model it is; ``seconds``: the wall time of training.

:func:`baseline_table` puts any such results (GTF runs included) on one table of
:math:`D_{stsp}` and :math:`D_H` against the test series, beside the finite-sample floor;
a model that diverges gets a row that says at which step, never a NaN.

pysindy is imported inside :func:`train_sindy` only, so ``import labkit.dynamics`` stays
light.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from labkit.core.config import Config, check_in, check_int, check_positive, check_range
from labkit.core.device import resolve_device
from labkit.core.integrate import rk4, rk4_step
from labkit.core.rng import make_generator
from labkit.core.train import (
    Checkpoint,
    History,
    exponential_schedule,
    guarded_step,
    run,
    sample_windows,
    set_lr,
)
from labkit.dynamics._dsr_data import ReconstructionData, from_array
from labkit.dynamics._dsr_metrics import dsr_metrics
from labkit.errors import ConfigError, DataError, DivergenceError

__all__ = ["ESCAPE_FACTOR", "BaselineRow", "BaselineTable", "ESNConfig", "ESNResult",
           "EchoStateNetwork", "NODEConfig", "NODEResult", "SINDyConfig", "SINDyResult",
           "baseline_table", "train_esn", "train_node", "train_sindy"]

#: A generated series counts as diverged once a value exceeds this many times the
#: largest magnitude of the training series (in the data's units): far outside any
#: attractor the data show, and long before float overflow.
ESCAPE_FACTOR = 100.0


# --------------------------------------------------------------------------- shared

def _as_data(data: ReconstructionData | Any) -> ReconstructionData:
    return data if isinstance(data, ReconstructionData) else from_array(data)


def _start(data: ReconstructionData, x0: Any) -> torch.Tensor:
    """``x0`` as float64 ``[N]`` (default: first test sample, else last training one)."""
    if x0 is None:
        return (data.test[0] if data.test is not None else data.train[-1]).clone()
    x = torch.as_tensor(x0, dtype=torch.float64).detach().cpu()
    if x.shape != (data.n_obs,):
        raise DataError(f"x0 must have shape ({data.n_obs},), got {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise DataError(f"x0 must be finite, got {x.tolist()}")
    return x


def _escape_bound(data: ReconstructionData) -> float:
    return ESCAPE_FACTOR * float(data.train.abs().max().clamp_min(1.0))


def _check_generated(y: torch.Tensor, bound: float, name: str) -> torch.Tensor:
    """Raise :class:`DivergenceError` at the first step that is non-finite or beyond
    ``bound``; else ``y``."""
    bad = ~torch.isfinite(y).all(-1) | (y.abs() > bound).any(-1)
    if bool(bad.any()):
        k = int(torch.nonzero(bad)[0, 0])
        raise DivergenceError(f"{name} diverged at step {k} of {y.shape[0] - 1}: "
                              f"{y[k].tolist()} (non-finite or beyond {bound:.3g})")
    return y


def _check_n(n: int) -> None:
    check_int("n", n)


# --------------------------------------------------------------------------- ESN

@dataclasses.dataclass(frozen=True, kw_only=True)
class ESNConfig(Config):
    r"""An echo state network (Jaeger 2001, "The 'echo state' approach to analysing and
    training recurrent neural networks", GMD Report 148), in the form Pathak et al. used
    to replicate the Lorenz attractor (Pathak, Lu, Hunt, Girvan, Ott 2017, Chaos 27,
    121102; Pathak et al. 2018, PRL 120, 024102).

    The reservoir :math:`r \in \mathbb{R}^{D}` is driven by the series :math:`u_t`,

    .. math:: r_{t+1} = (1-a)\, r_t + a \tanh(A r_t + W_{in} u_t + b),
              \qquad \hat u_{t+1} = W_{out} [1, \tilde r_{t+1}],

    with :math:`A` sparse random (``degree`` non-zeros per row on average, uniform in
    :math:`[-1, 1]`, rescaled to ``spectral_radius``), :math:`W_{in}` with one non-zero per
    row uniform in :math:`[-\sigma, \sigma]` (``input_scaling``), :math:`b` uniform in
    :math:`[-\beta_b, \beta_b]` (``bias_scaling``), and :math:`\tilde r` the state with
    every second unit squared when ``square_half`` (Pathak et al. 2017: it breaks the
    :math:`r \to -r` symmetry that otherwise spoils closed-loop runs). Only
    :math:`W_{out}` is trained, by ridge regression (``ridge``) on the states after a
    ``washout``; generation feeds :math:`\hat u` back as the next input.

    Defaults follow Pathak et al. 2017's Lorenz-63 settings (:math:`D = 300`, degree 6,
    no leak) with three changes, measured on 20,000 standardised Lorenz-63 samples at
    :math:`\Delta t = 0.01`: labkit's data have unit variance (Pathak et al. fed the raw
    variables at :math:`\sigma = 0.1`), so the input scaling is 0.5; their spectral
    radius 1.2 (at :math:`\Delta t = 0.02`) gave :math:`D_{stsp}` from 1.9 to 14 over
    seeds here, 0.9 gave 0.2 to 0.6 over five seeds; and a small ridge replaces their
    :math:`\beta = 0`.

    Attributes:
        reservoir_size: :math:`D`.
        degree: average non-zeros per row of :math:`A`.
        spectral_radius: of :math:`A`.
        input_scaling: :math:`\sigma`.
        bias_scaling: :math:`\beta_b` (0: no bias).
        leak: :math:`a \in (0, 1]` (1: no leak).
        ridge: Tikhonov regularisation of the readout (>= 0), per training sample.
        washout: training samples whose states are discarded.
        square_half: square every second reservoir unit in the readout.
    """

    reservoir_size: int = 300
    degree: float = 6.0
    spectral_radius: float = 0.9
    input_scaling: float = 0.5
    bias_scaling: float = 0.0
    leak: float = 1.0
    ridge: float = 1e-8
    washout: int = 100
    square_half: bool = True

    def validate(self) -> None:
        check_int("reservoir_size", self.reservoir_size)
        check_positive("degree", self.degree)
        check_positive("spectral_radius", self.spectral_radius)
        check_positive("input_scaling", self.input_scaling)
        check_positive("bias_scaling", self.bias_scaling, allow_zero=True)
        check_range("leak", self.leak, 0.0, 1.0)
        check_positive("leak", self.leak)
        check_positive("ridge", self.ridge, allow_zero=True)
        check_int("washout", self.washout, least=0)


class EchoStateNetwork:
    """The reservoir and readout of an :class:`ESNConfig` (float64, CPU).

    :meth:`drive` runs the reservoir on a series; :meth:`fit_readout` solves the ridge
    regression; :meth:`run_closed_loop` feeds the readout back.
    """

    def __init__(self, n_obs: int, config: ESNConfig = ESNConfig(), *,
                 seed: int | torch.Generator = 0) -> None:
        check_int("n_obs", n_obs)
        if not isinstance(config, ESNConfig):
            raise ConfigError(f"config must be an ESNConfig, got {type(config).__name__}")
        self.config, self.n_obs = config, n_obs
        gen = make_generator(seed)
        d = config.reservoir_size
        f64 = dict(dtype=torch.float64)
        mask = torch.rand(d, d, generator=gen, **f64) < min(1.0, config.degree / d)
        a = torch.where(mask, 2 * torch.rand(d, d, generator=gen, **f64) - 1, 0.0)
        rho = float(torch.linalg.eigvals(a).abs().max())
        if rho == 0.0:
            raise ConfigError(f"the random reservoir of size {d} with degree {config.degree} "
                              "has no non-zero eigenvalue; raise degree")
        self.A = a * (config.spectral_radius / rho)
        w_in = torch.zeros(d, n_obs, **f64)
        w_in[torch.arange(d), torch.randint(0, n_obs, (d,), generator=gen)] = (
            config.input_scaling * (2 * torch.rand(d, generator=gen, **f64) - 1))
        self.W_in = w_in
        self.b = config.bias_scaling * (2 * torch.rand(d, generator=gen, **f64) - 1)
        self.W_out: torch.Tensor | None = None

    def update(self, r: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """One reservoir step ``r_{t+1}`` from ``r_t`` and input ``u_t`` (batched)."""
        a = self.config.leak
        pre = torch.tanh(r @ self.A.T + u @ self.W_in.T + self.b)
        return pre if a == 1.0 else (1 - a) * r + a * pre

    def features(self, r: torch.Tensor) -> torch.Tensor:
        """``[1, r~]``: the readout's input (every second unit squared when asked)."""
        if self.config.square_half:
            r = r.clone()
            r[..., 1::2] = r[..., 1::2] ** 2
        return torch.cat([torch.ones_like(r[..., :1]), r], -1)

    def drive(self, u: torch.Tensor, r0: torch.Tensor | None = None) -> torch.Tensor:
        """Reservoir states ``[T, D]``: row ``t`` is :math:`r_{t+1}`, after input ``u[t]``."""
        r = torch.zeros(self.config.reservoir_size, dtype=torch.float64) if r0 is None else r0
        out = torch.empty(u.shape[0], r.shape[-1], dtype=torch.float64)
        for t in range(u.shape[0]):
            r = self.update(r, u[t])
            out[t] = r
        return out

    def fit_readout(self, states: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Ridge regression :math:`W_{out} = Y^T X (X^T X + \\lambda T I)^{-1}`; returns
        the mean squared one-step (teacher-forced) error on these samples."""
        x = self.features(states)
        gram = x.T @ x + self.config.ridge * x.shape[0] * torch.eye(x.shape[1], dtype=x.dtype)
        self.W_out = torch.linalg.solve(gram, x.T @ targets).T
        return float(((x @ self.W_out.T - targets) ** 2).mean())

    def readout(self, r: torch.Tensor) -> torch.Tensor:
        if self.W_out is None:
            raise ConfigError("the readout is not trained yet: call fit_readout first")
        return self.features(r) @ self.W_out.T

    def run_closed_loop(self, r: torch.Tensor, u0: torch.Tensor, n: int) -> torch.Tensor:
        """``[n + 1, N]``: ``u0``, then ``n`` outputs, each fed back as the next input."""
        out = torch.empty(n + 1, self.n_obs, dtype=torch.float64)
        out[0] = u = u0
        for t in range(n):
            r = self.update(r, u)
            u = self.readout(r)
            out[t + 1] = u
        return out


@dataclasses.dataclass(frozen=True)
class ESNResult:
    """A trained echo state network.

    Attributes:
        esn: the network (its reservoir and trained readout).
        train_mse: the readout's one-step (teacher-forced) mean squared error on the
            training series after the washout, in the data's units squared.
        state: the reservoir state after the whole training series (the state from which
            generation continues).
        seconds: wall time of training.
        config, data: the settings and the data.
        name: ``"ESN"``.
    """

    esn: EchoStateNetwork
    train_mse: float
    state: torch.Tensor
    seconds: float
    config: ESNConfig
    data: ReconstructionData = dataclasses.field(repr=False)
    name: str = "ESN"

    def generate(self, n: int, x0: Any = None, *, context: Any = None) -> torch.Tensor:
        """A closed-loop series ``[n + 1, N]`` from ``x0``.

        The reservoir starts from its state at the end of the training series (so with
        the default ``x0``, the first test sample, which continues the training series
        of :func:`~labkit.dynamics.reconstruction_data`, it is in step with the data);
        ``context``, a true series ``[k, N]`` that precedes ``x0``, re-synchronises it
        from zero instead.

        Raises:
            DivergenceError: a non-finite or escaping output, naming the step.
        """
        _check_n(n)
        u0 = _start(self.data, x0)
        r = self.state
        if context is not None:
            c = torch.as_tensor(context, dtype=torch.float64).detach().cpu()
            if c.ndim != 2 or c.shape[1] != self.data.n_obs:
                raise DataError(f"context must have shape [k, {self.data.n_obs}], got "
                                f"{tuple(c.shape)}")
            r = self.esn.drive(c)[-1]
        y = self.esn.run_closed_loop(r, u0, n)
        return _check_generated(y, _escape_bound(self.data), self.name)


def train_esn(data: ReconstructionData | Any, config: ESNConfig = ESNConfig(), *,
              seed: int | torch.Generator = 0) -> ESNResult:
    """Drive a random reservoir with the training series and fit its readout to predict
    the next sample (closed form).

    Raises:
        DataError: a training series not longer than ``washout + 1``.

    Example:
        >>> from labkit.dynamics._dsr_data import reconstruction_data
        >>> d = reconstruction_data(n_steps=600, dt=0.01, n_test=50)
        >>> res = train_esn(d, ESNConfig(reservoir_size=50), seed=0)
        >>> res.generate(10).shape
        torch.Size([11, 3])
    """
    began = time.perf_counter()
    data = _as_data(data)
    if not isinstance(config, ESNConfig):
        raise ConfigError(f"config must be an ESNConfig, got {type(config).__name__}")
    u = data.train
    if u.shape[0] <= config.washout + 1:
        raise DataError(f"the training series has {u.shape[0]} samples; washout="
                        f"{config.washout} needs more than {config.washout + 1}")
    esn = EchoStateNetwork(data.n_obs, config, seed=seed)
    states = esn.drive(u)  # row t follows input u[t] and predicts u[t + 1]
    last = states[-1].clone()
    mse = esn.fit_readout(states[config.washout:-1], u[config.washout + 1:])
    return ESNResult(esn=esn, train_mse=mse, state=last, seconds=time.perf_counter() - began,
                     config=config, data=data)


# --------------------------------------------------------------------------- SINDy

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

    def generate(self, n: int, x0: Any = None) -> torch.Tensor:
        """The learned ODE integrated with RK4 (``substeps`` per sample), ``[n + 1, N]``.

        Raises:
            DivergenceError: a non-finite or escaping state, naming the step (sample).
        """
        _check_n(n)
        y0 = _start(self.data, x0)
        s = self.config.substeps
        bound = _escape_bound(self.data)
        traj = rk4(self.field, y0, (0.0, n * self.data.dt), self.data.dt / s, save_every=s,
                   bound=bound, fast="eager")
        return _check_generated(traj.y, bound, self.name)


def train_sindy(data: ReconstructionData | Any, config: SINDyConfig = SINDyConfig()
                ) -> SINDyResult:
    """Fit SINDy (pysindy's ``PolynomialLibrary``, ``STLSQ``, ``FiniteDifference``) to the
    training series at its sampling interval ``data.dt``.

    Example:
        >>> from labkit.dynamics._dsr_data import reconstruction_data
        >>> d = reconstruction_data(n_steps=2000, dt=0.01, n_test=0, standardise=False)
        >>> res = train_sindy(d)
        >>> round(res.coefficient(0, "x1"), 1)  # Lorenz-63: dx/dt = 10 (y - x)
        10.0
    """
    import pysindy as ps

    began = time.perf_counter()
    data = _as_data(data)
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


# --------------------------------------------------------------------------- neural ODE

@dataclasses.dataclass(frozen=True, kw_only=True)
class NODEConfig(Config):
    r"""A neural ODE (Chen, Rubanova, Bettencourt, Duvenaud 2018): an MLP vector field
    :math:`\dot x = s \odot f_\theta(x)` (``s`` the standard deviation of the training
    series' finite-difference velocities, so that :math:`f_\theta` starts at the right
    scale) trained on multi-step rollouts: from each window's first sample, ``seq_len``
    RK4 steps of ``dt`` (``substeps`` each), mean squared error against the window.

    Small CPU defaults; for a real run raise ``steps``, ``hidden_dim`` and ``seq_len``.

    Attributes:
        hidden_dim, depth: the MLP's width and number of hidden layers.
        activation: ``"silu"``, ``"tanh"`` or ``"softplus"``.
        seq_len: predicted samples per window.
        batch_size: windows per step.
        steps: optimisation steps.
        lr_start, lr_end: Adam's learning rate, decaying exponentially.
        substeps: RK4 steps per sample (training and generation).
        grad_clip: gradient-norm clipping (0: none).
    """

    hidden_dim: int = 64
    depth: int = 2
    activation: str = "silu"
    seq_len: int = 10
    batch_size: int = 32
    steps: int = 500
    lr_start: float = 3e-3
    lr_end: float = 1e-4
    substeps: int = 1
    grad_clip: float = 1.0

    def validate(self) -> None:
        for name in ("hidden_dim", "depth", "seq_len", "batch_size", "steps", "substeps"):
            check_int(name, getattr(self, name))
        check_in("activation", self.activation, ("silu", "tanh", "softplus"))
        check_positive("lr_start", self.lr_start)
        check_positive("lr_end", self.lr_end)
        if self.lr_end > self.lr_start:
            raise ConfigError(f"lr_end must be <= lr_start={self.lr_start}, got {self.lr_end}")
        check_positive("grad_clip", self.grad_clip, allow_zero=True)


class _MLPField(nn.Module):
    def __init__(self, n: int, config: NODEConfig, scale: torch.Tensor,
                 gen: torch.Generator) -> None:
        super().__init__()
        act = {"silu": nn.SiLU, "tanh": nn.Tanh, "softplus": nn.Softplus}[config.activation]
        layers: list[nn.Module] = []
        width = n
        for _ in range(config.depth):
            layers += [nn.Linear(width, config.hidden_dim), act()]
            width = config.hidden_dim
        layers.append(nn.Linear(width, n))
        self.net = nn.Sequential(*layers)
        with torch.no_grad():  # explicit randomness: re-draw torch's default init from gen
            for p in self.net.parameters():
                bound = 1.0 / math.sqrt(p.shape[-1] if p.ndim == 2 else width)
                p.copy_((2 * torch.rand(p.shape, generator=gen) - 1) * bound)
        self.register_buffer("scale", scale.to(torch.float32))

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.scale * self.net(x)


class _NODETrainer:
    def __init__(self, data: ReconstructionData, config: NODEConfig, seed: int,
                 device: str | torch.device) -> None:
        t = data.train.shape[0]
        if t < config.seq_len + 2:
            raise DataError(f"the training series has {t} samples; seq_len={config.seq_len} "
                            f"needs at least {config.seq_len + 2}")
        self.data, self.config = data, config
        self.device = resolve_device(device)
        self.rng = make_generator(seed)
        scale = (data.train.diff(dim=0) / data.dt).std(0).clamp_min(1e-12)
        self.field = _MLPField(data.n_obs, config, scale, self.rng).to(self.device)
        self.optimizer = torch.optim.Adam(self.field.parameters(), lr=config.lr_start)
        self._x = data.train.to(self.device, torch.float32)
        self.history = History()
        self._lock = threading.Lock()

    def rollout(self, x0: torch.Tensor, n: int) -> torch.Tensor:
        """``[B, n, N]``: the differentiable RK4 states 1..n samples after ``x0`` ``[B, N]``."""
        h = self.data.dt / self.config.substeps
        t = torch.zeros((), device=x0.device)
        out, y = [], x0
        for _ in range(n):
            for _ in range(self.config.substeps):
                y = rk4_step(self.field, t, y, h)
            out.append(y)
        return torch.stack(out, 1)

    def step(self, i: int) -> dict[str, float]:
        cfg = self.config
        lr = exponential_schedule(i, cfg.steps, cfg.lr_start, cfg.lr_end)
        x = sample_windows(self._x, cfg.seq_len + 1, cfg.batch_size, self.rng)
        with self._lock:
            set_lr(self.optimizer, lr)
            self.optimizer.zero_grad(set_to_none=True)
            loss = nn.functional.mse_loss(self.rollout(x[:, 0], cfg.seq_len), x[:, 1:])
            loss.backward()
            finite = guarded_step(self.optimizer, loss, clip=cfg.grad_clip)
        return {"loss": loss.item() if finite else math.nan, "lr": lr}

    def state_dict(self) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy({"field": self.field.state_dict(),
                                  "optimizer": self.optimizer.state_dict(),
                                  "rng": self.rng.get_state()})

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with self._lock:
            self.field.load_state_dict(state["field"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.rng.set_state(state["rng"])


@dataclasses.dataclass(frozen=True)
class NODEResult:
    """A trained (or stopped) neural ODE.

    Attributes:
        field: the vector field module, ``field(t, x) -> dx/dt`` (float32, on the
            training device).
        history: per-step ``loss`` and ``lr``.
        status, message: as in :class:`~labkit.core.train.FitResult`.
        seconds: wall time of training.
        config, data: the settings and the data.
        name: ``"NeuralODE"``.
    """

    field: nn.Module
    history: History
    status: str
    message: str
    seconds: float
    config: NODEConfig
    data: ReconstructionData = dataclasses.field(repr=False)
    trainer: Any = dataclasses.field(repr=False)
    name: str = "NeuralODE"

    def forecast(self, x0: torch.Tensor, n_steps: int) -> torch.Tensor:
        """States ``n_steps`` samples after each start ``[B, N]``, for
        :func:`~labkit.dynamics.prediction_error`."""
        dev = next(self.field.parameters()).device
        with torch.no_grad():
            y = self.trainer.rollout(torch.as_tensor(x0).to(dev, torch.float32), n_steps)
        return y[:, -1].to(torch.as_tensor(x0).dtype).cpu()

    def generate(self, n: int, x0: Any = None) -> torch.Tensor:
        """The learned ODE integrated with RK4 (float32 on the training device), returned
        ``[n + 1, N]`` float64 on the CPU.

        Raises:
            DivergenceError: a non-finite or escaping state, naming the step (sample).
        """
        _check_n(n)
        dev = next(self.field.parameters()).device
        y0 = _start(self.data, x0).to(dev, torch.float32)
        s = self.config.substeps
        bound = _escape_bound(self.data)
        with self.trainer._lock:
            traj = rk4(self.field, y0, (0.0, n * self.data.dt), self.data.dt / s, save_every=s,
                       bound=bound)
        return _check_generated(traj.y.to("cpu", torch.float64), bound, self.name)


def train_node(
    data: ReconstructionData | Any,
    config: NODEConfig = NODEConfig(),
    *,
    seed: int = 0,
    device: str | torch.device = "auto",
    checkpoint: str | Path | Checkpoint | None = None,
    progress: bool = False,
    callbacks: Sequence[Any] = (),
    stop: threading.Event | None = None,
    on_nan: Literal["raise", "stop"] = "raise",
) -> NODEResult:
    """Train a neural ODE on ``data`` through :func:`labkit.core.train.run`.

    Args:
        data: a :class:`ReconstructionData` (or an array, wrapped by ``from_array``).
        config: a :class:`NODEConfig`.
        seed: seeds the initial weights and the batches.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        checkpoint, progress, callbacks, stop, on_nan: as in :func:`labkit.core.train.run`
            (a non-finite loss skips the update and stops or raises).

    Example:
        >>> from labkit.dynamics._dsr_data import reconstruction_data
        >>> d = reconstruction_data(n_steps=500, dt=0.01, n_test=50)
        >>> res = train_node(d, NODEConfig(hidden_dim=8, steps=3), device="cpu")
        >>> res.status, res.generate(5).shape
        ('finished', torch.Size([6, 3]))
    """
    data = _as_data(data)
    if not isinstance(config, NODEConfig):
        raise ConfigError(f"config must be a NODEConfig, got {type(config).__name__}")
    trainer = _NODETrainer(data, config, seed, device)
    res = run(trainer, config.steps, checkpoint=checkpoint, callbacks=callbacks, stop=stop,
              on_nan=on_nan, progress=progress)
    return NODEResult(field=trainer.field, history=res.history, status=res.status,
                      message=res.message, seconds=res.seconds, config=config,
                      data=data, trainer=trainer)


# --------------------------------------------------------------------------- table

@dataclasses.dataclass(frozen=True)
class BaselineRow:
    """One model on the table.

    Attributes:
        label: the key it was given under.
        d_stsp, d_h: its metrics, or ``None`` when it diverged.
        seconds: its training wall time (``None`` when the result has none).
        diverged_at: the step at which generation diverged, or ``None``.
        message: ``""``, or the divergence in words.
    """

    label: str
    d_stsp: float | None
    d_h: float | None
    seconds: float | None
    diverged_at: int | None = None
    message: str = ""

    @property
    def status(self) -> str:
        """``"ok"``, ``"diverged at step k"``, or ``"diverged"`` when no step was named."""
        if self.d_stsp is not None:
            return "ok"
        return "diverged" if self.diverged_at is None else f"diverged at step {self.diverged_at}"


@dataclasses.dataclass(frozen=True)
class BaselineTable:
    """Models' :math:`D_{stsp}` and :math:`D_H` on one test series, beside the floor.

    Attributes:
        rows: one per model, in the order given.
        floor_d_stsp, floor_d_h: the metrics between two true stretches (``None`` without
            a floor).
        floor_source: which stretches gave the floor.
        n_generate: generated steps per model (series of ``n_generate + 1`` samples).
    """

    rows: tuple[BaselineRow, ...]
    floor_d_stsp: float | None
    floor_d_h: float | None
    floor_source: str
    n_generate: int

    def records(self) -> list[dict[str, Any]]:
        """Rows as dictionaries (for a DataFrame), the floor last."""
        out = [{"model": r.label, "D_stsp": r.d_stsp, "D_H": r.d_h, "seconds": r.seconds,
                "status": r.status} for r in self.rows]
        if self.floor_d_stsp is not None:
            out.append({"model": "floor (true vs true)", "D_stsp": self.floor_d_stsp,
                        "D_H": self.floor_d_h, "seconds": None, "status": self.floor_source})
        return out

    def __str__(self) -> str:
        def num(v: float | None, fmt: str) -> str:
            return "-" if v is None else format(v, fmt)

        records = self.records()
        w = max([22, *(len(rec["model"]) + 1 for rec in records)])
        lines = [f"{'model':<{w}}{'D_stsp':>10}{'D_H':>8}{'train s':>10}  status"]
        for rec in records:
            d_stsp = num(rec["D_stsp"], ".3g") if rec["D_stsp"] is not None else (
                "diverged" if rec["status"].startswith("diverged") else "-")
            lines.append(f"{rec['model']:<{w}}{d_stsp:>10}{num(rec['D_H'], '.3f'):>8}"
                         f"{num(rec['seconds'], '.1f'):>10}  {rec['status']}")
        return "\n".join(lines)


def baseline_table(
    data: ReconstructionData,
    results: Mapping[str, Any],
    *,
    n_generate: int | None = None,
    floor: bool = True,
    bins: int = 30,
    smoothing: float = 20.0,
) -> BaselineTable:
    r""":math:`D_{stsp}` and :math:`D_H` of each model's free-running series against the
    test series, with the finite-sample floor.

    Each result's ``generate(n_generate, x0)`` is called from the first test sample; the
    series is compared with ``data.test[: n_generate + 1]``. The floor compares that
    stretch with a second true stretch of the same length: the next
    ``n_generate + 1`` test samples when the test series is long enough, else the last
    ``n_generate + 1`` training samples (which carry the training series' observation
    noise, if any; ``floor_source`` says which).

    Args:
        data: the data the models were trained on; must have a test series.
        results: label -> a result with ``generate(n, x0)`` (any baseline here, a
            :class:`~labkit.dynamics.GTFResult`, ...) and optionally ``seconds``.
        n_generate: generated steps (default: the whole test series, ``len(test) - 1``).
        floor: compute the floor.
        bins, smoothing: the metrics' settings.

    Returns:
        A :class:`BaselineTable`; a model whose generation raises
        :class:`DivergenceError` (or produces a series the metrics reject as diverged)
        gets a row with ``d_stsp = d_h = None`` and ``status`` ``"diverged at step k"``.

    Raises:
        DataError: no test series, or one too short for ``n_generate``.
    """
    if data.test is None:
        raise DataError("baseline_table needs data with a test series (n_test > 0)")
    n_test = data.test.shape[0]
    n = n_test - 1 if n_generate is None else n_generate
    check_int("n_generate", n)
    if n + 1 > n_test:
        raise DataError(f"n_generate={n} needs {n + 1} test samples, the test series has "
                        f"{n_test}")
    x_true = data.test[: n + 1]
    reference, source = None, ""
    if floor:
        if n_test >= 2 * (n + 1):
            reference, source = data.test[n + 1: 2 * (n + 1)], "test vs later test"
        elif data.train.shape[0] >= n + 1:
            reference, source = data.train[-(n + 1):], "test vs end of training series"
        else:
            raise DataError(f"no second true stretch of {n + 1} samples for the floor "
                            f"(test {n_test}, train {data.train.shape[0]}); pass floor=False "
                            "or a smaller n_generate")
    rows = []
    fl = None
    for label, res in results.items():
        seconds = getattr(res, "seconds", None)
        try:
            x_gen = res.generate(n, data.test[0])
            _check_generated(torch.as_tensor(x_gen, dtype=torch.float64), math.inf, str(label))
        except DivergenceError as err:
            rows.append(BaselineRow(label=str(label), d_stsp=None, d_h=None, seconds=seconds,
                                    diverged_at=_step_of(str(err)), message=str(err)))
            continue
        m = dsr_metrics(x_true, x_gen, reference=reference if fl is None else None,
                        bins=bins, smoothing=smoothing)
        if fl is None and reference is not None:
            fl = (m.floor_d_stsp, m.floor_d_h)
        rows.append(BaselineRow(label=str(label), d_stsp=m.d_stsp, d_h=m.d_h, seconds=seconds))
    if fl is None and reference is not None:
        fm = dsr_metrics(x_true, reference, bins=bins, smoothing=smoothing)
        fl = (fm.d_stsp, fm.d_h)
    return BaselineTable(rows=tuple(rows), floor_d_stsp=None if fl is None else fl[0],
                         floor_d_h=None if fl is None else fl[1], floor_source=source,
                         n_generate=n)


def _step_of(message: str) -> int | None:
    """The step number in a "diverged at step k" message, if there is one."""
    import re

    hit = re.search(r"at step (\d+)", message)
    return None if hit is None else int(hit.group(1))
