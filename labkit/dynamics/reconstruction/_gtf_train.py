"""Training GTF models: :func:`train_gtf` (one model) and :func:`train_gtf_ensemble` (K
models at once: several seeds, or several systems of the same dimension), both one
:class:`~labkit.dynamics.GTFTrainer` run through :func:`labkit.core.train.run`, and their
results.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from jaxtyping import Float
from torch import Tensor, nn

from labkit.core.train import Checkpoint, History, run
from labkit.dynamics._tables import markdown_table, records_to_xarray
from labkit.dynamics.reconstruction._data import ReconstructionData
from labkit.dynamics.reconstruction._gtf import GTFConfig
from labkit.dynamics.reconstruction._gtf_trainer import GTFTrainer, is_data_list
from labkit.dynamics.reconstruction._metrics import state_space_divergence
from labkit.dynamics.reconstruction._plrnn import PiecewiseLinearRNN
from labkit.errors import DivergenceError

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["GTFEnsembleResult", "GTFResult", "train_gtf", "train_gtf_ensemble"]

#: Default number of seeds when one data set is given and ``seeds`` is not.
DEFAULT_SEEDS = 4


@dataclasses.dataclass(frozen=True)
class GTFResult:
    """A finished (or stopped) GTF model.

    Attributes:
        model: the trained latent model (a copy, on the training device).
        observation: the observation model.
        history: per-step ``loss``, ``alpha``, ``lr`` (and ``G`` where estimated).
        status, message: as in :class:`~labkit.core.train.RunResult` (``"diverged"`` with
            a message when a non-finite loss stopped the model; it then holds the last
            finite parameters).
        seconds: wall-clock time of the run.
        alpha: the final :math:`\\alpha`.
        config: the settings.
        trainer: a one-member :class:`~labkit.dynamics.GTFTrainer` holding this model (to
            continue, or to :meth:`~labkit.dynamics.GTFTrainer.generate`).
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

    def generate(self, n_steps: int, x0: Float[Tensor, " obs"] | None = None
                 ) -> Float[Tensor, "time obs"]:
        """Free-running trajectory of ``n_steps`` steps in observation space,
        ``[n_steps + 1, N]``."""
        return self.trainer.generate(n_steps, x0)

    @property
    def loss(self) -> float:
        """The loss of the last recorded step (NaN before the first, or at a divergence)."""
        return float(self.history.last().get("loss", math.nan))

    def as_dict(self) -> dict[str, Any]:
        """The run in plain numbers and strings: ``model``, ``latent_dim``, ``status``,
        ``message``, ``steps`` (recorded), ``loss`` (the last), ``alpha``, ``seconds``."""
        return {"model": self.config.model, "latent_dim": int(self.model.dim),
                "status": self.status, "message": self.message, "steps": len(self.history),
                "loss": self.loss, "alpha": float(self.alpha), "seconds": float(self.seconds)}

    def summary(self) -> str:
        """One line: the model, how the run ended, its last loss and :math:`\\alpha`."""
        d = self.as_dict()
        line = (f"{d['model']} (M = {d['latent_dim']}): {d['status']} after {d['steps']} "
                f"steps in {d['seconds']:.1f} s, loss {d['loss']:.4g}, alpha {d['alpha']:.3g}")
        return line + (f" ({self.message})" if self.message else "")


@dataclasses.dataclass(frozen=True)
class GTFEnsembleResult:
    """A finished (or stopped) ensemble run.

    Attributes:
        members: one :class:`~labkit.dynamics.GTFResult` per member (its own model,
            history and status: ``"diverged"`` with the step for a member that was frozen).
        seeds: the members' seeds (a generator where one was given as ``seed``).
        history: the ensemble's per-step means (``loss``, ``alpha``) and ``alive``.
        status, message: of the run as a whole (``"diverged"`` only when every member did).
        seconds: wall-clock time of the run.
        trainer: the :class:`~labkit.dynamics.GTFTrainer` of all members.
    """

    members: list[GTFResult]
    seeds: list[int | torch.Generator]
    history: History
    status: str
    message: str
    seconds: float
    trainer: GTFTrainer = dataclasses.field(repr=False)

    def __len__(self) -> int:
        return len(self.members)

    def records(self) -> list[dict[str, Any]]:
        """One dict per member: ``member``, ``seed`` (None for a generator), ``system``,
        and its :meth:`GTFResult.as_dict` (``status``, ``loss``, ``alpha``, ...). For the
        members' metrics on the test series see :meth:`scores`."""
        return [{"member": k, "seed": _plain_seed(self.seeds[k]), "system": data.system}
                | res.as_dict()
                for k, (res, data) in enumerate(zip(self.members, self.trainer.datasets,
                                                    strict=True))]

    def summary(self) -> str:
        """The members as a Markdown table, after a line on the run as a whole."""
        head = (f"{len(self)} members, {self.status} in {self.seconds:.1f} s"
                + (f" ({self.message})" if self.message else ""))
        return head + "\n\n" + markdown_table(self.records(), _MEMBER_COLUMNS)

    def to_xarray(self) -> xr.Dataset:
        """:meth:`records` as an :class:`xarray.Dataset` on a ``member`` axis."""
        return records_to_xarray(self.records(), "member", "member",
                                 attrs={"status": self.status, "seconds": self.seconds})

    def __getitem__(self, k: int) -> GTFResult:
        return self.members[k]

    def selection_scores(self, n_generate: int = 10_000, *, bins: int = 30) -> list[float | None]:
        """Each member's :math:`D_{stsp}` of a free run from its first *training* sample
        against its training series (no test data touched, so it may pick a model);
        ``None`` for a member that diverged in training or whose free run diverges."""
        out: list[float | None] = []
        for res, data in zip(self.members, self.trainer.datasets, strict=True):
            n = min(n_generate, data.train.shape[0] - 1)
            if res.status == "diverged":
                out.append(None)
                continue
            try:
                free = res.generate(n, x0=data.train[0])
            except DivergenceError:
                out.append(None)
                continue
            out.append(float(state_space_divergence(data.train[: n + 1], free, bins=bins)))
        return out

    def select(self, n_generate: int = 10_000, *, bins: int = 30) -> GTFResult:
        """The member with the lowest :meth:`selection_scores` (model selection on the
        training series, as one picks the best of several runs without looking at test
        data).

        Raises:
            DivergenceError: every member diverged.
        """
        scores = self.selection_scores(n_generate, bins=bins)
        ok = [(v, k) for k, v in enumerate(scores) if v is not None]
        if not ok:
            raise DivergenceError(f"all {len(scores)} members diverged; nothing to select")
        return self.members[min(ok)[1]]

    def scores(self, n_generate: int | None = None, *, bins: int = 30,
               smoothing: float = 20.0) -> list[dict[str, Any]]:
        """Each member's :math:`D_{stsp}` and :math:`D_H` against its data's test series
        (a free run from the first test sample), with ``seed``, ``system`` and ``status``;
        a member whose free run diverges scores ``None``."""
        from labkit.dynamics.reconstruction._baselines import baseline_table

        rows = []
        for k, (res, data) in enumerate(zip(self.members, self.trainer.datasets, strict=True)):
            row = baseline_table(data, {f"member {k}": res}, n_generate=n_generate,
                                 floor=False, bins=bins, smoothing=smoothing).rows[0]
            rows.append({"member": k, "seed": _plain_seed(self.seeds[k]), "system": data.system,
                         "d_stsp": row.d_stsp, "d_h": row.d_h,
                         "status": res.status if res.status != "finished" else row.status})
        return rows


def train_gtf(
    data: ReconstructionData | Any,
    config: GTFConfig = GTFConfig(),
    *,
    seed: int | torch.Generator | None = 0,
    device: str | torch.device = "auto",
    dtype: torch.dtype = torch.float32,
    checkpoint: str | Path | Checkpoint | None = None,
    progress: bool = False,
    callbacks: Sequence[Any] = (),
    stop: threading.Event | None = None,
    on_nan: Literal["raise", "stop"] = "raise",
) -> GTFResult:
    """Train a shPLRNN / clipped shPLRNN / AL-RNN on ``data`` with (generalized) teacher
    forcing: the one-member :class:`~labkit.dynamics.GTFTrainer` through
    :func:`labkit.core.train.run`.

    Args:
        data: a :class:`ReconstructionData` (or an array ``[time, dim]``, wrapped by
            :meth:`ReconstructionData.from_array <labkit.dynamics.ReconstructionData.from_array>`).
        config: a :class:`~labkit.dynamics.GTFConfig` (:meth:`GTFConfig.official` for the
            paper's).
        seed: seeds the model and the batches (an int, a :class:`torch.Generator`, or
            None for a fresh seed).
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        dtype: of the model's parameters and the training computation.
        checkpoint, progress, callbacks, stop, on_nan: as for :func:`labkit.core.train.run`
            (a callback with ``bind(trainer)``, e.g. a
            :class:`~labkit.widgets.ReconstructionMonitor`, gets the trainer first).

    Example:
        >>> from labkit.dynamics import reconstruction_data
        >>> d = reconstruction_data(n_steps=500, dt=0.01, n_test=0)
        >>> res = train_gtf(d, GTFConfig(hidden_dim=8, seq_len=20, steps=5), device="cpu")
        >>> res.status, len(res.history)
        ('finished', 5)
    """
    ens = _train(data, config, seed=seed, seeds=None, device=device, dtype=dtype,
                 checkpoint=checkpoint, progress=progress, callbacks=callbacks, stop=stop,
                 on_nan=on_nan)
    return ens.members[0]


def train_gtf_ensemble(
    data: Any,
    config: GTFConfig = GTFConfig(),
    *,
    seeds: int | Sequence[int] | None = None,
    device: str | torch.device = "auto",
    dtype: torch.dtype = torch.float32,
    checkpoint: str | Path | Checkpoint | None = None,
    progress: bool = False,
    callbacks: Sequence[Any] = (),
    stop: threading.Event | None = None,
    on_nan: Literal["raise", "stop"] = "raise",
) -> GTFEnsembleResult:
    """Train K shPLRNNs / AL-RNNs at once (several seeds, or several systems of the same
    dimension), each as :func:`~labkit.dynamics.train_gtf` would alone, through
    :func:`labkit.core.train.run`.

    Args:
        data, seeds: see :class:`~labkit.dynamics.GTFTrainer` (default: 4 seeds for one
            data set, ``0..len-1`` for a list).
        config, device, dtype, checkpoint, progress, stop: as for
            :func:`~labkit.dynamics.train_gtf` (the checkpoint holds every member).
        callbacks: as for :func:`~labkit.dynamics.train_gtf`; a callback with a
            ``bind(trainer)`` method gets the :class:`~labkit.dynamics.GTFTrainer`, whose ``model``
            and ``observation`` are those of member ``trainer.monitored`` (0), so a
            :class:`~labkit.widgets.ReconstructionMonitor` follows that member.
        on_nan: what happens when *every* member has diverged (a single member that
            diverges is frozen and reported in its :class:`GTFResult`).

    Example:
        >>> from labkit.dynamics import reconstruction_data
        >>> d = reconstruction_data(n_steps=500, dt=0.01, n_test=0)
        >>> res = train_gtf_ensemble(d, GTFConfig(hidden_dim=8, seq_len=20, steps=4),
        ...                          seeds=[0, 7], device="cpu")
        >>> [m.status for m in res.members], len(res[1].history)
        (['finished', 'finished'], 4)
    """
    if seeds is None and not is_data_list(data):
        seeds = DEFAULT_SEEDS
    return _train(data, config, seed=0, seeds=seeds, device=device, dtype=dtype,
                  checkpoint=checkpoint, progress=progress, callbacks=callbacks, stop=stop,
                  on_nan=on_nan)


def _plain_seed(seed: int | torch.Generator) -> int | None:
    return seed if isinstance(seed, int) else None


#: The columns of :meth:`GTFEnsembleResult.summary`.
_MEMBER_COLUMNS = (("member", "member", "d"), ("seed", "seed", "d"), ("system", "system", ""),
                   ("status", "status", ""), ("steps", "steps", "d"), ("loss", "loss", ".4g"),
                   ("alpha", "alpha", ".3g"))


def _train(data: Any, config: GTFConfig, *, seed: int | torch.Generator | None,
           seeds: int | Sequence[int] | None, device: str | torch.device, dtype: torch.dtype,
           checkpoint: str | Path | Checkpoint | None, progress: bool,
           callbacks: Sequence[Any], stop: threading.Event | None,
           on_nan: Literal["raise", "stop"]) -> GTFEnsembleResult:
    trainer = GTFTrainer(data, config, seed=seed, seeds=seeds, device=device, dtype=dtype)
    res = run(trainer, config.steps, checkpoint=checkpoint, callbacks=callbacks, stop=stop,
              on_nan=on_nan, progress=progress)
    members = []
    for k in range(trainer.n_members):
        single = trainer.member(k)
        at = trainer.diverged_at[k]
        status, message = (("diverged", f"member {k} (seed {trainer.seeds[k]}) had a "
                            f"non-finite loss or gradient at step {at}; it holds its last "
                            "finite parameters") if at is not None else (res.status, res.message))
        model, observation = single.model, single.observation
        members.append(GTFResult(model=model, observation=observation,
                                 history=trainer.histories[k], status=status, message=message,
                                 seconds=res.seconds, alpha=trainer.alphas[k], config=config,
                                 trainer=single))
    return GTFEnsembleResult(members=members, seeds=list(trainer.seeds), history=res.history,
                             status=res.status, message=res.message, seconds=res.seconds,
                             trainer=trainer)
