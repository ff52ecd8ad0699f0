"""GTF training of an ensemble: several seeds, or several systems, in one batched run.

Each member is initialised, fed and updated exactly as :class:`~labkit.dynamics.GTFTrainer`
would do it alone with the same seed and data (its own random stream for the
initialisation and the batches, its own adaptive :math:`\\alpha`, its own divergence
check), but the forward and backward passes of all members run as one batched computation
(``torch.func.vmap`` over stacked parameters). On a GPU that turns K small launches per
time step into one; on a CPU it still saves the Python overhead of K loops. A member whose
loss or gradient turns non-finite is frozen at its last finite parameters and reported;
the others go on.
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
from torch.func import functional_call, stack_module_state, vmap

from labkit.core.device import resolve_device
from labkit.core.train import Checkpoint, History, run, sample_windows, set_lr
from labkit.dynamics._dsr_data import ReconstructionData, from_array
from labkit.dynamics._dsr_metrics import state_space_divergence
from labkit.dynamics._gtf import GTFConfig, GTFResult, GTFTrainer, jacobian_bound, next_alpha
from labkit.dynamics._plrnn import ALRNN, ShallowPLRNN
from labkit.errors import ConfigError, DivergenceError

__all__ = ["GTFEnsembleResult", "GTFEnsembleTrainer", "train_gtf_ensemble"]

#: Default number of seeds when one data set is given and ``seeds`` is not.
DEFAULT_SEEDS = 4


class _Member(nn.Module):
    """One latent model with its observation model; ``forward(op, x)`` dispatches, so a
    single ``functional_call`` can evaluate any of the pieces with stacked parameters."""

    def __init__(self, model: nn.Module, observation: nn.Module) -> None:
        super().__init__()
        self.model, self.observation = model, observation

    def forward(self, op: str, x: torch.Tensor) -> torch.Tensor:
        if op == "step":
            return self.model(x)
        if op == "jacobian":
            return self.model.jacobian(x)
        if op == "observe":
            return self.observation(x)
        if op == "init":
            return self.observation.init_state(x)
        if op == "invert":
            return self.observation.invert(x)
        raise ValueError(op)


def _batched_step(model: nn.Module, p: dict[str, torch.Tensor], z: torch.Tensor) -> torch.Tensor:
    """One step of every member, ``z`` ``[K, B, M]``, with stacked parameters ``p``: the
    model's own formula with batched matrix products (the hot loop; ``vmap`` costs ~7x
    more per call on a CPU). The tests check it against the modules' ``forward``."""
    if isinstance(model, ShallowPLRNN):
        u = torch.bmm(z, p["model.W2"].transpose(1, 2))
        phi = torch.relu(u + p["model.h2"][:, None])
        if model.clipped:
            phi = phi - torch.relu(u)
        return (p["model.A"][:, None] * z + torch.bmm(phi, p["model.W1"].transpose(1, 2))
                + p["model.h1"][:, None])
    if isinstance(model, ALRNN):
        k = model.dim - model.n_relu
        phi = torch.cat([z[..., :k], torch.relu(z[..., k:])], -1) if model.n_relu else z
        w = p["model.W"] * p["model._offdiag"]
        return p["model.A"][:, None] * z + torch.bmm(phi, w.transpose(1, 2)) + p["model.h"][:, None]
    raise ConfigError(f"no batched step for {type(model).__name__}")


def _as_data(data: Any) -> ReconstructionData:
    return data if isinstance(data, ReconstructionData) else from_array(data)


def _members(data: Any, seeds: int | Sequence[int] | None
             ) -> tuple[list[ReconstructionData], list[int]]:
    if isinstance(data, Sequence) and not isinstance(data, str) and data and all(
            isinstance(d, ReconstructionData) for d in data):
        datasets = list(data)
        if seeds is None:
            seeds = list(range(len(datasets)))
    else:
        datasets = [_as_data(data)]
        if seeds is None:
            seeds = DEFAULT_SEEDS
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ConfigError(f"seeds must be a count >= 1 or a list of ints, got {seeds!r}")
        seeds = list(range(seeds))
    seeds = list(seeds)
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ConfigError(f"seeds must be a non-empty list of ints, got {seeds!r}")
    if len(datasets) == 1:
        datasets = datasets * len(seeds)
    if len(datasets) != len(seeds):
        raise ConfigError(f"{len(datasets)} data sets but {len(seeds)} seeds; give one seed "
                          "per data set (or leave seeds out)")
    dims = sorted({d.n_obs for d in datasets})
    if len(dims) > 1:
        raise ConfigError("every member must observe the same number of variables, got "
                          + ", ".join(f"{d.system}: N={d.n_obs}" for d in datasets))
    return datasets, seeds


class GTFEnsembleTrainer:
    """GTF (or sparse TF) training of K members at once; see the module docstring.

    Args:
        data: one :class:`ReconstructionData` (or array) shared by all members, or a list
            of them, one per member (several systems with the same dimension, or several
            noise realisations).
        config: the settings, the same for every member.
        seeds: the members' seeds (a list), or a count ``K`` meaning ``0..K-1``; default
            one seed per data set, or 4 seeds for a single data set.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.

    Example:
        >>> from labkit.dynamics._dsr_data import reconstruction_data
        >>> d = reconstruction_data(n_steps=500, dt=0.01, n_test=0)
        >>> tr = GTFEnsembleTrainer(d, GTFConfig(hidden_dim=8, seq_len=20, steps=3),
        ...                         seeds=3, device="cpu")
        >>> tr.n_members, sorted(tr.step(0))
        (3, ['G', 'alive', 'alpha', 'loss', 'lr'])
    """

    def __init__(self, data: Any, config: GTFConfig = GTFConfig(), *,
                 seeds: int | Sequence[int] | None = None,
                 device: str | torch.device = "auto") -> None:
        if not isinstance(config, GTFConfig):
            raise ConfigError(f"config must be a GTFConfig, got {type(config).__name__}")
        self.datasets, self.seeds = _members(data, seeds)
        # The single trainer checks the settings against the data and builds each member
        # from its seed exactly as it would alone.
        singles = [GTFTrainer(d, config, seed=s, device="cpu")
                   for d, s in zip(self.datasets, self.seeds, strict=True)]
        self.config = config
        self.device = resolve_device(device)
        self.n_members = len(singles)
        self.rngs = [t.rng for t in singles]
        self._template = _Member(copy.deepcopy(singles[0].model),
                                 copy.deepcopy(singles[0].observation)).to("meta")
        params, buffers = stack_module_state([_Member(t.model, t.observation) for t in singles])
        self.params = {k: v.detach().to(self.device).requires_grad_(v.requires_grad)
                       for k, v in params.items()}
        self.buffers = {k: v.to(self.device) for k, v in buffers.items()}
        self._trainable = [v for v in self.params.values() if v.requires_grad]
        opt = torch.optim.RAdam if config.optimizer == "radam" else torch.optim.Adam
        self.optimizer = opt(self._trainable, lr=config.lr_start)
        self.alpha = [t.alpha for t in singles]
        self.alive = [True] * self.n_members
        self.diverged_at: list[int | None] = [None] * self.n_members
        self.histories = [History() for _ in singles]
        self.history = History()
        self.n_forced = singles[0].observation.n_forced
        self.latent_dim = singles[0].model.dim
        on_device: dict[int, torch.Tensor] = {}  # one copy of a data set its members share
        for d in self.datasets:
            if id(d) not in on_device:
                on_device[id(d)] = d.train.to(self.device, torch.float32)
        self._x = [on_device[id(d)] for d in self.datasets]
        self._lock = threading.Lock()
        self._single = singles[0]  # its lr schedule; a CPU copy of the module structure
        self.monitored = 0

    @property
    def model(self) -> nn.Module:
        """The latent model of member :attr:`monitored` (a copy holding its current
        parameters), so that a monitor bound to the ensemble follows that member."""
        return self._member_modules(self.monitored)[0]

    @property
    def observation(self) -> nn.Module:
        """The observation model of member :attr:`monitored` (a copy)."""
        return self._member_modules(self.monitored)[1]

    def _member_modules(self, k: int) -> tuple[nn.Module, nn.Module]:
        state = self.member_state(k)
        model = copy.deepcopy(self._single.model).to(self.device)
        obs = copy.deepcopy(self._single.observation).to(self.device)
        model.load_state_dict(state["model"])
        obs.load_state_dict(state["observation"])
        return model, obs

    # -- batched pieces -------------------------------------------------------------
    def _call(self, op: str, x: torch.Tensor) -> torch.Tensor:
        """``op`` of every member on its slice of ``x`` (``[K, ...]``)."""
        p = {**self.params, **self.buffers}
        if op == "step":
            return _batched_step(self._template.model, p, x)

        def one(p_k: dict[str, torch.Tensor], x_k: torch.Tensor) -> torch.Tensor:
            return functional_call(self._template, p_k, (op, x_k))

        return vmap(one)(p, x)

    def lr(self, i: int) -> float:
        return self._single.lr(i)

    def sample(self) -> torch.Tensor:
        """``[K, batch, seq_len + 1, N]``: each member's batch from its own random stream."""
        cfg = self.config
        return torch.stack([sample_windows(x, cfg.seq_len + 1, cfg.batch_size, rng,
                                           noise=cfg.noise)
                            for x, rng in zip(self._x, self.rngs, strict=True)])

    def teacher_forced(self, x: torch.Tensor, alpha: torch.Tensor | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """Batched :meth:`GTFTrainer.teacher_forced`: ``x`` ``[K, B, T+1, N]``, ``alpha``
        ``[K]``; returns predicted and forced states ``[K, B, T, M]``."""
        cfg, nf = self.config, self.n_forced
        a = (torch.tensor(self.alpha, dtype=torch.float32, device=self.device)
             if alpha is None else alpha)[:, None, None]
        z = self._call("init", x[:, :, 0])
        target = self._call("invert", x[:, :, 1:])
        preds, forced = [], []
        for t in range(x.shape[2] - 1):
            zh = self._call("step", z)
            preds.append(zh)
            if cfg.forcing == "sparse":
                z = (torch.cat([target[:, :, t], zh[..., nf:]], -1)
                     if (t + 1) % cfg.tf_interval == 0 else zh)
            else:
                mixed = (1 - a) * zh[..., :nf] + a * target[:, :, t]
                z = torch.cat([mixed, zh[..., nf:]], -1) if nf < zh.shape[-1] else mixed
            forced.append(z)
        return torch.stack(preds, 2), torch.stack(forced, 2)

    def _estimate_alpha(self, x: torch.Tensor) -> list[float]:
        """Per member: :math:`G` (largest geometric-mean Jacobian norm over its sequences),
        as :func:`~labkit.dynamics.estimate_alpha`."""
        with torch.no_grad():
            target = self._call("invert", x[:, :, 1:])
            states = target
            if self.n_forced < self.latent_dim:
                _, forced = self.teacher_forced(x)
                states = torch.cat([target, forced[..., self.n_forced:]], -1)
            g = jacobian_bound(self._call("jacobian", states))  # [K]
        return [float(v) for v in g]

    # -- training -------------------------------------------------------------------
    def step(self, i: int) -> dict[str, float]:
        """One batch for every live member. Returns the mean ``loss`` and ``alpha`` over the
        live members, the number ``alive``, ``lr``, and ``G`` (largest over members) when
        :math:`\\alpha` was re-estimated; per-member values go to :attr:`histories`. The
        loss is NaN only when every member has diverged."""
        cfg = self.config
        lr = self.lr(i)
        x = self.sample()
        with self._lock:
            gs: list[float] | None = None
            if cfg.forcing == "gtf" and cfg.alpha_mode == "adaptive" and i % cfg.alpha_interval == 0:
                gs = self._estimate_alpha(x)
                for k, g in enumerate(gs):
                    if self.alive[k]:
                        self.alpha[k] = next_alpha(self.alpha[k], g, cfg.alpha_decay)
            set_lr(self.optimizer, lr)
            self.optimizer.zero_grad(set_to_none=True)
            pred, _ = self.teacher_forced(x)
            losses = ((self._call("observe", pred) - x[:, :, 1:]) ** 2).mean((1, 2, 3))
            live = torch.tensor(self.alive, device=self.device)
            losses.masked_select(live).sum().backward()
            finite = torch.isfinite(losses)
            for v in self._trainable:
                if v.grad is not None:
                    finite &= torch.isfinite(v.grad).flatten(1).all(1)
            ok = (finite & live).tolist()
            loss_list = losses.detach().tolist()
            for k in range(self.n_members):
                if self.alive[k] and not ok[k]:
                    self.alive[k], self.diverged_at[k] = False, i
            frozen = [k for k in range(self.n_members) if not ok[k]]
            saved = [v.detach()[frozen].clone() for v in self._trainable] if frozen else []
            with torch.no_grad():
                grads = [v.grad for v in self._trainable if v.grad is not None]
                for g in grads:
                    g[frozen] = 0.0
                if cfg.grad_clip > 0:
                    total = torch.sqrt(sum((g.double() ** 2).flatten(1).sum(1) for g in grads))
                    coef = (cfg.grad_clip / (total + 1e-6)).clamp(max=1.0)
                    for v in grads:
                        v.mul_(coef.to(v.dtype).view(-1, *[1] * (v.dim() - 1)))
            if len(frozen) == self.n_members:  # nothing to update (and Adam's moments stay)
                self.optimizer.zero_grad(set_to_none=True)
                frozen = []
            else:
                self.optimizer.step()
            if frozen:
                with torch.no_grad():
                    for v, s in zip(self._trainable, saved, strict=True):
                        v[frozen] = s
        wall = 0.0
        for k in range(self.n_members):
            if ok[k] or self.diverged_at[k] == i:
                m = {"loss": loss_list[k] if ok[k] else float("nan"), "alpha": self.alpha[k],
                     "lr": lr}
                if gs is not None:
                    m["G"] = gs[k]
                self.histories[k].append(i, m, wall)
        n_alive = sum(self.alive)
        live_losses = [loss_list[k] for k in range(self.n_members) if self.alive[k]]
        out = {"loss": sum(live_losses) / n_alive if n_alive else float("nan"),
               "alpha": (sum(a for a, on in zip(self.alpha, self.alive, strict=True) if on) / n_alive
                         if n_alive else float("nan")),
               "alive": float(n_alive), "lr": lr}
        if gs is not None:
            out["G"] = max(gs)
        return out

    # -- members ----------------------------------------------------------------------
    def member_state(self, k: int) -> dict[str, dict[str, torch.Tensor]]:
        """Member ``k``'s ``model`` and ``observation`` state dicts (copies)."""
        if not 0 <= k < self.n_members:
            raise ConfigError(f"member must be in [0, {self.n_members - 1}], got {k!r}")
        with self._lock:
            state = {name: v.detach()[k].clone() for name, v in self.params.items()}
        return {part: {n.split(".", 1)[1]: v for n, v in state.items()
                       if n.startswith(part + ".")} for part in ("model", "observation")}

    def member(self, k: int) -> GTFTrainer:
        """A stand-alone :class:`GTFTrainer` holding member ``k`` (its data, parameters,
        :math:`\\alpha` and history), e.g. to :meth:`~GTFTrainer.generate` or go on."""
        state = self.member_state(k)
        tr = GTFTrainer(self.datasets[k], self.config, seed=self.seeds[k], device=self.device)
        tr.model.load_state_dict(state["model"])
        tr.observation.load_state_dict(state["observation"])
        tr.alpha = self.alpha[k]
        snap = self.histories[k].snapshot()
        tr.history.steps, tr.history.wall, tr.history.metrics = (
            snap["steps"], snap["wall"], snap["metrics"])
        return tr

    # -- checkpoints ------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy({
                "params": {k: v.detach() for k, v in self.params.items()},
                "optimizer": self.optimizer.state_dict(), "alpha": list(self.alpha),
                "alive": list(self.alive), "diverged_at": list(self.diverged_at),
                "rngs": [r.get_state() for r in self.rngs],
                "histories": [h.snapshot() for h in self.histories]})

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with self._lock, torch.no_grad():
            for k, v in self.params.items():
                v.copy_(state["params"][k])
            self.optimizer.load_state_dict(state["optimizer"])
            self.alpha = list(state["alpha"])
            self.alive = list(state["alive"])
            self.diverged_at = list(state["diverged_at"])
            for r, s in zip(self.rngs, state["rngs"], strict=True):
                r.set_state(s)
            self.histories = [History.from_snapshot(h) for h in state["histories"]]


@dataclasses.dataclass(frozen=True)
class GTFEnsembleResult:
    """A finished (or stopped) ensemble run.

    Attributes:
        members: one :class:`~labkit.dynamics.GTFResult` per member (its own model,
            history and status: ``"diverged"`` with the step for a member that was frozen).
        seeds: the members' seeds.
        history: the ensemble's per-step means (``loss``, ``alpha``) and ``alive``.
        status, message: of the run as a whole (``"diverged"`` only when every member did).
        seconds: wall-clock time of the run.
        trainer: the :class:`GTFEnsembleTrainer`.
    """

    members: list[GTFResult]
    seeds: list[int]
    history: History
    status: str
    message: str
    seconds: float
    trainer: GTFEnsembleTrainer = dataclasses.field(repr=False)

    def __len__(self) -> int:
        return len(self.members)

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
        from labkit.dynamics._dsr_baselines import baseline_table

        rows = []
        for k, (res, data) in enumerate(zip(self.members, self.trainer.datasets, strict=True)):
            row = baseline_table(data, {f"member {k}": res}, n_generate=n_generate,
                                 floor=False, bins=bins, smoothing=smoothing).rows[0]
            rows.append({"member": k, "seed": self.seeds[k], "system": data.system,
                         "d_stsp": row.d_stsp, "d_h": row.d_h,
                         "status": res.status if res.status != "finished" else row.status})
        return rows


def train_gtf_ensemble(
    data: Any,
    config: GTFConfig = GTFConfig(),
    *,
    seeds: int | Sequence[int] | None = None,
    device: str | torch.device = "auto",
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
        data, seeds: see :class:`GTFEnsembleTrainer`.
        config, device, checkpoint, progress, stop: as for
            :func:`~labkit.dynamics.train_gtf` (the checkpoint holds every member).
        callbacks: as for :func:`~labkit.dynamics.train_gtf`; a callback with a
            ``bind(trainer)`` method gets the :class:`GTFEnsembleTrainer`, whose ``model``
            and ``observation`` are those of member ``trainer.monitored`` (0), so a
            :class:`~labkit.widgets.ReconstructionMonitor` follows that member.
        on_nan: what happens when *every* member has diverged (a single member that
            diverges is frozen and reported in its :class:`GTFResult`).

    Example:
        >>> from labkit.dynamics._dsr_data import reconstruction_data
        >>> d = reconstruction_data(n_steps=500, dt=0.01, n_test=0)
        >>> res = train_gtf_ensemble(d, GTFConfig(hidden_dim=8, seq_len=20, steps=4),
        ...                          seeds=[0, 7], device="cpu")
        >>> [m.status for m in res.members], len(res[1].history)
        (['finished', 'finished'], 4)
    """
    trainer = GTFEnsembleTrainer(data, config, seeds=seeds, device=device)
    res = run(trainer, config.steps, checkpoint=checkpoint, callbacks=callbacks, stop=stop,
              on_nan=on_nan, progress=progress)
    seconds = res.seconds
    members = []
    for k in range(trainer.n_members):
        single = trainer.member(k)
        at = trainer.diverged_at[k]
        status, message = (("diverged", f"member {k} (seed {trainer.seeds[k]}) had a "
                            f"non-finite loss or gradient at step {at}; it holds its last "
                            "finite parameters") if at is not None else (res.status, res.message))
        members.append(GTFResult(model=single.model, observation=single.observation,
                                 history=single.history, status=status, message=message,
                                 seconds=seconds, alpha=single.alpha, config=config,
                                 trainer=single))
    return GTFEnsembleResult(members=members, seeds=list(trainer.seeds), history=res.history,
                             status=res.status, message=res.message, seconds=seconds,
                             trainer=trainer)

