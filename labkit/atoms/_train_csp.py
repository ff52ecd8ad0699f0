"""Training a :class:`~labkit.atoms.CrystalDiffusion` on labkit's one engine (:func:`labkit.core.train.run`)."""

from __future__ import annotations

import copy
import dataclasses
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import torch

from labkit.atoms._diffusion import CrystalDiffusion, CSPConfig, unpack
from labkit.core.device import resolve_device
from labkit.core.rng import make_generator
from labkit.core.shapes import CrystalTensors
from labkit.core.train import Checkpoint, History, RunResult, fingerprint, guarded_step, run
from labkit.errors import ConfigError, DataError

__all__ = ["CSPTrainer", "CSPTraining", "train_csp"]


class CSPTrainer:
    """Holds a :class:`CrystalDiffusion`, its Adam optimizer and a random generator; its
    :meth:`step` is what :func:`~labkit.core.train.run` calls.

    Args:
        data: the training crystals, either a whole padded set (an object, mapping or
            4-tuple of ``species, frac, lattice, mask``; batches of
            ``config.batch_size`` are drawn from it with replacement) or a callable
            ``data(step) -> batch``.
        config: a :class:`CSPConfig` (default ``CSPConfig()``); ``task="gen"`` trains an
            ab initio generator (species diffused too), whose steps also report
            ``loss_type``.
        seed: seeds the weights, the batches and the diffusion noise: an int, a
            :class:`torch.Generator` (on the CPU, used as is) or ``None`` (fresh entropy),
            through :func:`labkit.core.make_generator`.
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        dtype: of the model and of the coordinates and lattices it trains on (default
            float32).

    Example:
        >>> import torch
        >>> species = torch.tensor([[8, 8, 22, 0]] * 4); mask = species > 0
        >>> data = (species, torch.rand(4, 4, 3), 4 * torch.eye(3).expand(4, 3, 3), mask)
        >>> trainer = CSPTrainer(data, CSPConfig(hidden=16, batch_size=2), device="cpu")
        >>> sorted(trainer.step(0))
        ['loss', 'loss_coord', 'loss_lattice']
        >>> gen = CSPTrainer(data, CSPConfig(task="gen", hidden=16, batch_size=2), device="cpu")
        >>> sorted(gen.step(0))
        ['loss', 'loss_coord', 'loss_lattice', 'loss_type']
    """

    def __init__(self, data: Any, config: CSPConfig | None = None, *,
                 seed: int | torch.Generator | None = 0, device: str | torch.device = "auto",
                 dtype: torch.dtype = torch.float32) -> None:
        config = CSPConfig() if config is None else config
        if not isinstance(config, CSPConfig):
            raise ConfigError(f"config must be a CSPConfig, got {type(config).__name__}")
        self.config, self.seed, self.dtype = config, seed, dtype
        self.device = resolve_device(device)
        self.rng = make_generator(seed)
        self.model = CrystalDiffusion(config, seed=self.rng, dtype=dtype).to(self.device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.history = History()
        self._lock = threading.Lock()
        if callable(data) and not hasattr(data, "species"):
            self._source: Callable[[int], Any] | None = data
            self._data = None
        else:
            species, frac, lattice, mask = unpack(data)
            if not bool(mask.any(1).all()):
                raise DataError("every crystal needs at least one atom (a row of mask is all False)")
            self._source = None
            self._data = tuple(x.to(self.device) for x in (species, frac.to(dtype), lattice.to(dtype), mask))

    def batch(self, i: int) -> CrystalTensors:
        """The batch of step ``i`` (on the device): ``(species, frac, lattice, mask)``."""
        if self._source is not None:
            species, frac, lattice, mask = unpack(self._source(i))
            return (species.to(self.device), frac.to(self.device, self.dtype),
                    lattice.to(self.device, self.dtype), mask.to(self.device))
        assert self._data is not None
        count = self._data[0].shape[0]
        idx = torch.randint(0, count, (self.config.batch_size,), generator=self.rng).to(self.device)
        species, frac, lattice, mask = (x[idx] for x in self._data)
        width = int(mask.sum(1).max())          # drop columns that are padding in the whole batch
        order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)[:, :width]
        take = lambda x: torch.gather(x, 1, order.view(*order.shape, *([1] * (x.ndim - 2)))  # noqa: E731
                                      .expand(-1, -1, *x.shape[2:]))
        return take(species), take(frac), lattice, take(mask)

    def step(self, i: int) -> dict[str, float]:
        """One Adam step on :meth:`CrystalDiffusion.loss` (skipped when the loss or a
        gradient is non-finite: :func:`~labkit.core.train.guarded_step`); returns its losses
        as floats (``loss``, ``loss_lattice``, ``loss_coord``, and ``loss_type`` for
        ``task="gen"``)."""
        batch = self.batch(i)
        with self._lock:
            self.model.train()
            self.opt.zero_grad(set_to_none=True)
            losses = self.model.loss(batch, generator=self.rng)
            losses["loss"].backward()
            guarded_step(self.opt, losses["loss"], clip=self.config.grad_clip)
        return {k: v.item() for k, v in losses.items()}

    def fingerprint(self) -> str:
        """The settings, the dtype and the training crystals (a data source given as a
        callable is named by its qualified name): see :func:`labkit.core.run`."""
        data = (() if self._data is None else self._data)
        source = None if self._source is None else getattr(self._source, "__qualname__", "")
        return fingerprint(self.config, str(self.dtype), source, *data)

    def state_dict(self) -> dict[str, Any]:
        """Weights, optimizer and random state (for :class:`~labkit.core.train.Checkpoint`)."""
        with self._lock:
            return copy.deepcopy({"model": self.model.state_dict(), "opt": self.opt.state_dict(),
                                  "rng": self.rng.get_state()})

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved."""
        with self._lock:
            self.model.load_state_dict(state["model"])
            self.opt.load_state_dict(state["opt"])
            self.rng.set_state(state["rng"])


@dataclasses.dataclass(frozen=True)
class CSPTraining:
    """What :func:`train_csp` returns.

    Attributes:
        model: the trained :class:`CrystalDiffusion` (call :meth:`~CrystalDiffusion.sample`,
            or :meth:`~CrystalDiffusion.sample_ab_initio` for ``task="gen"``); after a
            divergence it holds the last finite parameters.
        fit: the :class:`~labkit.core.train.RunResult`.
        trainer: the :class:`CSPTrainer` (to continue training).
    """

    model: CrystalDiffusion
    fit: RunResult
    trainer: CSPTrainer = dataclasses.field(repr=False)

    @property
    def history(self) -> History:
        return self.fit.history

    @property
    def status(self) -> str:
        """``"finished"``, ``"stopped"`` or ``"diverged"``."""
        return self.fit.status

    @property
    def message(self) -> str:
        return self.fit.message

    @property
    def seconds(self) -> float:
        """Wall time of this call (not of earlier, resumed parts)."""
        return self.fit.seconds

    def as_dict(self) -> dict[str, float | int | str]:
        """Plain numbers and strings: ``status``, ``message``, ``seconds``, ``steps``
        (recorded steps, across resumed parts), ``task`` and the last recorded value of
        every metric (``loss``, ``loss_lattice``, ``loss_coord``, and ``loss_type`` for
        ``task="gen"``; absent before the first step)."""
        return {"status": self.status, "message": self.message, "seconds": float(self.seconds),
                "steps": len(self.history), "task": self.model.config.task,
                **{k: float(v) for k, v in self.history.last().items()}}

    def summary(self) -> str:
        """One line for people: status, steps, time and the last loss."""
        d = self.as_dict()
        loss = f", last loss {d['loss']:.4g}" if "loss" in d else ""
        why = f" ({d['message']})" if d["message"] else ""
        return f"CSP training ({d['task']}) {d['status']}{why}: {d['steps']} steps in {d['seconds']:.1f} s{loss}"


def train_csp(
    data: Any,
    config: CSPConfig | None = None,
    *,
    seed: int | torch.Generator | None = 0,
    device: str | torch.device = "auto",
    dtype: torch.dtype = torch.float32,
    checkpoint: str | os.PathLike | Checkpoint | None = None,
    progress: bool = False,
    callbacks: Sequence[Any] = (),
    stop: threading.Event | None = None,
    on_nan: Literal["raise", "stop"] = "raise",
) -> CSPTraining:
    """Train a DiffCSP-style model for ``config.steps`` steps through
    :func:`labkit.core.train.run`: crystal structure prediction (``config.task="csp"``) or
    ab initio generation (``config.task="gen"``).

    Args:
        data: see :class:`CSPTrainer`.
        config: a :class:`CSPConfig` (default ``CSPConfig()``).
        seed: seeds weights, batches and noise (an int, a :class:`torch.Generator` or
            ``None``): the same int seed repeats the run exactly.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        dtype: of the model and the training data (default float32).
        checkpoint, progress, callbacks, stop, on_nan: as for :func:`labkit.core.train.run`
            (a path is resumed from when it exists).

    Raises:
        DivergenceError: a non-finite loss (with ``on_nan="raise"``).
    """
    config = CSPConfig() if config is None else config
    trainer = CSPTrainer(data, config, seed=seed, device=device, dtype=dtype)
    if isinstance(checkpoint, os.PathLike) and not isinstance(checkpoint, Path):
        checkpoint = Path(checkpoint)
    result = run(trainer, config.steps, checkpoint=checkpoint, callbacks=callbacks, stop=stop,
                 progress=progress, on_nan=on_nan)
    return CSPTraining(model=trainer.model, fit=result, trainer=trainer)
