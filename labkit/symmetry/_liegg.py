"""LieGG: the symmetries a trained network has learned, in closed form (Moskalev, Sepliarskaia,
Sosnovik, Smeulders, "LieGG: Studying Learned Lie Group Generators", NeurIPS 2022).

A network :math:`f` is invariant under the one-parameter group :math:`e^{tA}` exactly
when its derivative along the flow vanishes on the data:

.. math::
    \\frac{d}{dt} f(e^{tA} x)\\Big|_{t=0} = \\nabla f(x)^\\top\\, \\rho(A)\\, x = 0 .

This is linear in :math:`A = \\sum_m a_m B_m` (``B`` a basis of candidate generators,
:math:`\\mathfrak{gl}(n)` by default), so stacking one row
:math:`E_{x,m} = \\nabla f(x)^\\top \\rho(B_m) x` per sample (and per output) gives the
*polarization matrix* ``E``. Its (near) null space holds the learned symmetries: the right
singular vectors of its smallest singular values. Rows are normalised so each sample
counts once. The number of generators is read off the largest gap in
:math:`\\log \\sigma` when not given.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from labkit.core.config import check_int, check_positive
from labkit.core.rng import linear_layer
from labkit.core.train import Checkpoint, History, fingerprint, guarded_step, run
from labkit.errors import ConfigError
from labkit.symmetry._algebra import LieAlgebra, gl
from labkit.symmetry._data import SymmetryData
from labkit.symmetry._plain import plain_number
from labkit.symmetry._result import DiscoveryResult, judge
from labkit.symmetry._seed import Seed, check_seed, generator

__all__ = ["RegressorResult", "RegressorTrainer", "liegg", "polarization_matrix",
           "train_regressor"]


class RegressorTrainer:
    """A small MLP ``x -> y`` (SiLU) on ``data`` by full-batch Adam with a cosine learning
    rate, as a :class:`~labkit.core.train.Trainer` for :func:`train_regressor`. Inputs and
    targets are standardised inside :attr:`model`, which maps raw ``x`` to raw ``y``.

    The model is built in ``dtype`` (float64 by default: LieGG reads symmetries off the
    model's gradients, whose small singular values float64 resolves); its initial weights
    are :func:`labkit.core.linear_layer` draws from ``seed``, the same values in every
    dtype. ``seed`` is an int, a :class:`torch.Generator` (used as is: it becomes
    :attr:`rng`) or None (fresh entropy; ``rng.initial_seed()`` is the int that repeats
    the run).
    """

    def __init__(self, data: SymmetryData, *, hidden: int = 64, depth: int = 2,
                 steps: int = 1500, lr: float = 3e-3, seed: Seed = 0,
                 dtype: torch.dtype = torch.float64) -> None:
        if not isinstance(data, SymmetryData):
            raise ConfigError(f"data must be a SymmetryData, got {type(data).__name__}")
        if data.y is None:
            raise ConfigError(f"train_regressor needs targets y, but data {data.name!r} has y=None")
        check_int("hidden", hidden)
        check_int("depth", depth)
        check_int("steps", steps)
        check_positive("lr", lr)
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise ConfigError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
        self.rng = generator(seed)
        self.history = History()
        # not ``steps``: a run can be continued for more steps from its checkpoint
        self._fingerprint = fingerprint({"hidden": hidden, "depth": depth, "lr": lr,
                                         "dtype": str(dtype)}, data.x, data.y)
        x, y = data.x.to(dtype), data.y.to(dtype)
        layers: list[nn.Module] = []
        width = x.shape[1]
        for _ in range(depth):
            layers += [linear_layer(width, hidden, self.rng, dtype=dtype), nn.SiLU()]
            width = hidden
        layers.append(linear_layer(width, y.shape[1], self.rng, dtype=dtype))
        self.model = _Standardised(nn.Sequential(*layers), x, y)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.schedule = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, steps)
        self._x = (x - self.model.x_mean) / self.model.x_std
        self._y = (y - self.model.y_mean) / self.model.y_std

    def step(self, i: int) -> dict[str, float]:
        """One full-batch Adam step on the standardised mean squared error."""
        self.optimizer.zero_grad(set_to_none=True)
        loss = (self.model.net(self._x) - self._y).square().mean()
        loss.backward()
        guarded_step(self.optimizer, loss)
        self.schedule.step()
        return {"loss": loss.item()}

    def fingerprint(self) -> str:
        """The settings and the data (a checkpoint of another run is refused on resume)."""
        return self._fingerprint

    def state_dict(self) -> dict[str, Any]:
        """Weights, optimizer, schedule and the random state."""
        return copy.deepcopy({"model": self.model.state_dict(),
                              "optimizer": self.optimizer.state_dict(),
                              "schedule": self.schedule.state_dict(),
                              "rng": self.rng.get_state()})

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.rng.set_state(state["rng"])


@dataclasses.dataclass(frozen=True)
class RegressorResult:
    """What :func:`train_regressor` returns: the fitted ``model`` (in eval mode) and the
    engine's common fields (:class:`~labkit.core.train.RunResult`)."""

    model: nn.Module
    history: History
    status: str
    message: str
    seconds: float
    trainer: RegressorTrainer = dataclasses.field(repr=False)

    @property
    def final_loss(self) -> float | None:
        """The last recorded training loss (standardised mean squared error), or None."""
        losses = self.history.metrics.get("loss", [])
        return losses[-1] if losses else None

    def summary(self) -> str:
        """One line: status, steps, final loss and time (and the message, if any)."""
        loss = "-" if self.final_loss is None else f"{self.final_loss:.3g}"
        line = (f"regressor: {self.status} after {len(self.history)} steps, final loss {loss}, "
                f"{self.seconds:.2f} s")
        return f"{line} ({self.message})" if self.message else line

    def as_dict(self) -> dict[str, Any]:
        """``status``, ``message``, ``steps``, ``final_loss`` and ``seconds`` (non-finite
        numbers as None)."""
        return {"status": self.status, "message": self.message, "steps": len(self.history),
                "final_loss": plain_number(self.final_loss), "seconds": plain_number(self.seconds)}


def train_regressor(
    data: SymmetryData,
    *,
    hidden: int = 64,
    depth: int = 2,
    steps: int = 1500,
    lr: float = 3e-3,
    seed: Seed = 0,
    dtype: torch.dtype = torch.float64,
    checkpoint: str | Path | Checkpoint | None = None,
    progress: bool = False,
    callbacks: Sequence[Any] = (),
    stop: threading.Event | None = None,
    on_nan: Literal["raise", "stop"] = "raise",
) -> RegressorResult:
    """Fit the network whose learned symmetries :func:`liegg` reads: a small MLP
    ``x -> y`` (see :class:`RegressorTrainer`), through :func:`labkit.core.train.run`.

    Args:
        data: samples with targets ``y``.
        hidden, depth: the MLP's width and number of hidden layers.
        steps, lr: full-batch Adam steps and the initial learning rate (cosine to 0).
        seed: seeds the weights: an int, a :class:`torch.Generator` (used as is) or None
            (fresh entropy), see :class:`RegressorTrainer`.
        dtype: the model's dtype (default ``torch.float64``).
        checkpoint, progress, callbacks, stop, on_nan: as for :func:`labkit.core.train.run`.

    Raises:
        ConfigError: ``data`` has no targets ``y``, or ``dtype`` is not a floating-point dtype.

    Example:
        >>> from labkit.symmetry import so2_invariant
        >>> res = train_regressor(so2_invariant(200), steps=5)
        >>> res.status, len(res.history)
        ('finished', 5)
    """
    trainer = RegressorTrainer(data, hidden=hidden, depth=depth, steps=steps, lr=lr, seed=seed,
                               dtype=dtype)
    res = run(trainer, steps, checkpoint=checkpoint, callbacks=callbacks, stop=stop,
              on_nan=on_nan, progress=progress)
    return RegressorResult(model=trainer.model.eval(), history=res.history, status=res.status,
                           message=res.message, seconds=res.seconds, trainer=trainer)


class _Standardised(nn.Module):
    # buffers registered in __init__ (declared for the type checker)
    x_mean: torch.Tensor
    x_std: torch.Tensor
    y_mean: torch.Tensor
    y_std: torch.Tensor

    def __init__(self, net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("x_mean", x.mean(0))
        self.register_buffer("x_std", x.std(0).clamp_min(1e-12))
        self.register_buffer("y_mean", y.mean(0))
        self.register_buffer("y_std", y.std(0).clamp_min(1e-12))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.x_mean) / self.x_std) * self.y_std + self.y_mean


def polarization_matrix(model: nn.Module, data: SymmetryData, basis: torch.Tensor,
                        *, max_samples: int = 2000) -> torch.Tensor:
    """Rows :math:`\\nabla f_j(x)^\\top \\rho(B_m) x` over samples and outputs, each row
    normalised to unit length, ``[N * outputs, m]``."""
    x = data.x[:max_samples].clone().requires_grad_(True)
    param = next(iter(model.parameters()), None)
    dtype = param.dtype if param is not None else torch.float64
    out = model(x.to(dtype))
    out = out[:, None] if out.ndim == 1 else out
    if out.ndim != 2 or out.shape[0] != x.shape[0]:
        raise ConfigError(f"model must map [N, {data.x.shape[1]}] to [N] or [N, m], got {tuple(out.shape)}")
    moved = torch.stack([data.rep.act(b, data.x[:max_samples]) for b in basis], -1)  # [N, D, m]
    rows = []
    for j in range(out.shape[1]):
        (grad,) = torch.autograd.grad(out[:, j].sum(), x, retain_graph=j + 1 < out.shape[1])
        rows.append(torch.einsum("nd,ndm->nm", grad.to(torch.float64), moved))
    e = torch.cat(rows)
    norms = e.norm(dim=1, keepdim=True)
    return e[norms[:, 0] > 0] / norms[norms[:, 0] > 0]


def liegg(
    model: nn.Module,
    data: SymmetryData,
    *,
    n_generators: int | None = None,
    algebra: LieAlgebra | None = None,
    seed: Seed = 0,
) -> DiscoveryResult:
    """Generators a trained ``model`` (``x -> y``) is invariant under, from the null space
    of its polarization matrix (SVD).

    Args:
        model: a trained network, e.g. ``train_regressor(data).model``.
        data: the samples the model was trained on.
        n_generators: how many generators to return; by default, the number below the
            largest gap :math:`\\log\\sigma_{k+1} - \\log\\sigma_k` of the ascending
            singular values (recorded as ``scores["gap"]`` and ``scores["k"]``).
        algebra: candidate generators (default :math:`\\mathfrak{gl}(n)`, all matrices).
        seed: for the two-sample tests: an int, a :class:`torch.Generator` (one int is
            drawn from it) or None (a fresh int); the result records the int as ``seed``,
            and passing it back repeats the tests.

    Returns:
        A :class:`~labkit.symmetry.DiscoveryResult` with ``singular_values`` (ascending)
        and unit-norm generators.
    """
    began = time.perf_counter()
    if not isinstance(data, SymmetryData):
        raise ConfigError(f"data must be a SymmetryData, got {type(data).__name__}")
    if not isinstance(model, nn.Module):
        raise ConfigError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_seed(seed)
    algebra = gl(data.n) if algebra is None else algebra
    if not isinstance(algebra, LieAlgebra) or algebra.n != data.n:
        raise ConfigError(f"algebra must be a LieAlgebra of {data.n} x {data.n} matrices, got {algebra!r}")
    basis = algebra.basis.to(torch.float64)
    e = polarization_matrix(model, data, basis).detach()
    _, s, vh = torch.linalg.svd(e, full_matrices=False)
    order = torch.argsort(s)
    s, vh = s[order], vh[order]
    logs = torch.log(s.clamp_min(1e-300))
    gaps = logs[1:] - logs[:-1]
    if n_generators is None:
        k = int(torch.argmax(gaps)) + 1 if gaps.numel() else 1
    else:
        check_int("n_generators", n_generators)
        if n_generators > basis.shape[0]:
            raise ConfigError(f"n_generators must be <= {basis.shape[0]} (the algebra's dimension), "
                              f"got {n_generators}")
        k = n_generators
    gens = torch.einsum("km,mij->kij", vh[:k], basis)
    gens = gens / gens.flatten(1).norm(dim=1)[:, None, None]
    gap = float(gaps[k - 1]) if k - 1 < gaps.numel() else float("nan")
    return judge(data, gens, method="liegg", history=History(), coeff_scale=1.0,
                 singular_values=s, seconds=time.perf_counter() - began, seed=seed,
                 extra_scores={"k": float(k), "gap": gap})
