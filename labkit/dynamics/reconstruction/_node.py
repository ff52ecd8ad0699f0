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
        check_n(n)
        dev = next(self.field.parameters()).device
        y0 = start(self.data, x0).to(dev, torch.float32)
        s = self.config.substeps
        bound = escape_bound(self.data)
        with self.trainer._lock:
            traj = rk4(self.field, y0, (0.0, n * self.data.dt), self.data.dt / s, save_every=s,
                       bound=bound)
        return check_generated(traj.y.to("cpu", torch.float64), bound, self.name)


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
        >>> from labkit.dynamics.reconstruction import reconstruction_data
        >>> d = reconstruction_data(n_steps=500, dt=0.01, n_test=50)
        >>> res = train_node(d, NODEConfig(hidden_dim=8, steps=3), device="cpu")
        >>> res.status, res.generate(5).shape
        ('finished', torch.Size([6, 3]))
    """
    data = as_data(data)
    if not isinstance(config, NODEConfig):
        raise ConfigError(f"config must be a NODEConfig, got {type(config).__name__}")
    trainer = _NODETrainer(data, config, seed, device)
    res = run(trainer, config.steps, checkpoint=checkpoint, callbacks=callbacks, stop=stop,
              on_nan=on_nan, progress=progress)
    return NODEResult(field=trainer.field, history=res.history, status=res.status,
                      message=res.message, seconds=res.seconds, config=config,
                      data=data, trainer=trainer)


