"""The GTF trainer: K >= 1 piecewise-linear RNNs trained at once (one seed, several seeds or
several systems), as a :class:`~labkit.core.train.Trainer` for :func:`labkit.core.train.run`.

Each member is initialised, fed and updated as it would be alone with its seed and data
(its own random stream for the initialisation and the batches, its own adaptive
:math:`\\alpha`, its own divergence check), but the forward and backward passes of all
members run as one batched computation over stacked parameters: the models' own
:meth:`~labkit.dynamics.PiecewiseLinearRNN.stacked_step` for the time loop,
``torch.func.vmap`` for the rest. One member (:func:`~labkit.dynamics.train_gtf`) is the
case K = 1. A member whose loss or gradient turns non-finite is frozen at its last finite
parameters and reported; the others go on; the run's loss is non-finite only when every
member has diverged.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Sequence
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from labkit.core.config import check_int
from labkit.core.device import resolve_device
from labkit.core.rng import make_generator
from labkit.core.train import History, exponential_schedule, fingerprint, sample_windows, set_lr
from labkit.dynamics.reconstruction._data import ReconstructionData
from labkit.dynamics.reconstruction._free_run import as_data
from labkit.dynamics.reconstruction._gtf import GTFConfig, build_model, jacobian_bound, next_alpha
from labkit.dynamics.reconstruction._plrnn import (
    AffineObservation,
    IdentityObservation,
    PiecewiseLinearRNN,
)
from labkit.errors import ConfigError, DataError

__all__ = ["GTFTrainer"]

Observation = IdentityObservation | AffineObservation
#: Every member's training windows ``[members, batch, window, obs]`` (``window = T + 1``).
Windows = Float[Tensor, "members batch window obs"]
#: Every member's latent states along its windows, ``[members, batch, window - 1, latent]``
#: (one per predicted step).
WindowStates = Float[Tensor, "members batch window-1 latent"]


class _Member(nn.Module):
    """One latent model with its observation model; ``forward(op, x)`` dispatches, so a
    single ``functional_call`` can evaluate any of the pieces with stacked parameters."""

    def __init__(self, model: PiecewiseLinearRNN, observation: Observation) -> None:
        super().__init__()
        self.model: PiecewiseLinearRNN = model
        self.observation: Observation = observation

    def forward(self, op: str, x: torch.Tensor) -> torch.Tensor:
        if op == "jacobian":
            return self.model.jacobian(x)
        if op == "observe":
            return self.observation(x)
        if op == "init":
            return self.observation.init_state(x)
        if op == "invert":
            return self.observation.invert(x)
        raise ValueError(op)


def is_data_list(data: Any) -> bool:
    """Whether ``data`` is a list of data sets (one per member)."""
    return (isinstance(data, Sequence) and not isinstance(data, str) and bool(data)
            and all(isinstance(d, ReconstructionData) for d in data))


def members(data: Any, seeds: int | Sequence[int] | None, *,
            seed: int | torch.Generator | None = 0
            ) -> tuple[list[ReconstructionData], list[int | torch.Generator]]:
    """The members' data sets and seeds: one data set (or array) shared by ``seeds`` (a
    list, or a count ``K`` meaning ``0..K-1``; when None, the one member of ``seed``), or
    a list of data sets, one per seed (default seeds ``0..len-1``). A ``seed`` of None
    becomes a fresh int seed (from the OS), recorded so that the run can be repeated."""
    if is_data_list(data):
        datasets = list(data)
        if seeds is None:
            seeds = list(range(len(datasets)))
    else:
        datasets = [as_data(data)]
        if seeds is None:
            if seed is None:
                seed = make_generator(None).initial_seed()
            if not isinstance(seed, torch.Generator):
                check_int("seed", seed, least=0)
            return datasets, [seed]
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ConfigError(f"seeds must be a count >= 1 or a list of ints, got {seeds!r}")
        seeds = list(range(seeds))
    seed_list: list[Any] = list(seeds) if isinstance(seeds, Sequence) else [seeds]
    if not seed_list or not all(isinstance(s, int) and not isinstance(s, bool) for s in seed_list):
        raise ConfigError(f"seeds must be a non-empty list of ints, got {seed_list!r}")
    if len(datasets) == 1:
        datasets = datasets * len(seed_list)
    if len(datasets) != len(seed_list):
        raise ConfigError(f"{len(datasets)} data sets but {len(seed_list)} seeds; give one seed "
                          "per data set (or leave seeds out)")
    dims = sorted({d.n_obs for d in datasets})
    if len(dims) > 1:
        raise ConfigError("every member must observe the same number of variables, got "
                          + ", ".join(f"{d.system}: N={d.n_obs}" for d in datasets))
    return datasets, seed_list


def _new_member(data: ReconstructionData, config: GTFConfig, seed: int | torch.Generator,
                dtype: torch.dtype) -> tuple[torch.Generator, PiecewiseLinearRNN, Observation]:
    """Check ``config`` against ``data`` and build one member from its seed: the random
    stream, then the latent model and the observation model drawn from it (in that order)."""
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
    rng = make_generator(seed)
    model = build_model(config, m, rng, dtype=dtype)
    obs_cls = IdentityObservation if config.observation == "identity" else AffineObservation
    return rng, model, obs_cls(n, m, seed=rng, dtype=dtype)


class GTFTrainer:
    """GTF (or sparse TF) training of K >= 1 shPLRNNs / clipped shPLRNNs / AL-RNNs.

    Call it through :func:`labkit.core.train.run` (or use :func:`~labkit.dynamics.train_gtf`
    for one model, :func:`~labkit.dynamics.train_gtf_ensemble` for several). ``model``,
    ``observation`` and ``alpha`` are those of member :attr:`monitored` (copies), so a live
    monitor bound to the trainer follows that member; they may be read from another thread
    between steps.

    Args:
        data: one :class:`ReconstructionData` (or array) shared by all members, or a list
            of them, one per member (several systems with the same dimension, or several
            noise realisations).
        config: the settings, the same for every member.
        seed: the seed of the one member when ``seeds`` is not given (an int, a
            :class:`torch.Generator` used as the member's random stream, or None for a
            fresh seed).
        seeds: the members' seeds (a list of ints), or a count ``K`` meaning ``0..K-1``.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        dtype: of the parameters and the computation (float32 by default; float64 for
            checks against slow references).

    Example:
        >>> from labkit.dynamics import reconstruction_data
        >>> d = reconstruction_data(n_steps=500, dt=0.01, n_test=0)
        >>> tr = GTFTrainer(d, GTFConfig(hidden_dim=8, seq_len=20, steps=3), seeds=3,
        ...                 device="cpu")
        >>> tr.n_members, sorted(tr.step(0))
        (3, ['G', 'alive', 'alpha', 'loss', 'lr'])
    """

    def __init__(self, data: Any, config: GTFConfig = GTFConfig(), *,
                 seed: int | torch.Generator | None = 0,
                 seeds: int | Sequence[int] | None = None,
                 device: str | torch.device = "auto",
                 dtype: torch.dtype = torch.float32) -> None:
        if not isinstance(config, GTFConfig):
            raise ConfigError(f"config must be a GTFConfig, got {type(config).__name__}")
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise ConfigError(f"dtype must be a floating torch.dtype, got {dtype!r}")
        self.datasets, self.seeds = members(data, seeds, seed=seed)
        self.dtype = dtype
        built = [_new_member(d, config, s, dtype)
                 for d, s in zip(self.datasets, self.seeds, strict=True)]
        self.config = config
        self.device = resolve_device(device)
        self.n_members = len(built)
        self.rngs = [rng for rng, _, _ in built]
        model0, obs0 = built[0][1], built[0][2]
        self._structure = (copy.deepcopy(model0), copy.deepcopy(obs0))  # CPU, for copies
        self._template = _Member(copy.deepcopy(model0), copy.deepcopy(obs0)).to("meta")
        params, buffers = stack_module_state([_Member(m, o) for _, m, o in built])
        self.params = {k: v.detach().to(self.device).requires_grad_(v.requires_grad)
                       for k, v in params.items()}
        self.buffers = {k: v.to(self.device) for k, v in buffers.items()}
        self._model_keys = [(k, k.split(".", 1)[1]) for k in (*self.params, *self.buffers)
                            if k.startswith("model.")]
        self._trainable = [v for v in self.params.values() if v.requires_grad]
        opt = torch.optim.RAdam if config.optimizer == "radam" else torch.optim.Adam
        self.optimizer = opt(self._trainable, lr=config.lr_start)
        self.alphas = [float(config.alpha) if config.forcing == "gtf" else 0.0] * self.n_members
        self.alive = [True] * self.n_members
        self.diverged_at: list[int | None] = [None] * self.n_members
        self.histories = [History() for _ in built]
        self.history = History()
        self.rng = self.rngs[0]
        self.n_forced = obs0.n_forced
        self.latent_dim = model0.dim
        on_device: dict[int, torch.Tensor] = {}  # one copy of a data set its members share
        for d in self.datasets:
            if id(d) not in on_device:
                on_device[id(d)] = d.train.to(self.device, dtype)
        self._x = [on_device[id(d)] for d in self.datasets]
        self._lock = threading.Lock()
        self._began = time.perf_counter()
        self.monitored = 0

    # -- one member ------------------------------------------------------------------
    @property
    def model(self) -> PiecewiseLinearRNN:
        """The latent model of member :attr:`monitored` (a copy of its parameters)."""
        return self._member_modules(self.monitored)[0]

    @property
    def observation(self) -> Observation:
        """The observation model of member :attr:`monitored` (a copy)."""
        return self._member_modules(self.monitored)[1]

    @property
    def alpha(self) -> float:
        """The :math:`\\alpha` of member :attr:`monitored`."""
        return self.alphas[self.monitored]

    def _member_modules(self, k: int) -> tuple[PiecewiseLinearRNN, Observation]:
        state = self.member_state(k)
        model = copy.deepcopy(self._structure[0]).to(self.device)
        obs = copy.deepcopy(self._structure[1]).to(self.device)
        model.load_state_dict(state["model"])
        obs.load_state_dict(state["observation"])
        return model, obs

    def member_state(self, k: int) -> dict[str, dict[str, torch.Tensor]]:
        """Member ``k``'s ``model`` and ``observation`` state dicts (copies)."""
        self._check_member(k)
        with self._lock:
            state = {name: v.detach()[k].clone() for name, v in self.params.items()}
        return {part: {n.split(".", 1)[1]: v for n, v in state.items()
                       if n.startswith(part + ".")} for part in ("model", "observation")}

    def load_member(self, k: int, *, model: dict[str, torch.Tensor] | None = None,
                    observation: dict[str, torch.Tensor] | None = None) -> None:
        """Set member ``k``'s parameters from state dicts (e.g. an edited :attr:`model`)."""
        self._check_member(k)
        with self._lock, torch.no_grad():
            for part, state in (("model", model), ("observation", observation)):
                for name, value in (state or {}).items():
                    key = f"{part}.{name}"
                    if key in self.params:
                        self.params[key][k] = value.to(self.params[key].dtype)

    def member(self, k: int) -> GTFTrainer:
        """A one-member :class:`GTFTrainer` holding member ``k`` (its data, parameters,
        :math:`\\alpha` and history), e.g. to :meth:`generate` from or to go on training."""
        if self.n_members == 1 and k == 0:
            return self
        state = self.member_state(k)
        tr = GTFTrainer(self.datasets[k], self.config, seed=self.seeds[k], device=self.device,
                        dtype=self.dtype)
        tr.load_member(0, model=state["model"], observation=state["observation"])
        tr.rng.set_state(self.rngs[k].get_state())  # its random stream goes on from here
        tr.alphas = [self.alphas[k]]
        tr.histories = [History.from_snapshot(self.histories[k].snapshot())]
        tr.history = tr.histories[0]
        return tr

    def _check_member(self, k: int) -> None:
        if not (isinstance(k, int) and 0 <= k < self.n_members):
            raise ConfigError(f"member must be in [0, {self.n_members - 1}], got {k!r}")

    # -- batched pieces -------------------------------------------------------------
    def _step_all(self, z: torch.Tensor) -> torch.Tensor:
        stacked = {**self.params, **self.buffers}
        return self._template.model.stacked_step(
            {name: stacked[key] for key, name in self._model_keys}, z)

    def _call(self, op: str, x: torch.Tensor) -> torch.Tensor:
        """``op`` of every member on its slice of ``x`` (``[K, ...]``)."""
        p = {**self.params, **self.buffers}

        def one(p_k: dict[str, torch.Tensor], x_k: torch.Tensor) -> torch.Tensor:
            return functional_call(self._template, p_k, (op, x_k))

        return vmap(one)(p, x)

    def lr(self, i: int) -> float:
        """The learning rate of step ``i``: exponential from ``lr_start`` to ``lr_end``."""
        cfg = self.config
        return exponential_schedule(i, cfg.steps, cfg.lr_start, cfg.lr_end)

    def sample(self) -> Windows:
        """``[K, batch, seq_len + 1, N]``: each member's subsequences (random starts, with
        replacement, plus noise when ``config.noise``) from its own random stream."""
        cfg = self.config
        return torch.stack([sample_windows(x, cfg.seq_len + 1, cfg.batch_size, rng,
                                           noise=cfg.noise)
                            for x, rng in zip(self._x, self.rngs, strict=True)])

    def teacher_forced(self, x: Windows, alpha: Float[Tensor, " members"] | None = None
                       ) -> tuple[WindowStates, WindowStates]:
        """Run every member through its sequences ``x`` (``[K, B, T+1, N]``) with forcing.

        Returns ``(predicted, forced)``, both ``[K, B, T, M]``: the model's one-step states
        :math:`\\hat z_t = F(z_{t-1})` and the states after forcing :math:`z_t`, for
        ``t = 1..T``. ``alpha`` (``[K]``) defaults to the members' current :math:`\\alpha`
        (GTF); with ``forcing="sparse"`` the forced units are replaced every
        ``tf_interval`` steps.
        """
        cfg, nf = self.config, self.n_forced
        a = (torch.tensor(self.alphas, dtype=self.dtype, device=self.device)
             if alpha is None else alpha)[:, None, None]
        z = self._call("init", x[:, :, 0])
        target = self._call("invert", x[:, :, 1:])
        preds, forced = [], []
        for t in range(x.shape[2] - 1):
            zh = self._step_all(z)
            preds.append(zh)
            if cfg.forcing == "sparse":
                z = (torch.cat([target[:, :, t], zh[..., nf:]], -1)
                     if (t + 1) % cfg.tf_interval == 0 else zh)
            else:
                mixed = (1 - a) * zh[..., :nf] + a * target[:, :, t]
                z = torch.cat([mixed, zh[..., nf:]], -1) if nf < zh.shape[-1] else mixed
            forced.append(z)
        return torch.stack(preds, 2), torch.stack(forced, 2)

    def alpha_states(self, x: Windows) -> WindowStates:
        """``[K, B, T, M]``: the latent states at which the Jacobians of the :math:`\\alpha`
        estimate are taken (the data's; unobserved units from a forced pass)."""
        with torch.no_grad():
            target = self._call("invert", x[:, :, 1:])
            if self.n_forced == self.latent_dim:
                return target
            _, forced = self.teacher_forced(x)
            return torch.cat([target, forced[..., self.n_forced:]], -1)

    def _estimate_g(self, x: torch.Tensor) -> list[float]:
        """Per member: :math:`G` (largest geometric-mean Jacobian norm over its sequences),
        as :func:`~labkit.dynamics.estimate_alpha`."""
        with torch.no_grad():
            g = jacobian_bound(self._call("jacobian", self.alpha_states(x)))  # [K]
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
                gs = self._estimate_g(x)
                for k, g in enumerate(gs):
                    if self.alive[k]:
                        self.alphas[k] = next_alpha(self.alphas[k], g, cfg.alpha_decay)
            set_lr(self.optimizer, lr)
            self.optimizer.zero_grad(set_to_none=True)
            pred, _ = self.teacher_forced(x)
            losses = ((self._call("observe", pred) - x[:, :, 1:]) ** 2).mean((1, 2, 3))
            live = torch.tensor(self.alive, device=self.device)
            losses.masked_select(live).sum().backward()
            ok = self._guarded_update(losses, live, i)
            loss_list = losses.detach().tolist()
        wall = time.perf_counter() - self._began
        for k in range(self.n_members):
            if ok[k] or self.diverged_at[k] == i:
                m = {"loss": loss_list[k] if ok[k] else float("nan"), "alpha": self.alphas[k],
                     "lr": lr}
                if gs is not None:
                    m["G"] = gs[k]
                self.histories[k].append(i, m, wall)
        n_alive = sum(self.alive)
        live_losses = [loss_list[k] for k in range(self.n_members) if self.alive[k]]
        live_alphas = [a for a, on in zip(self.alphas, self.alive, strict=True) if on]
        out = {"loss": sum(live_losses) / n_alive if n_alive else float("nan"),
               "alpha": sum(live_alphas) / n_alive if n_alive else float("nan"),
               "alive": float(n_alive), "lr": lr}
        if gs is not None:
            out["G"] = max(gs)
        return out

    def _guarded_update(self, losses: torch.Tensor, live: torch.Tensor, i: int) -> list[bool]:
        """The optimizer step for the members whose loss and gradients are finite (per member
        :func:`~labkit.core.train.guarded_step`, with per-member gradient clipping); the
        others are frozen at their parameters and marked diverged at step ``i``."""
        cfg = self.config
        finite = torch.isfinite(losses)
        for v in self._trainable:
            if v.grad is not None:
                finite &= torch.isfinite(v.grad).flatten(1).all(1)
        ok = (finite & live).tolist()
        for k in range(self.n_members):
            if self.alive[k] and not ok[k]:
                self.alive[k], self.diverged_at[k] = False, i
        frozen = [k for k in range(self.n_members) if not ok[k]]
        if len(frozen) == self.n_members:  # nothing to update (and Adam's moments stay)
            self.optimizer.zero_grad(set_to_none=True)
            return ok
        saved = [v.detach()[frozen].clone() for v in self._trainable] if frozen else []
        with torch.no_grad():
            grads = [v.grad for v in self._trainable if v.grad is not None]
            for g in grads:
                g[frozen] = 0.0
            if cfg.grad_clip > 0:
                total = torch.stack([(g.double() ** 2).flatten(1).sum(1) for g in grads]).sum(0).sqrt()
                coef = (cfg.grad_clip / (total + 1e-6)).clamp(max=1.0)
                for v in grads:
                    v.mul_(coef.to(v.dtype).view(-1, *[1] * (v.dim() - 1)))
        self.optimizer.step()
        if frozen:
            with torch.no_grad():
                for v, s in zip(self._trainable, saved, strict=True):
                    v[frozen] = s
        self.optimizer.zero_grad(set_to_none=True)
        return ok

    def generate(self, n_steps: int, x0: Float[Tensor, " obs"] | None = None, *,
                 member: int | None = None) -> Float[Tensor, "time obs"]:
        """A free-running trajectory of ``n_steps`` steps of one member (default
        :attr:`monitored`) in observation space ``[n_steps + 1, N]`` (float64, CPU), started from
        ``x0`` (default: the member's first training sample).

        Raises:
            DivergenceError: the trajectory became non-finite.
        """
        k = self.monitored if member is None else member
        model, obs = self._member_modules(k)
        x0 = self.datasets[k].train[0] if x0 is None else x0
        with torch.no_grad():
            z0 = obs.init_state(torch.as_tensor(x0, dtype=self.dtype, device=self.device))
            return obs(model.generate(z0, n_steps)).to("cpu", torch.float64)

    # -- checkpoints ------------------------------------------------------------------
    def fingerprint(self) -> str:
        """The settings, the members' seeds and data, and the dtype: a checkpoint of another
        run is refused on resume."""
        return fingerprint(self.config, self.seeds, str(self.dtype),
                           *(d.train for d in self.datasets))

    def state_dict(self) -> dict[str, Any]:
        """Stacked parameters, optimizer, every member's :math:`\\alpha`, status, random
        state and history."""
        with self._lock:
            return copy.deepcopy({
                "params": {k: v.detach() for k, v in self.params.items()},
                "optimizer": self.optimizer.state_dict(), "alpha": list(self.alphas),
                "alive": list(self.alive), "diverged_at": list(self.diverged_at),
                "rngs": [r.get_state() for r in self.rngs],
                "histories": [h.snapshot() for h in self.histories]})

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved."""
        with self._lock, torch.no_grad():
            for k, v in self.params.items():
                v.copy_(state["params"][k])
            self.optimizer.load_state_dict(state["optimizer"])
            self.alphas = list(state["alpha"])
            self.alive = list(state["alive"])
            self.diverged_at = list(state["diverged_at"])
            for r, s in zip(self.rngs, state["rngs"], strict=True):
                r.set_state(s)
            self.histories = [History.from_snapshot(h) for h in state["histories"]]
