"""A neural ODE (an MLP vector field integrated by RK4, trained on multi-step rollouts)
as a reconstruction baseline, through :func:`labkit.core.train.run`."""

from __future__ import annotations

import copy
import dataclasses
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from labkit.core.config import Config, check_in, check_int, check_positive
from labkit.core.device import resolve_device
from labkit.core.integrate import rk4, rk4_step
from labkit.core.rng import linear_layer, make_generator
from labkit.core.train import (
    Checkpoint,
    History,
    exponential_schedule,
    fingerprint,
    guarded_step,
    run,
    sample_windows,
    set_lr,
)
from labkit.dynamics.reconstruction._data import ReconstructionData
from labkit.dynamics.reconstruction._free_run import (
    as_data,
    check_generated,
    check_n,
    escape_bound,
    start,
)
from labkit.errors import ConfigError, DataError

__all__ = ['NODEConfig', 'NODEResult', 'train_node']


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
    """The MLP, its layers drawn from ``gen`` by :func:`labkit.core.linear_layer`
    (PyTorch's default bounds, first layer first), in ``dtype``."""

    def __init__(self, n: int, config: NODEConfig, scale: torch.Tensor,
                 gen: torch.Generator, dtype: torch.dtype) -> None:
        super().__init__()
        act = {"silu": nn.SiLU, "tanh": nn.Tanh, "softplus": nn.Softplus}[config.activation]
        layers: list[nn.Module] = []
        width = n
        for _ in range(config.depth):
            layers += [linear_layer(width, config.hidden_dim, gen, dtype=dtype), act()]
            width = config.hidden_dim
        layers.append(linear_layer(width, n, gen, dtype=dtype))
        self.net = nn.Sequential(*layers)
        self.register_buffer("scale", scale.to(dtype))

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.scale * self.net(x)


class _NODETrainer:
    def __init__(self, data: ReconstructionData, config: NODEConfig,
                 seed: int | torch.Generator | None, device: str | torch.device,
                 dtype: torch.dtype) -> None:
        t = data.train.shape[0]
        if t < config.seq_len + 2:
            raise DataError(f"the training series has {t} samples; seq_len={config.seq_len} "
                            f"needs at least {config.seq_len + 2}")
        self.data, self.config = data, config
        self.device = resolve_device(device)
        self.rng = make_generator(seed)
        self.dtype = dtype
        scale = (data.train.diff(dim=0) / data.dt).std(0).clamp_min(1e-12)
        self.field = _MLPField(data.n_obs, config, scale, self.rng, dtype).to(self.device)
        self.optimizer = torch.optim.Adam(self.field.parameters(), lr=config.lr_start)
        self._x = data.train.to(self.device, dtype)
        self.history = History()
        self._lock = threading.Lock()

    def rollout(self, x0: torch.Tensor, n: int) -> torch.Tensor:
        """``[B, n, N]``: the differentiable RK4 states 1..n samples after ``x0`` ``[B, N]``."""
        h = self.data.dt / self.config.substeps
        t = torch.zeros((), dtype=x0.dtype, device=x0.device)
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

    def fingerprint(self) -> str:
        """The settings, the dtype and the training series (see :func:`labkit.core.run`)."""
        return fingerprint(self.config, str(self.dtype), self.data.train)

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
        field: the vector field module, ``field(t, x) -> dx/dt`` (in the training dtype,
            on the training device).
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

    def as_dict(self) -> dict[str, Any]:
        """Plain numbers and strings: ``name``, ``status``, ``message``, ``steps``
        (recorded), ``loss`` (the last, NaN before the first step) and ``seconds``."""
        return {"name": self.name, "status": self.status, "message": self.message,
                "steps": len(self.history),
                "loss": float(self.history.last().get("loss", math.nan)),
                "seconds": float(self.seconds)}

    def summary(self) -> str:
        """One line: how the run ended and its last loss."""
        d = self.as_dict()
        line = (f"{self.name}: {d['status']} after {d['steps']} steps in {d['seconds']:.1f} s, "
                f"loss {d['loss']:.4g}")
        return line + (f" ({self.message})" if self.message else "")

    def forecast(self, x0: torch.Tensor, n_steps: int) -> torch.Tensor:
        """States ``n_steps`` samples after each start ``[B, N]``, for
        :func:`~labkit.dynamics.prediction_error`."""
        p = next(self.field.parameters())
        with torch.no_grad():
            y = self.trainer.rollout(torch.as_tensor(x0).to(p.device, p.dtype), n_steps)
        return y[:, -1].to(torch.as_tensor(x0).dtype).cpu()

    def generate(self, n_steps: int, x0: Any = None) -> torch.Tensor:
        """The learned ODE integrated with RK4 (in the training dtype, on the training
        device), returned ``[n_steps + 1, N]`` float64 on the CPU.

        Raises:
            DivergenceError: a non-finite or escaping state, naming the step (sample).
        """
        check_n(n_steps)
        p = next(self.field.parameters())
        y0 = start(self.data, x0).to(p.device, p.dtype)
        s = self.config.substeps
        bound = escape_bound(self.data)
        with self.trainer._lock:
            traj = rk4(self.field, y0, (0.0, n_steps * self.data.dt), self.data.dt / s,
                       save_every=s, bound=bound)
        return check_generated(traj.y.to("cpu", torch.float64), bound, self.name)


# The engine's keyword arguments, as every train_* takes them (docs/api-conventions.md):
# alike by design.
def train_node(
    data: ReconstructionData | Any,
    config: NODEConfig = NODEConfig(),
    *,
    seed: int | torch.Generator | None = 0,
    device: str | torch.device = "auto",
    dtype: torch.dtype = torch.float32,
    checkpoint: str | Path | Checkpoint | None = None,
    progress: bool = False,
    callbacks: Sequence[Any] = (),
    stop: threading.Event | None = None,
    on_nan: Literal["raise", "stop"] = "raise",
) -> NODEResult:
    """Train a neural ODE on ``data`` through :func:`labkit.core.train.run`.

    Args:
        data: a :class:`ReconstructionData` (or an array, wrapped by
            :meth:`ReconstructionData.from_array
            <labkit.dynamics.ReconstructionData.from_array>`).
        config: a :class:`NODEConfig`.
        seed: seeds the initial weights and the batches (an int, a
            :class:`torch.Generator`, or None for a fresh seed).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        dtype: of the network and the training computation.
        checkpoint, progress, callbacks, stop, on_nan: as in :func:`labkit.core.train.run`
            (a non-finite loss skips the update and stops or raises).

    Example:
        >>> from labkit.dynamics.reconstruction import reconstruction_data
        >>> d = reconstruction_data(n_steps=500, dt=0.01, n_test=50)
        >>> res = train_node(d, NODEConfig(hidden_dim=8, steps=3), device="cpu")
        >>> res.status, res.generate(5).shape
        ('finished', torch.Size([6, 3]))
    """
    data = as_data(data)
    if not isinstance(config, NODEConfig):
        raise ConfigError(f"config must be a NODEConfig, got {type(config).__name__}")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ConfigError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    trainer = _NODETrainer(data, config, seed, device, dtype)
    res = run(trainer, config.steps, checkpoint=checkpoint, callbacks=callbacks, stop=stop,
              on_nan=on_nan, progress=progress)
    return NODEResult(field=trainer.field, history=res.history, status=res.status,
                      message=res.message, seconds=res.seconds, config=config,
                      data=data, trainer=trainer)
