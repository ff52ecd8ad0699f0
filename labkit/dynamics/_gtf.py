r"""Generalized teacher forcing (GTF) for piecewise-linear RNNs (Hess, Monfared, Brenner,
Durstewitz, "Generalized Teacher Forcing for Learning Chaotic Dynamics", ICML 2023).

Each step samples ``batch_size`` subsequences :math:`x_{0:T}` of the training series and
runs the model through them with the forced units pulled towards the data,

.. math::
    \hat z_t = F(z_{t-1}), \qquad
    z_t = (1-\alpha)\, \hat z_t + \alpha\, \tilde z_t \quad\text{(forced units only)},

where :math:`\tilde z_t` is the data in latent coordinates (:math:`x_t` itself for the
identity observation, which forces the first :math:`N` units; :math:`B^+(x_t - c)` for
the affine one, which forces all :math:`M`). The loss is the mean squared error of the
observed :math:`O(\hat z_t)` against :math:`x_t`. With :math:`\alpha = 1` this is
one-step-ahead prediction; with :math:`\alpha = 0` free running.

Through the forcing, gradients along the sequence are damped by :math:`(1-\alpha)` per
step: the Jacobian product is bounded by
:math:`\prod_t (1-\alpha) \|J_t\| = ((1-\alpha) G)^T` with :math:`G` the geometric mean of
the spectral norms :math:`\|J_t\|_2`. Adaptive GTF picks the smallest :math:`\alpha`
that keeps it from exploding, :math:`\alpha^* = \max(0, 1 - 1/G)`, with :math:`G`
estimated on the batch (the largest per-sequence geometric mean over the sequences,
Jacobians taken at the data's latent states), every ``alpha_interval`` steps; the
running :math:`\alpha` jumps up to a larger estimate at once and otherwise decays
towards it, :math:`\alpha \leftarrow \gamma \alpha + (1-\gamma) \alpha^*` (the official
code's ``product_upper_bound`` rule: start :math:`\alpha = 1`, :math:`\gamma = 0.999`,
every 5 batches). For :math:`M > N` with the identity observation the unobserved units
of those states come from a forced pass of the batch (the official code puts zeros
there); for :math:`M = N`, the paper's setting, the two agree.

Sparse teacher forcing (``forcing="sparse"``) instead replaces the forced units by the
data every ``tf_interval`` steps and runs free in between (the AL-RNN paper's training).

Training runs through :func:`labkit.core.train.fit`; a non-finite loss or gradient skips
the update (the model keeps its last finite parameters) and ends the run with
:class:`~labkit.errors.DivergenceError` or a ``"diverged"`` status and a message.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from labkit.core.config import Config, check_in, check_int, check_positive, check_range
from labkit.core.device import resolve_device
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
from labkit.dynamics._plrnn import (
    ALRNN,
    AffineObservation,
    IdentityObservation,
    PiecewiseLinearRNN,
    ShallowPLRNN,
)
from labkit.errors import ConfigError, DataError

__all__ = ["GTFConfig", "GTFResult", "GTFTrainer", "estimate_alpha", "train_gtf"]

MODELS = ("shplrnn", "clipped", "alrnn")


@dataclasses.dataclass(frozen=True, kw_only=True)
class GTFConfig(Config):
    """Settings of a GTF (or sparse-TF) training run.

    Attributes:
        model: ``"shplrnn"``, ``"clipped"`` (clipped shPLRNN) or ``"alrnn"``.
        latent_dim: :math:`M`; ``None`` means the data's dimension :math:`N`.
        hidden_dim: the shPLRNN's hidden width :math:`L`.
        n_relu: the AL-RNN's number of ReLU units :math:`P`.
        observation: ``"identity"`` (first :math:`N` units observed; needs
            :math:`M \\ge N`) or ``"affine"``.
        seq_len: :math:`T`, predicted steps per subsequence.
        batch_size: subsequences per step.
        steps: optimisation steps (batches).
        lr_start, lr_end: the learning rate decays exponentially from one to the other
            over ``steps``.
        optimizer: ``"radam"`` (the paper's) or ``"adam"``.
        forcing: ``"gtf"`` or ``"sparse"`` (identity teacher forcing every ``tf_interval``).
        alpha_mode: ``"adaptive"`` or ``"fixed"`` (GTF only).
        alpha: the fixed :math:`\\alpha`, or the adaptive run's starting value.
        alpha_interval: steps between two estimates of :math:`\\alpha`.
        alpha_decay: :math:`\\gamma` of the annealing :math:`\\alpha \\leftarrow \\gamma
            \\alpha + (1-\\gamma)\\alpha^*`.
        tf_interval: :math:`\\tau` of sparse teacher forcing.
        grad_clip: clip the gradient norm to this (0: no clipping).
        noise: Gaussian noise (standard deviation, in the standardised units) added to each
            batch.
    """

    model: str = "clipped"
    latent_dim: int | None = None
    hidden_dim: int = 50
    n_relu: int = 2
    observation: str = "identity"
    seq_len: int = 200
    batch_size: int = 16
    steps: int = 5000
    lr_start: float = 1e-3
    lr_end: float = 1e-6
    optimizer: str = "radam"
    forcing: str = "gtf"
    alpha_mode: str = "adaptive"
    alpha: float = 1.0
    alpha_interval: int = 5
    alpha_decay: float = 0.999
    tf_interval: int = 16
    grad_clip: float = 0.0
    noise: float = 0.0

    def validate(self) -> None:
        check_in("model", self.model, MODELS)
        check_in("observation", self.observation, ("identity", "affine"))
        check_in("optimizer", self.optimizer, ("radam", "adam"))
        check_in("forcing", self.forcing, ("gtf", "sparse"))
        check_in("alpha_mode", self.alpha_mode, ("adaptive", "fixed"))
        if self.latent_dim is not None:
            check_int("latent_dim", self.latent_dim)
        for name in ("hidden_dim", "seq_len", "batch_size", "steps", "alpha_interval",
                     "tf_interval"):
            check_int(name, getattr(self, name))
        check_int("n_relu", self.n_relu, least=0)
        if self.model == "alrnn" and self.latent_dim is not None and self.n_relu > self.latent_dim:
            raise ConfigError(f"n_relu must be <= latent_dim={self.latent_dim}, got {self.n_relu}")
        check_positive("lr_start", self.lr_start)
        check_positive("lr_end", self.lr_end)
        if self.lr_end > self.lr_start:
            raise ConfigError(f"lr_end must be <= lr_start={self.lr_start}, got {self.lr_end}")
        check_range("alpha", self.alpha, 0.0, 1.0)
        check_range("alpha_decay", self.alpha_decay, 0.0, 1.0)
        check_positive("grad_clip", self.grad_clip, allow_zero=True)
        check_positive("noise", self.noise, allow_zero=True)

    @classmethod
    def official(cls, **changes: Any) -> GTFConfig:
        """The settings of the official GTF-shPLRNN code (DurstewitzLab/GTF-shPLRNN,
        ``settings/defaults.json``; Hess et al. 2023): clipped shPLRNN with :math:`M = N`
        (identity observation) and :math:`L = 50`, RAdam, learning rate
        :math:`10^{-3} \\to 10^{-6}`, batches of 16 sequences of 200 steps, 250,000
        batches (5000 epochs of 50), adaptive :math:`\\alpha` (product upper bound) from
        1.0 with :math:`\\gamma = 0.999` every 5 batches, no gradient clipping."""
        base: dict[str, Any] = dict(
            model="clipped", latent_dim=None, hidden_dim=50, observation="identity",
            seq_len=200, batch_size=16, steps=250_000, lr_start=1e-3, lr_end=1e-6,
            optimizer="radam", forcing="gtf", alpha_mode="adaptive", alpha=1.0,
            alpha_interval=5, alpha_decay=0.999, grad_clip=0.0)
        base.update(changes)
        return cls(**base)

    @classmethod
    def alrnn_official(cls, **changes: Any) -> GTFConfig:
        """The AL-RNN paper's Lorenz-63 settings (DurstewitzLab/ALRNN-DSR,
        ``settings/lorenz63.json``): :math:`M = 20`, :math:`P = 2`, identity observation,
        sparse teacher forcing with :math:`\\tau = 16`, RAdam
        :math:`10^{-3} \\to 10^{-5}`, batches of 16 x 200, 100,000 batches, noise 0.05."""
        base: dict[str, Any] = dict(
            model="alrnn", latent_dim=20, n_relu=2, observation="identity", seq_len=200,
            batch_size=16, steps=100_000, lr_start=1e-3, lr_end=1e-5, optimizer="radam",
            forcing="sparse", tf_interval=16, noise=0.05)
        base.update(changes)
        return cls(**base)


def estimate_alpha(model: PiecewiseLinearRNN, states: torch.Tensor) -> tuple[float, float]:
    r"""The adaptive GTF estimate :math:`\alpha^* = \max(0, 1 - 1/G)`.

    Args:
        model: the latent model.
        states: ``[batch, time, M]`` latent states along the sequences.

    Returns:
        ``(alpha, G)`` where :math:`G` is the largest, over the sequences, geometric mean
        over time of the spectral norms :math:`\|J(z_t)\|_2`.
    """
    with torch.no_grad():
        g = float(jacobian_bound(model.jacobian(states)))
    return max(0.0, 1.0 - 1.0 / g), g


def jacobian_bound(jacobians: torch.Tensor) -> torch.Tensor:
    """:math:`G`: over the sequences (axis -4), the largest geometric mean over time (axis
    -3) of the spectral norms of ``jacobians`` ``[..., B, T, M, M]``; shape ``[...]``."""
    norms = torch.linalg.matrix_norm(jacobians.double(), ord=2)
    return torch.exp(torch.log(norms.clamp_min(1e-300)).mean(-1)).amax(-1)


def next_alpha(alpha: float, g: float, decay: float) -> float:
    r"""The annealed :math:`\alpha` after an estimate :math:`G`: jump up to
    :math:`\alpha^* = \max(0, 1 - 1/G)` at once, else decay towards it."""
    a_est = max(0.0, 1.0 - 1.0 / g)
    return a_est if a_est > alpha else decay * alpha + (1 - decay) * a_est


def _build_model(config: GTFConfig, dim: int, gen: torch.Generator) -> PiecewiseLinearRNN:
    if config.model == "alrnn":
        return ALRNN(dim, config.n_relu, seed=gen)
    return ShallowPLRNN(dim, config.hidden_dim, clipped=config.model == "clipped", seed=gen)


class GTFTrainer:
    """A GTF trainer of a piecewise-linear RNN on a :class:`ReconstructionData`.

    Call :meth:`step` through :func:`labkit.core.train.fit` (or use :func:`train_gtf`).
    The model, observation model and :math:`\\alpha` may be read from another thread
    between steps.

    Example:
        >>> from labkit.dynamics._dsr_data import reconstruction_data
        >>> d = reconstruction_data(n_steps=500, dt=0.01, n_test=0)
        >>> tr = GTFTrainer(d, GTFConfig(hidden_dim=8, seq_len=20, steps=3), device="cpu")
        >>> sorted(tr.step(0))
        ['G', 'alpha', 'loss', 'lr']
    """

    def __init__(self, data: ReconstructionData | Any, config: GTFConfig = GTFConfig(), *,
                 seed: int = 0, device: str | torch.device = "auto") -> None:
        if not isinstance(data, ReconstructionData):
            data = from_array(data)
        if not isinstance(config, GTFConfig):
            raise ConfigError(f"config must be a GTFConfig, got {type(config).__name__}")
        n = data.n_obs
        m = n if config.latent_dim is None else config.latent_dim
        if config.observation == "identity" and m < n:
            raise ConfigError(f"latent_dim={m} is smaller than the data's dimension N={n}; "
                              "the identity observation needs latent_dim >= N (or use "
                              "observation='affine')")
        if config.model == "alrnn" and config.n_relu > m:
            raise ConfigError(f"n_relu={config.n_relu} exceeds latent_dim={m}")
        t = data.train.shape[0]
        if t < config.seq_len + 2:
            raise DataError(f"the training series has {t} samples; seq_len={config.seq_len} "
                            f"needs at least {config.seq_len + 2}")
        self.data, self.config, self.seed = data, config, seed
        self.device = resolve_device(device)
        self.history = History()
        self.rng = make_generator(seed)
        self._lock = threading.Lock()
        self.model = _build_model(config, m, self.rng).to(self.device)
        obs_cls = IdentityObservation if config.observation == "identity" else AffineObservation
        self.observation = obs_cls(n, m, seed=self.rng).to(self.device)
        self._x = data.train.to(self.device, torch.float32)
        params = list(self.model.parameters()) + [p for p in self.observation.parameters()
                                                  if p.requires_grad]
        opt = torch.optim.RAdam if config.optimizer == "radam" else torch.optim.Adam
        self.optimizer = opt(params, lr=config.lr_start)
        self._params = params
        self.alpha = float(config.alpha) if config.forcing == "gtf" else 0.0

    # -- pieces --------------------------------------------------------------------
    def lr(self, i: int) -> float:
        """The learning rate of step ``i``: exponential from ``lr_start`` to ``lr_end``."""
        cfg = self.config
        return exponential_schedule(i, cfg.steps, cfg.lr_start, cfg.lr_end)

    def sample(self) -> torch.Tensor:
        """A batch of subsequences ``[batch, seq_len + 1, N]`` (random starts, with
        replacement), plus noise when ``config.noise``."""
        cfg = self.config
        return sample_windows(self._x, cfg.seq_len + 1, cfg.batch_size, self.rng,
                              noise=cfg.noise)

    def teacher_forced(self, x: torch.Tensor, *, alpha: float | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the model through ``x`` (``[batch, T+1, N]``) with forcing.

        Returns ``(predicted, forced)``, both ``[batch, T, M]``: the model's one-step
        states :math:`\\hat z_t = F(z_{t-1})` and the states after forcing :math:`z_t`,
        for ``t = 1..T``. ``alpha`` defaults to the current :math:`\\alpha` (GTF); with
        ``forcing="sparse"`` the forced units are replaced every ``tf_interval`` steps.
        """
        cfg = self.config
        a = self.alpha if alpha is None else float(alpha)
        nf = self.observation.n_forced
        z = self.observation.init_state(x[:, 0])
        target = self.observation.invert(x[:, 1:])  # [B, T, nf]
        preds, forced = [], []
        for t in range(x.shape[1] - 1):
            zh = self.model(z)
            preds.append(zh)
            if cfg.forcing == "sparse":
                if (t + 1) % cfg.tf_interval == 0:
                    z = torch.cat([target[:, t], zh[:, nf:]], -1)
                else:
                    z = zh
            elif a == 0.0:
                z = zh
            else:
                mixed = (1 - a) * zh[:, :nf] + a * target[:, t]
                z = torch.cat([mixed, zh[:, nf:]], -1) if nf < zh.shape[-1] else mixed
            forced.append(z)
        return torch.stack(preds, 1), torch.stack(forced, 1)

    def _alpha_states(self, x: torch.Tensor) -> torch.Tensor:
        """Latent states at which the Jacobians of the alpha estimate are taken."""
        nf, m = self.observation.n_forced, self.model.dim
        target = self.observation.invert(x[:, 1:])
        if nf == m:
            return target
        with torch.no_grad():
            _, forced = self.teacher_forced(x)
        return torch.cat([target, forced[..., nf:]], -1)

    # -- training ------------------------------------------------------------------
    def step(self, i: int) -> dict[str, float]:
        """One batch: (re-)estimate :math:`\\alpha` when due, GTF forward, MSE, update.

        Returns ``loss``, ``alpha``, ``lr`` and, when :math:`\\alpha` was re-estimated,
        ``G`` (the Jacobian-norm estimate). A non-finite loss or gradient leaves the
        parameters unchanged and is returned as ``loss = nan``.
        """
        cfg = self.config
        lr = self.lr(i)
        x = self.sample()
        out: dict[str, float] = {}
        with self._lock:
            if cfg.forcing == "gtf" and cfg.alpha_mode == "adaptive" and i % cfg.alpha_interval == 0:
                _, g = estimate_alpha(self.model, self._alpha_states(x))
                self.alpha = next_alpha(self.alpha, g, cfg.alpha_decay)
                out["G"] = g
            set_lr(self.optimizer, lr)
            self.optimizer.zero_grad(set_to_none=True)
            pred, _ = self.teacher_forced(x)
            loss = nn.functional.mse_loss(self.observation(pred), x[:, 1:])
            loss.backward()
            finite = guarded_step(self.optimizer, loss, clip=cfg.grad_clip, params=self._params)
        out.update(loss=loss.item() if finite else float("nan"), alpha=self.alpha, lr=lr)
        return out

    def generate(self, n: int, x0: torch.Tensor | None = None) -> torch.Tensor:
        """A free-running trajectory of ``n`` steps in observation space ``[n + 1, N]``
        (float64, CPU), started from ``x0`` (default: the first training sample).

        Raises:
            DivergenceError: the trajectory became non-finite.
        """
        x0 = self.data.train[0] if x0 is None else x0
        with self._lock, torch.no_grad():
            z0 = self.observation.init_state(torch.as_tensor(x0, dtype=torch.float32,
                                                              device=self.device))
            z = self.model.generate(z0, n)
            return self.observation(z).to("cpu", torch.float64)

    # -- checkpoints ---------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Model, observation model, optimizer, alpha and the random state."""
        with self._lock:
            return copy.deepcopy({"model": self.model.state_dict(),
                                  "observation": self.observation.state_dict(),
                                  "optimizer": self.optimizer.state_dict(),
                                  "alpha": self.alpha, "rng": self.rng.get_state()})

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved."""
        with self._lock:
            self.model.load_state_dict(state["model"])
            self.observation.load_state_dict(state["observation"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.alpha = float(state["alpha"])
            self.rng.set_state(state["rng"])


@dataclasses.dataclass(frozen=True)
class GTFResult:
    """A finished (or stopped) GTF run.

    Attributes:
        model: the trained latent model (on the training device).
        observation: the observation model.
        history: per-step ``loss``, ``alpha``, ``lr`` (and ``G`` where estimated).
        status, message: as in :class:`~labkit.core.train.FitResult` (``"diverged"`` with
            a message when a non-finite loss stopped the run; the model then holds the
            last finite parameters).
        seconds: wall-clock time of the run.
        alpha: the final :math:`\\alpha`.
        config: the settings.
        trainer: the trainer (to continue, or to :meth:`~GTFTrainer.generate`).
    """

    model: PiecewiseLinearRNN
    observation: nn.Module
    history: History
    status: str
    message: str
    seconds: float
    alpha: float
    config: GTFConfig
    trainer: GTFTrainer = dataclasses.field(repr=False)

    def generate(self, n: int, x0: torch.Tensor | None = None) -> torch.Tensor:
        """Free-running trajectory in observation space, ``[n + 1, N]``."""
        return self.trainer.generate(n, x0)


def train_gtf(
    data: ReconstructionData | Any,
    config: GTFConfig = GTFConfig(),
    *,
    seed: int = 0,
    device: str | torch.device = "auto",
    checkpoint: str | Path | Checkpoint | None = None,
    progress: bool = False,
    callbacks: Sequence[Any] = (),
    stop: threading.Event | None = None,
    on_nan: Literal["raise", "stop"] = "raise",
) -> GTFResult:
    """Train a shPLRNN / clipped shPLRNN / AL-RNN on ``data`` with (generalized) teacher
    forcing, through :func:`labkit.core.train.fit`.

    Args:
        data: a :class:`ReconstructionData` (or an array ``[time, dim]``, wrapped by
            :func:`from_array`).
        config: a :class:`GTFConfig` (:meth:`GTFConfig.official` for the paper's).
        seed: seeds the model and the batches.
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        checkpoint: a path (saved every :data:`~labkit.core.train.CHECKPOINT_EVERY` steps
            and at the end; an existing file is resumed from) or a
            :class:`~labkit.core.train.Checkpoint`.
        progress: a progress bar.
        callbacks: ``cb(step, metrics, history)``; returning True stops the run. A callback
            with a ``bind(trainer)`` method (e.g. :class:`labkit.widgets.ReconstructionMonitor`)
            is given the :class:`GTFTrainer` before training starts.
        stop: an event that stops the run from another thread.
        on_nan: ``"raise"``: a non-finite loss raises :class:`DivergenceError`;
            ``"stop"``: the run ends with status ``"diverged"`` and a message.

    Example:
        >>> from labkit.dynamics._dsr_data import reconstruction_data
        >>> d = reconstruction_data(n_steps=500, dt=0.01, n_test=0)
        >>> res = train_gtf(d, GTFConfig(hidden_dim=8, seq_len=20, steps=5), device="cpu")
        >>> res.status, len(res.history)
        ('finished', 5)
    """
    trainer = GTFTrainer(data, config, seed=seed, device=device)
    res = run(trainer, config.steps, checkpoint=checkpoint, callbacks=callbacks, stop=stop,
              on_nan=on_nan, progress=progress)
    return GTFResult(model=trainer.model, observation=trainer.observation,
                     history=res.history, status=res.status, message=res.message,
                     seconds=res.seconds, alpha=trainer.alpha, config=config,
                     trainer=trainer)
