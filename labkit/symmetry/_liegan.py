"""LieGAN: generative adversarial discovery of a Lie algebra (Yang, Walters, Dehmamy,
Yu, "Generative Adversarial Symmetry Discovery", ICML 2023).

A generator holds a basis :math:`L \\in R^{k \\times n \\times n}`. It moves each sample by
a random group element

.. math::
    g = \\exp\\Big(\\sum_{i=1}^k w_i L_i\\Big), \\qquad w_i \\sim N(0, s^2),

acting on ``x`` through the data's representation (``y`` is left alone). A
discriminator :math:`D` learns to tell real pairs :math:`(x, y)` from moved ones
:math:`(g x, y)`; the basis learns to fool it. Directions along which the data law is
invariant cost the basis nothing, all others are pushed out, and two regularisers keep
the basis from the trivial answer :math:`L = 0` and from repeating one direction:

.. math::
    R_{\\mathrm{ortho}} = \\sum_{i<j} \\cos^2(L_i, L_j), \\qquad
    R_{\\mathrm{nontrivial}} = \\sum_i \\mathrm{relu}(1 - \\|L_i\\|_F)^2 .

Training runs through :func:`labkit.core.train.run`, one discriminator and one basis
update per step. What makes it fast (docs/symmetry.md, "What makes LieGAN fast"): a
128-wide discriminator and a basis that starts small (``init_scale = 0.1``);
:meth:`LieGANConfig.official` gives the recipe of the paper's code for comparison
(``bench/discovery.py``, results in bench/RESULTS.md).
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
from labkit.core.rng import linear_layer, make_generator
from labkit.core.train import Checkpoint, History, fingerprint, guarded_step, run
from labkit.errors import ConfigError
from labkit.symmetry._data import SymmetryData
from labkit.symmetry._reps import DirectSum, Vector
from labkit.symmetry._result import DiscoveryResult, judge
from labkit.symmetry._scores import smallest_cosine, sustained_crossing
from labkit.symmetry._seed import Seed, run_seed

__all__ = ["LieGAN", "LieGANConfig", "liegan"]

#: The dtypes LieGAN trains in (``torch.linalg.matrix_exp`` needs float32 or float64).
DTYPES = (torch.float32, torch.float64)


def _check_dtype(dtype: torch.dtype) -> torch.dtype:
    if dtype not in DTYPES:
        raise ConfigError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
    return dtype


@dataclasses.dataclass(frozen=True, kw_only=True)
class LieGANConfig(Config):
    """Settings of a LieGAN run.

    Attributes:
        n_generators: ``k``, the number of generators learned.
        steps: training steps (one discriminator and one basis update each).
        batch_size: samples per step.
        lr_d, lr_g: Adam learning rates of the discriminator and of the basis.
        disc_width, disc_depth: hidden width and number of hidden layers of the
            discriminator (LeakyReLU(0.2) MLP on the standardised joint ``(x, y)``).
        init_scale: the basis starts as ``init_scale`` times a Kaiming-normal draw
            (standard deviation :math:`\\sqrt 2 / n` per entry).
        coeff_scale: standard deviation :math:`s` of the coefficients :math:`w_i`.
        reg_ortho, reg_nontrivial: weights of the two regularisers.
        coefficients: ``"continuous"`` (normal) or ``"integer"`` (rounded normal: a grid of
            powers :math:`\\exp(L)^m`, for discrete symmetries). Training from a random basis
            often stays near the identity (2 of 9 runs reached a quarter turn on C4 data,
            bench/RESULTS.md); for finite groups prefer :func:`discover_discrete`.
        eval_every: steps between evaluations of the cosine to the reference.
        threshold, window: a discovery needs the cosine ``>= threshold`` for ``window``
            consecutive evaluations.
        early_stop: end training once that has happened (only when a reference exists).
        n_permutations: permutations of the final two-sample tests.
    """

    n_generators: int = 1
    steps: int = 3000
    batch_size: int = 256
    lr_d: float = 2e-3
    lr_g: float = 1e-2
    disc_width: int = 128
    disc_depth: int = 2
    init_scale: float = 0.1
    coeff_scale: float = 1.0
    reg_ortho: float = 1.0
    reg_nontrivial: float = 1.0
    coefficients: str = "continuous"
    eval_every: int = 10
    threshold: float = 0.99
    window: int = 5
    early_stop: bool = True
    n_permutations: int = 200

    def validate(self) -> None:
        for name in ("n_generators", "steps", "batch_size", "disc_width", "disc_depth",
                     "eval_every", "window", "n_permutations"):
            check_int(name, getattr(self, name))
        for name in ("lr_d", "lr_g", "init_scale", "coeff_scale"):
            check_positive(name, getattr(self, name))
        for name in ("reg_ortho", "reg_nontrivial"):
            check_positive(name, getattr(self, name), allow_zero=True)
        check_in("coefficients", self.coefficients, ("continuous", "integer"))
        check_range("threshold", self.threshold, 0.0, 1.0)

    @classmethod
    def official(cls, **changes: Any) -> LieGANConfig:
        """The recipe of the official LieGAN code (github.com/Rose-STL-Lab/LieGAN,
        ``main_lagan.py`` defaults and ``gan.py``; Yang et al., ICML 2023):
        discriminator with two hidden layers of 512 (LeakyReLU 0.2), batch 64, Adam with
        ``lr_d = 2e-4`` and ``lr_g = 1e-3``, a Kaiming-normal basis at full scale
        (``init_scale = 1``), coefficients :math:`N(0, 1)` and the cosine
        channel-correlation regulariser at weight ``1e-2``. Re-implemented here on
        labkit's loop (same losses as the default config), so only the settings differ.
        """
        base: dict[str, Any] = dict(batch_size=64, lr_d=2e-4, lr_g=1e-3, disc_width=512,
                                    disc_depth=2, init_scale=1.0, coeff_scale=1.0,
                                    reg_ortho=1e-2, steps=20000)
        base.update(changes)
        return cls(**base)


def _fast_blocks(data: SymmetryData) -> int | None:
    """Number of ``Vector(n)`` blocks when ``rep`` is just ``k`` copies of it (fast path)."""
    rep = data.rep
    if isinstance(rep, Vector):
        return 1
    if isinstance(rep, DirectSum) and all(type(r) is Vector and r.dim == data.n for r in rep.reps):
        return len(rep.reps)
    return None


class LieGAN:
    """A LieGAN trainer over a :class:`~labkit.symmetry.SymmetryData`.

    Call :meth:`step` through :func:`labkit.core.train.run` (or use :func:`liegan`), then
    :meth:`result`. :meth:`generators` may be read from another thread while training.

    Args:
        data: the samples.
        config: a :class:`LieGANConfig`.
        seed: seeds the basis, the discriminator, the batches and the tests: an int, a
            :class:`torch.Generator` or None (fresh entropy). It is resolved once to the int
            :attr:`seed` (for a generator, one int drawn from it; for None, a fresh one),
            which seeds :attr:`rng` (basis, discriminator, batches) and the final tests
            (``DiscoveryResult.seed``), so ``LieGAN(data, config, seed=trainer.seed)``
            repeats the run. It is part of :meth:`state_dict`.
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        dtype: the dtype of the basis, the discriminator and the batches (``torch.float32``
            or ``torch.float64``). Initial weights and coefficients are drawn the same way
            in both (weights in float64, coefficients in float32, then cast), so one seed
            starts both from the same values.

    Example:
        >>> from labkit.symmetry import so2_invariant
        >>> trainer = LieGAN(so2_invariant(500), LieGANConfig(steps=10), device="cpu")
        >>> sorted(trainer.step(0))
        ['cosine', 'loss_d', 'loss_g', 'reg_nontrivial', 'reg_ortho']
    """

    def __init__(self, data: SymmetryData, config: LieGANConfig = LieGANConfig(), *,
                 seed: Seed = 0, device: str | torch.device = "auto",
                 dtype: torch.dtype = torch.float32) -> None:
        if not isinstance(data, SymmetryData):
            raise ConfigError(f"data must be a SymmetryData (see SymmetryData.from_array), "
                              f"got {type(data).__name__}")
        if not isinstance(config, LieGANConfig):
            raise ConfigError(f"config must be a LieGANConfig, got {type(config).__name__}")
        self.data, self.config = data, config
        self.seed = run_seed(seed)
        self.device = resolve_device(device)
        self.history = History()
        self.rng = make_generator(self.seed)
        self._lock = threading.Lock()
        dtype = _check_dtype(dtype)
        joint = data.joint()
        self._mean = joint.mean(0).to(self.device, dtype)
        self._std = joint.std(0).clamp_min(1e-8).to(self.device, dtype)
        self._x = data.x.to(self.device, dtype)
        self._y = None if data.y is None else data.y.to(self.device, dtype)
        self._blocks = _fast_blocks(data)
        k, n = config.n_generators, data.n
        init = torch.randn(k, n, n, generator=self.rng, dtype=torch.float64)
        self.basis = nn.Parameter((init * config.init_scale * (2.0 ** 0.5) / n).to(self.device, dtype))
        layers: list[nn.Module] = []
        width_in = joint.shape[1]
        for _ in range(config.disc_depth):
            layers += [linear_layer(width_in, config.disc_width, self.rng, dtype=dtype),
                       nn.LeakyReLU(0.2)]
            width_in = config.disc_width
        layers.append(linear_layer(width_in, 1, self.rng, dtype=dtype))
        self.disc = nn.Sequential(*layers).to(self.device)
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=config.lr_d)
        self.opt_g = torch.optim.Adam([self.basis], lr=config.lr_g)
        self._bce = nn.BCEWithLogitsLoss()
        self._cos_steps: list[int] = []
        self._cos_values: list[float] = []
        self._ref = None if data.reference is None else data.reference.to(torch.float64)

    # -- the model -------------------------------------------------------------------
    def _act(self, g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self._blocks is not None:
            b = x.shape[0]
            return torch.einsum("bij,bkj->bki", g, x.view(b, self._blocks, -1)).reshape(b, -1)
        return self.data.rep.act(g, x)

    def _joint(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        z = x if y is None else torch.cat([x, y], -1)
        return (z - self._mean) / self._std

    def _coefficients(self, b: int) -> torch.Tensor:
        w = torch.randn(b, self.config.n_generators, generator=self.rng,
                        dtype=torch.float32) * self.config.coeff_scale
        if self.config.coefficients == "integer":
            w = torch.round(w)
        return w.to(self.device, self.basis.dtype)

    def _regularisers(self) -> tuple[torch.Tensor, torch.Tensor]:
        flat = self.basis.flatten(1)
        norms = flat.norm(dim=1)
        unit = flat / norms.clamp_min(1e-8)[:, None]
        gram = unit @ unit.T
        ortho = torch.triu(gram, diagonal=1).square().sum()
        nontrivial = torch.relu(1.0 - norms).square().sum()
        return ortho, nontrivial

    # -- training --------------------------------------------------------------------
    def step(self, i: int) -> dict[str, float]:
        """One discriminator and one basis update (each skipped when its loss or gradient
        is non-finite: :func:`~labkit.core.train.guarded_step`).

        Returns ``loss_d``, ``loss_g``, ``reg_ortho``, ``reg_nontrivial`` and, every
        ``eval_every`` steps (and at the last), ``cosine``: the smallest principal cosine
        between the span of the basis and the reference span (when there is one).
        """
        cfg = self.config
        idx = torch.randint(0, self._x.shape[0], (cfg.batch_size,), generator=self.rng)
        x = self._x[idx.to(self.device)]
        y = None if self._y is None else self._y[idx.to(self.device)]
        w = self._coefficients(cfg.batch_size)
        g = torch.linalg.matrix_exp(torch.einsum("bk,kij->bij", w, self.basis))
        real = self._joint(x, y)
        fake = self._joint(self._act(g, x), y)
        ones = torch.ones(cfg.batch_size, 1, device=self.device, dtype=self.basis.dtype)
        zeros = torch.zeros_like(ones)
        with self._lock:
            self.opt_d.zero_grad(set_to_none=True)
            loss_d = self._bce(self.disc(real), ones) + self._bce(self.disc(fake.detach()), zeros)
            loss_d.backward()
            guarded_step(self.opt_d, loss_d)
            loss_g = self._bce(self.disc(fake), ones)
            ortho, nontrivial = self._regularisers()
            total = loss_g + cfg.reg_ortho * ortho + cfg.reg_nontrivial * nontrivial
            (grad,) = torch.autograd.grad(total, [self.basis])
            self.basis.grad = grad
            guarded_step(self.opt_g, total)
        out = {"loss_d": loss_d.item(), "loss_g": loss_g.item(),
               "reg_ortho": ortho.item(), "reg_nontrivial": nontrivial.item()}
        if self._ref is not None and (i % cfg.eval_every == 0 or i == cfg.steps - 1):
            gens = self.generators()
            cos = smallest_cosine(gens, self._ref) if torch.isfinite(gens).all() else float("nan")
            out["cosine"] = cos
            self._cos_steps.append(i)
            self._cos_values.append(cos)
        return out

    def found(self) -> bool:
        """Whether the cosine has stayed above threshold for ``window`` evaluations."""
        cfg = self.config
        return sustained_crossing(self._cos_values, cfg.threshold, cfg.window) is not None

    def generators(self) -> torch.Tensor:
        """The learned basis ``[k, n, n]``, float64 on the CPU, a detached copy."""
        with self._lock:
            return self.basis.detach().to("cpu", torch.float64).clone()

    def result(self, *, seconds: float = 0.0) -> DiscoveryResult:
        """Scores, two-sample tests and verdict for the current basis."""
        cfg = self.config
        steps, values = self._cos_steps, self._cos_values
        if not steps and "cosine" in self.history.metrics:  # restored from a checkpoint
            pairs = [(s, v) for s, v in zip(self.history.steps, self.history["cosine"], strict=True)
                     if v == v]
            steps, values = [s for s, _ in pairs], [v for _, v in pairs]
        return judge(self.data, self.generators(), method="liegan", history=self.history,
                     coeff_scale=cfg.coeff_scale, integer=cfg.coefficients == "integer",
                     threshold=cfg.threshold, window=cfg.window,
                     cosine_values=values if self._ref is not None else None,
                     cosine_steps=steps, seconds=seconds, seed=self.seed,
                     n_permutations=cfg.n_permutations)

    # -- checkpoints -----------------------------------------------------------------
    def fingerprint(self) -> str:
        """The settings, the dtype and the data (a checkpoint of another run is refused on
        resume); not the seed, which the checkpoint itself restores."""
        return fingerprint(self.config, str(self._x.dtype), self.data.x,
                           *(() if self.data.y is None else (self.data.y,)))

    def state_dict(self) -> dict[str, Any]:
        """Basis, discriminator, both optimizers, the random state, the score curve and
        :attr:`seed` (which seeds the final tests)."""
        with self._lock:
            return copy.deepcopy({"basis": self.basis.detach(), "disc": self.disc.state_dict(),
                    "opt_d": self.opt_d.state_dict(), "opt_g": self.opt_g.state_dict(),
                    "rng": self.rng.get_state(), "cos_steps": list(self._cos_steps),
                    "cos_values": list(self._cos_values), "seed": self.seed})

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved."""
        with self._lock, torch.no_grad():
            self.basis.copy_(state["basis"])
            self.disc.load_state_dict(state["disc"])
            self.opt_d.load_state_dict(state["opt_d"])
            self.opt_g.load_state_dict(state["opt_g"])
            self.rng.set_state(state["rng"])
            self._cos_steps = list(state.get("cos_steps", []))
            self._cos_values = list(state.get("cos_values", []))
            self.seed = int(state.get("seed", self.seed))


def liegan(
    data: SymmetryData,
    config: LieGANConfig = LieGANConfig(),
    *,
    seed: Seed = 0,
    device: str | torch.device = "auto",
    dtype: torch.dtype = torch.float32,
    checkpoint: str | Path | Checkpoint | None = None,
    progress: bool = False,
    callbacks: Sequence[Any] = (),
    stop: threading.Event | None = None,
    on_nan: Literal["raise", "stop"] = "raise",
) -> DiscoveryResult:
    """Discover a Lie algebra of symmetries of ``data`` with LieGAN.

    Trains :class:`LieGAN` through :func:`labkit.core.train.run` (stopping early once
    the cosine to a known reference has stayed above ``config.threshold`` for
    ``config.window`` evaluations, if ``config.early_stop``), then judges the result:
    "symmetry found" needs that sustained cosine (with a reference), a paired two-sample
    test that does not tell the data from the data moved by the learned group, and a
    control (random generators of the same norms, off the learned span) that it does
    tell apart (:class:`~labkit.symmetry.Verdict`).

    Args:
        data: the samples, e.g. :func:`~labkit.symmetry.two_body`.
        config: a :class:`LieGANConfig`.
        seed: seeds the basis, the discriminator, the batches and the tests: an int, a
            :class:`torch.Generator` (one int is drawn from it) or None (a fresh int); the
            result records the int as ``seed``, and passing it back repeats the run.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        dtype: ``torch.float32`` (default) or ``torch.float64``, see :class:`LieGAN`.
        checkpoint, progress, callbacks, stop, on_nan: as for :func:`labkit.core.train.run`
            (a path is resumed from when it exists).

    Raises:
        ConfigError: ``data`` is not a :class:`~labkit.symmetry.SymmetryData` or ``dtype``
            is not float32 or float64.
        DivergenceError: a loss became non-finite (e.g. an absurd learning rate) and
            ``on_nan="raise"``.

    Example:
        >>> from labkit.symmetry import so2_invariant
        >>> res = liegan(so2_invariant(), device="cpu")
        >>> res.verdict.label, round(res.scores["cosine"], 2), res.status
        ('symmetry found', 1.0, 'finished')
    """
    trainer = LieGAN(data, config, seed=seed, device=device, dtype=dtype)
    cbs = list(callbacks)
    if config.early_stop and data.reference is not None:
        cbs.append(lambda i, metrics, history: "cosine" in metrics and trainer.found())
    res = run(trainer, config.steps, checkpoint=checkpoint, callbacks=cbs, stop=stop,
              on_nan=on_nan, progress=progress)
    early = (res.status == "stopped" and config.early_stop and data.reference is not None
             and not (stop is not None and stop.is_set()) and trainer.found())
    status, message = ((("finished", f"stopped early after step {res.steps_done - 1}: the "
                         f"cosine stayed above {config.threshold} for {config.window} "
                         "evaluations")) if early else (res.status, res.message))
    return dataclasses.replace(trainer.result(seconds=res.seconds), status=status,
                               message=message)
