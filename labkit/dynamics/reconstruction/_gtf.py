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

This module holds the settings and the :math:`\alpha` rule; the trainer (K >= 1 models
at once) is :mod:`labkit.dynamics.reconstruction._gtf_trainer`, the ``train_*`` functions and results
:mod:`labkit.dynamics.reconstruction._gtf_train`. Training runs through :func:`labkit.core.train.run`; a
non-finite loss or gradient skips the update (the model keeps its last finite
parameters) and ends the run with :class:`~labkit.errors.DivergenceError` or a
``"diverged"`` status and a message.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from labkit.core.config import Config, check_in, check_int, check_positive, check_range
from labkit.dynamics.reconstruction._plrnn import (
    ALRNN,
    PiecewiseLinearRNN,
    ShallowPLRNN,
)
from labkit.errors import ConfigError

__all__ = ["GTFConfig", "build_model", "estimate_alpha", "jacobian_bound", "next_alpha"]

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


def estimate_alpha(model: PiecewiseLinearRNN, states: Float[Tensor, "batch time state"]
                   ) -> tuple[float, float]:
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


def jacobian_bound(jacobians: Float[Tensor, "*lead batch time state state"]
                   ) -> Float[Tensor, "*lead"]:
    """:math:`G`: over the sequences (axis -4), the largest geometric mean over time (axis
    -3) of the spectral norms of ``jacobians`` ``[..., B, T, M, M]``; shape ``[...]``."""
    norms = torch.linalg.matrix_norm(jacobians.double(), ord=2)
    return torch.exp(torch.log(norms.clamp_min(1e-300)).mean(-1)).amax(-1)


def next_alpha(alpha: float, g: float, decay: float) -> float:
    r"""The annealed :math:`\alpha` after an estimate :math:`G`: jump up to
    :math:`\alpha^* = \max(0, 1 - 1/G)` at once, else decay towards it."""
    a_est = max(0.0, 1.0 - 1.0 / g)
    return a_est if a_est > alpha else decay * alpha + (1 - decay) * a_est


def build_model(config: GTFConfig, dim: int, gen: torch.Generator, *,
                dtype: torch.dtype = torch.float32) -> PiecewiseLinearRNN:
    """The latent model ``config`` names, of dimension ``dim``, initialised from ``gen``,
    with parameters of ``dtype``."""
    if config.model == "alrnn":
        return ALRNN(dim, config.n_relu, seed=gen, dtype=dtype)
    return ShallowPLRNN(dim, config.hidden_dim, clipped=config.model == "clipped", seed=gen,
                        dtype=dtype)
