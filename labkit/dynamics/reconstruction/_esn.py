"""An echo state network (reservoir computer) as a reconstruction baseline
(Jaeger 2001; the settings of Pathak et al. 2018), see :mod:`labkit.dynamics.reconstruction._baselines`."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import torch

from labkit.core.config import Config, check_int, check_positive, check_range
from labkit.core.rng import make_generator, uniform
from labkit.dynamics.reconstruction._data import ReconstructionData
from labkit.dynamics.reconstruction._free_run import (
    as_data,
    check_generated,
    check_n,
    escape_bound,
    start,
)
from labkit.errors import ConfigError, DataError

__all__ = ['ESNConfig', 'ESNResult', 'EchoStateNetwork', 'train_esn']


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
    """The reservoir and readout of an :class:`ESNConfig`, on the CPU.

    :meth:`drive` runs the reservoir on a series; :meth:`fit_readout` solves the ridge
    regression; :meth:`run_closed_loop` feeds the readout back.

    Args:
        n_obs: the dimension :math:`N` of the series.
        config: the settings.
        seed: seeds the reservoir (an int, a :class:`torch.Generator`, or None).
        dtype: of the reservoir, the states and the readout. float64 by default, unlike
            the trained networks' float32: the readout is a closed-form ridge regression
            whose normal equations, at the default ``ridge`` of 1e-8, need float64's
            precision.
    """

    def __init__(self, n_obs: int, config: ESNConfig = ESNConfig(), *,
                 seed: int | torch.Generator | None = 0,
                 dtype: torch.dtype = torch.float64) -> None:
        check_int("n_obs", n_obs)
        if not isinstance(config, ESNConfig):
            raise ConfigError(f"config must be an ESNConfig, got {type(config).__name__}")
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise ConfigError(f"dtype must be a floating torch.dtype, got {dtype!r}")
        self.config, self.n_obs, self.dtype = config, n_obs, dtype
        gen = make_generator(seed)
        d = config.reservoir_size
        f64 = torch.float64
        # Drawn in float64 (the same numbers in every dtype), scaled, then cast.
        mask = torch.rand(d, d, generator=gen, dtype=f64) < min(1.0, config.degree / d)
        a = torch.where(mask, uniform((d, d), 1.0, gen), 0.0)
        rho = float(torch.linalg.eigvals(a).abs().max())
        if rho == 0.0:
            raise ConfigError(f"the random reservoir of size {d} with degree {config.degree} "
                              "has no non-zero eigenvalue; raise degree")
        self.A = (a * (config.spectral_radius / rho)).to(dtype)
        w_in = torch.zeros(d, n_obs, dtype=f64)
        w_in[torch.arange(d), torch.randint(0, n_obs, (d,), generator=gen)] = uniform(
            (d,), config.input_scaling, gen)
        self.W_in = w_in.to(dtype)
        self.b = uniform((d,), config.bias_scaling, gen, dtype=dtype)
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
        u = u.to(self.dtype)
        r = torch.zeros(self.config.reservoir_size, dtype=self.dtype) if r0 is None else r0
        out = torch.empty(u.shape[0], r.shape[-1], dtype=self.dtype)
        for t in range(u.shape[0]):
            r = self.update(r, u[t])
            out[t] = r
        return out

    def fit_readout(self, states: torch.Tensor, targets: torch.Tensor) -> float:
        """Ridge regression :math:`W_{out} = Y^T X (X^T X + \\lambda T I)^{-1}`; returns
        the mean squared one-step (teacher-forced) error on these samples."""
        x = self.features(states)
        targets = targets.to(x.dtype)
        gram = x.T @ x + self.config.ridge * x.shape[0] * torch.eye(x.shape[1], dtype=x.dtype)
        w_out = torch.linalg.solve(gram, x.T @ targets).T
        self.W_out = w_out
        return float(((x @ w_out.T - targets) ** 2).mean())

    def readout(self, r: torch.Tensor) -> torch.Tensor:
        if self.W_out is None:
            raise ConfigError("the readout is not trained yet: call fit_readout first")
        return self.features(r) @ self.W_out.T

    def run_closed_loop(self, r: torch.Tensor, u0: torch.Tensor, n_steps: int) -> torch.Tensor:
        """``[n_steps + 1, N]``: ``u0``, then ``n_steps`` outputs, each fed back as the next
        input."""
        out = torch.empty(n_steps + 1, self.n_obs, dtype=self.dtype)
        out[0] = u = u0.to(self.dtype)
        for t in range(n_steps):
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

    def as_dict(self) -> dict[str, Any]:
        """Plain numbers and strings: ``name``, ``reservoir_size``, ``train_mse``,
        ``seconds``."""
        return {"name": self.name, "reservoir_size": self.config.reservoir_size,
                "train_mse": float(self.train_mse), "seconds": float(self.seconds)}

    def summary(self) -> str:
        """One line: the reservoir, the readout's one-step error and the fitting time."""
        return (f"{self.name} (D = {self.config.reservoir_size}): one-step training MSE "
                f"{self.train_mse:.3g}, fitted in {self.seconds:.2f} s")

    def generate(self, n_steps: int, x0: Any = None, *, context: Any = None) -> torch.Tensor:
        """A closed-loop series ``[n_steps + 1, N]`` from ``x0``.

        The reservoir starts from its state at the end of the training series (so with
        the default ``x0``, the first test sample, which continues the training series
        of :func:`~labkit.dynamics.reconstruction_data`, it is in step with the data);
        ``context``, a true series ``[k, N]`` that precedes ``x0``, re-synchronises it
        from zero instead.

        Raises:
            DivergenceError: a non-finite or escaping output, naming the step.
        """
        check_n(n_steps)
        u0 = start(self.data, x0)
        r = self.state
        if context is not None:
            c = torch.as_tensor(context, dtype=torch.float64).detach().cpu()
            if c.ndim != 2 or c.shape[1] != self.data.n_obs:
                raise DataError(f"context must have shape [k, {self.data.n_obs}], got "
                                f"{tuple(c.shape)}")
            r = self.esn.drive(c)[-1]
        y = self.esn.run_closed_loop(r, u0, n_steps).to(torch.float64)
        return check_generated(y, escape_bound(self.data), self.name)


def train_esn(data: ReconstructionData | Any, config: ESNConfig = ESNConfig(), *,
              seed: int | torch.Generator | None = 0,
              dtype: torch.dtype = torch.float64) -> ESNResult:
    """Drive a random reservoir with the training series and fit its readout to predict
    the next sample (closed form).

    Args:
        data: a :class:`~labkit.dynamics.ReconstructionData` (or an array, wrapped by
            :meth:`ReconstructionData.from_array
            <labkit.dynamics.ReconstructionData.from_array>`).
        config: the settings.
        seed: seeds the reservoir.
        dtype: of the network (see :class:`EchoStateNetwork`); generated series are
            float64 either way.

    Raises:
        DataError: a training series not longer than ``washout + 1``.

    Example:
        >>> from labkit.dynamics.reconstruction import reconstruction_data
        >>> d = reconstruction_data(n_steps=600, dt=0.01, n_test=50)
        >>> res = train_esn(d, ESNConfig(reservoir_size=50), seed=0)
        >>> res.generate(10).shape
        torch.Size([11, 3])
    """
    began = time.perf_counter()
    data = as_data(data)
    if not isinstance(config, ESNConfig):
        raise ConfigError(f"config must be an ESNConfig, got {type(config).__name__}")
    u = data.train
    if u.shape[0] <= config.washout + 1:
        raise DataError(f"the training series has {u.shape[0]} samples; washout="
                        f"{config.washout} needs more than {config.washout + 1}")
    esn = EchoStateNetwork(data.n_obs, config, seed=seed, dtype=dtype)
    states = esn.drive(u)  # row t follows input u[t] and predicts u[t + 1]
    last = states[-1].clone()
    mse = esn.fit_readout(states[config.washout:-1], u[config.washout + 1:])
    return ESNResult(esn=esn, train_mse=mse, state=last, seconds=time.perf_counter() - began,
                     config=config, data=data)


