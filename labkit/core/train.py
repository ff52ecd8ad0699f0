"""The one training engine. Models differ in their step (their loss), not in forks of a loop.

A model trains through :func:`run`, given a :class:`Trainer`: an object with ``step(i)``
(one optimisation step: its own forward, backward and updates, a GAN two of them, returning
scalar metrics), ``state_dict()``/``load_state_dict()`` (everything a resume needs: weights,
optimizers, the random generator, schedules), ``history`` and ``rng``. :func:`run` owns
what every model shares:

- **binding**: a callback with a ``bind(trainer)`` method (a live monitor) gets the trainer
  before the first step;
- **checkpoints**: a path (``str`` or :class:`~pathlib.Path`) or a :class:`Checkpoint`,
  written atomically every ``checkpoint_every`` steps (:data:`CHECKPOINT_EVERY` unless
  given) and at the end; an existing file is resumed from, so an interrupted run continues
  exactly where it stopped (the shared test: resumed equals uninterrupted, bit for bit);
- **the NaN policy**, one meaning everywhere: a non-finite metric raises
  :class:`~labkit.errors.DivergenceError` (``on_nan="raise"``) or ends the run with status
  ``"diverged"`` and a message (``"stop"``), and either way the model keeps its **last
  finite parameters**: trainers update through :func:`guarded_step`, which applies no
  update whose loss or gradients are non-finite, and :func:`run` checks the trainer's
  state before it returns a diverged run;
- **progress** (a tqdm bar), a ``threading.Event`` to stop from another thread, callbacks
  (``cb(step, metrics, history)``, True stops), and **wall-clock timing**;
- the result's common fields (:class:`RunResult`: ``status``, ``message``, ``history``,
  ``seconds``, ``steps_done``), which every ``train_*`` result carries.

Shared pieces of steps: :func:`exponential_schedule`, :func:`set_lr`, :func:`guarded_step`,
:func:`sample_windows`. :func:`fit` is the bare loop under :func:`run`, for a plain step
function (no trainer object).

Adding a model: ``docs/api-conventions.md`` walks through one.
"""

from __future__ import annotations

import dataclasses
import io
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from labkit.core.cache import atomic_write, stable_hash
from labkit.core.config import check_in, check_int
from labkit.errors import CheckpointError, ConfigError, DivergenceError

if TYPE_CHECKING:
    import torch

__all__ = ["CHECKPOINT_EVERY", "CHECKPOINT_FORMAT", "Checkpoint", "FitResult", "History",
           "RunResult", "Trainer", "exponential_schedule", "fingerprint", "fit", "guarded_step",
           "run", "sample_windows", "set_lr"]

#: Steps between two checkpoints of :func:`run` unless ``checkpoint_every`` says otherwise.
CHECKPOINT_EVERY = 100

Status = Literal["finished", "stopped", "diverged"]


class History:
    """Metrics per step: ``history["loss"]`` is a list of floats, ``history.steps`` the
    step numbers they belong to and ``history.wall`` the seconds since the run began."""

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.wall: list[float] = []
        self.metrics: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def append(self, step: int, metrics: Mapping[str, float], wall: float) -> None:
        with self._lock:
            n = len(self.steps)
            for key in metrics:
                if key not in self.metrics:
                    self.metrics[key] = [math.nan] * n
            for key, values in self.metrics.items():
                values.append(float(metrics.get(key, math.nan)))
            self.steps.append(step)
            self.wall.append(wall)

    def __getitem__(self, key: str) -> list[float]:
        if key not in self.metrics:
            raise KeyError(f"no metric {key!r}; recorded: {sorted(self.metrics)}")
        return self.metrics[key]

    def __len__(self) -> int:
        return len(self.steps)

    def last(self) -> dict[str, float]:
        """The latest value of every metric (empty before the first step)."""
        with self._lock:
            return {k: v[-1] for k, v in self.metrics.items()} if self.steps else {}

    def snapshot(self) -> dict[str, Any]:
        """A consistent copy, safe to read while a background run appends."""
        with self._lock:
            return {"steps": list(self.steps), "wall": list(self.wall),
                    "metrics": {k: list(v) for k, v in self.metrics.items()}}

    @classmethod
    def from_snapshot(cls, data: Mapping[str, Any]) -> History:
        h = cls()
        h.steps, h.wall = list(data["steps"]), list(data["wall"])
        h.metrics = {k: list(v) for k, v in data["metrics"].items()}
        return h


@dataclasses.dataclass(frozen=True)
class FitResult:
    """What :func:`fit` did.

    Attributes:
        history: every recorded step.
        status: ``"finished"``, ``"stopped"`` (event or callback) or ``"diverged"``.
        message: why it stopped, in words (empty when it finished).
        steps_done: the number of the next step to run (``n_steps`` when finished).
    """

    history: History
    status: Status
    message: str
    steps_done: int


#: The format a checkpoint file declares (and :meth:`Checkpoint.restore` requires).
CHECKPOINT_FORMAT = "labkit-checkpoint-1"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Checkpoint:
    """Atomic, safe checkpoints: every ``every`` steps, ``state()`` (a dict of tensors,
    ``state_dict``s, numbers, strings, lists) is saved with the step, the history and the
    run's ``fingerprint`` to ``path``; ``load(state)`` restores it when a run resumes.

    Safety: files are written atomically (an interrupted save leaves the previous file) and
    read with ``torch.load(weights_only=True)``, which rebuilds tensors and plain
    containers only and never runs code from the file. A file that cannot be read, that is
    not a labkit checkpoint, whose ``fingerprint`` differs from this run's (other data or
    settings) or whose state does not fit the model raises
    :class:`~labkit.errors.CheckpointError` naming the file.
    """

    path: str | Path
    state: Callable[[], dict[str, Any]]
    load: Callable[[dict[str, Any]], None]
    every: int = 100
    fingerprint: str | None = None

    def __post_init__(self) -> None:
        check_int("every", self.every)

    def save(self, step: int, history: History) -> None:
        import torch

        buf = io.BytesIO()
        torch.save({"format": CHECKPOINT_FORMAT, "step": step, "history": history.snapshot(),
                    "fingerprint": self.fingerprint, "state": self.state()}, buf)
        atomic_write(self.path, buf.getvalue())

    def restore(self) -> tuple[int, History] | None:
        """Load the checkpoint if it exists: returns ``(next_step, history)``.

        Raises:
            CheckpointError: the file is unreadable, not a labkit checkpoint, from another
                run, or its state does not fit.
        """
        import torch

        path = Path(self.path)
        if not path.exists():
            return None
        if not path.is_file():
            raise CheckpointError(f"checkpoint {str(path)!r} is not a file")
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for a bad file
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise CheckpointError(
                f"checkpoint {str(path)!r} cannot be read safely ({type(exc).__name__}: "
                f"{reason[:200]}): it is truncated, corrupt or not a labkit checkpoint; "
                "delete it (or choose another path) to start afresh") from exc
        if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise CheckpointError(f"checkpoint {str(path)!r} is not a labkit checkpoint "
                                  f"(format {found!r}, expected {CHECKPOINT_FORMAT!r})")
        missing = [k for k in ("step", "history", "state") if k not in data]
        if missing or not isinstance(data["step"], int) or data["step"] < 0:
            raise CheckpointError(f"checkpoint {str(path)!r} is incomplete (missing {missing}, "
                                  f"step {data.get('step')!r})")
        if self.fingerprint is not None and data.get("fingerprint") != self.fingerprint:
            raise CheckpointError(
                f"checkpoint {str(path)!r} belongs to another run: it was written with "
                f"fingerprint {data.get('fingerprint')!r}, this run's is {self.fingerprint!r} "
                "(other data, settings or seed); use another path, or delete it to start afresh")
        try:
            self.load(data["state"])
            history = History.from_snapshot(data["history"])
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
            raise CheckpointError(f"checkpoint {str(path)!r} does not fit this model: "
                                  f"{type(exc).__name__}: {exc}") from exc
        return data["step"], history


def fingerprint(*parts: Any) -> str:
    """A short digest of what makes a run the run it is (its settings, seed, data), for
    :attr:`Checkpoint.fingerprint`: tensors and arrays by the SHA-256 of their bytes,
    :class:`~labkit.core.config.Config` objects by their fields except ``steps`` (so that a
    run can be continued for more steps from its checkpoint), other values by their JSON
    (``repr`` where JSON has none)."""
    import hashlib

    import numpy as np

    digest = hashlib.sha256()
    for part in parts:
        if hasattr(part, "detach") and hasattr(part, "cpu"):  # a tensor
            arr = part.detach().cpu().contiguous().numpy()
            digest.update(f"tensor{arr.dtype}{arr.shape}".encode())
            digest.update(arr.tobytes())
        elif isinstance(part, np.ndarray):
            digest.update(f"array{part.dtype}{part.shape}".encode())
            digest.update(np.ascontiguousarray(part).tobytes())
        else:
            value = part
            if callable(getattr(part, "to_dict", None)):
                value = {k: v for k, v in part.to_dict().items() if k != "steps"}
            digest.update(stable_hash(value, length=64).encode())
    return digest.hexdigest()[:16]


Callback = Callable[[int, dict[str, float], History], bool | None]


def fit(
    step: Callable[[int], Mapping[str, Any]],
    n_steps: int,
    *,
    callbacks: Sequence[Callback] = (),
    stop: threading.Event | None = None,
    checkpoint: Checkpoint | None = None,
    resume: bool = True,
    on_nan: Literal["raise", "stop"] = "raise",
    progress: bool = False,
    history: History | None = None,
) -> FitResult:
    """Run ``step(i)`` for ``i`` in ``range(start, n_steps)``.

    Args:
        step: does one optimisation step and returns scalar metrics (floats or 0-d tensors).
        n_steps: total number of steps.
        callbacks: ``cb(i, metrics, history)`` after each step; returning True stops the run.
        stop: set it (from any thread) to stop after the current step.
        checkpoint: where and how to save; also saved when the run ends or stops.
        resume: continue from ``checkpoint`` when its file exists.
        on_nan: a non-finite metric raises :class:`DivergenceError` (``"raise"``) or ends
            the run with status ``"diverged"`` (``"stop"``); the step is recorded either way.
        progress: show a tqdm progress bar with the latest metrics.
        history: append to this history (e.g. one a dashboard already holds).

    Returns:
        A :class:`FitResult`.
    """
    check_int("n_steps", n_steps, least=0)
    check_in("on_nan", on_nan, ("raise", "stop"))
    for cb in callbacks:
        if not callable(cb):
            raise ConfigError(f"callbacks must be callables cb(step, metrics, history), got {cb!r}")
    start = 0
    hist = history if history is not None else History()
    if checkpoint is not None and resume:
        restored = checkpoint.restore()
        if restored is not None:
            start, saved = restored
            hist.steps, hist.wall, hist.metrics = saved.steps, saved.wall, saved.metrics
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_steps, initial=start, leave=False)
    began = time.perf_counter() - (hist.wall[-1] if hist.wall else 0.0)
    status: Status = "finished"
    message = ""
    i = start
    try:
        while i < n_steps:
            if stop is not None and stop.is_set():
                status, message = "stopped", f"stopped by request before step {i}"
                break
            metrics = {k: float(v) for k, v in step(i).items()}
            hist.append(i, metrics, time.perf_counter() - began)
            i += 1
            bad = {k: v for k, v in metrics.items() if not math.isfinite(v)}
            if bad:
                message = f"non-finite metric at step {i - 1}: {bad}"
                if on_nan == "raise":
                    raise DivergenceError(message)
                status = "diverged"
                break
            if bar is not None:
                bar.update(1)
                bar.set_postfix({k: f"{v:.4g}" for k, v in list(metrics.items())[:4]})
            if checkpoint is not None and i % checkpoint.every == 0:
                checkpoint.save(i, hist)
            if any(cb(i - 1, metrics, hist) for cb in callbacks):
                status, message = "stopped", f"stopped by a callback after step {i - 1}"
                break
    finally:
        if bar is not None:
            bar.close()
    if checkpoint is not None and status != "diverged":
        checkpoint.save(i, hist)
    return FitResult(history=hist, status=status, message=message, steps_done=i)


# --- the engine ---------------------------------------------------------------------------


@runtime_checkable
class Trainer(Protocol):
    """What :func:`run` trains: a step, its state for checkpoints, a history and a generator.

    ``step(i)`` must update through :func:`guarded_step` (or keep its contract: no update
    from a non-finite loss or gradient), so that a diverged run keeps finite parameters.
    A trainer may also define ``fingerprint() -> str`` (:func:`fingerprint` of its settings,
    seed and data): a checkpoint written by another run is then refused on resume.
    """

    history: History
    rng: torch.Generator

    def step(self, i: int) -> Mapping[str, Any]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclasses.dataclass(frozen=True)
class RunResult:
    """What :func:`run` did; every ``train_*`` result carries these fields.

    Attributes:
        history: every recorded step (across resumed parts).
        status: ``"finished"``, ``"stopped"`` (event or callback) or ``"diverged"``.
        message: why it stopped, in words (empty when it finished).
        steps_done: the number of the next step to run (``n_steps`` when finished).
        seconds: wall-clock seconds of this call (not of earlier, resumed parts).
    """

    history: History
    status: Status
    message: str
    steps_done: int
    seconds: float


def _as_checkpoint(checkpoint: str | Path | Checkpoint | None, trainer: Trainer,
                   every: int) -> Checkpoint | None:
    if checkpoint is None or isinstance(checkpoint, Checkpoint):
        return checkpoint
    if isinstance(checkpoint, str | Path):
        own = getattr(trainer, "fingerprint", None)
        mark = own() if callable(own) else None
        return Checkpoint(path=Path(checkpoint), state=trainer.state_dict,
                          load=trainer.load_state_dict, every=every,
                          fingerprint=None if mark is None else str(mark))
    raise ConfigError("checkpoint must be a path (str or pathlib.Path), a Checkpoint or None, "
                      f"got {type(checkpoint).__name__}")


def _non_finite_tensors(state: Any, prefix: str = "") -> list[str]:
    """Names of the floating tensors in a (nested) state that hold a NaN or infinity."""
    import torch

    if isinstance(state, torch.Tensor):
        bad = state.is_floating_point() and not bool(torch.isfinite(state).all())
        return [prefix or "<tensor>"] if bad else []
    if isinstance(state, Mapping):
        return [n for k, v in state.items() for n in _non_finite_tensors(v, f"{prefix}.{k}")]
    if isinstance(state, list | tuple):
        return [n for k, v in enumerate(state) for n in _non_finite_tensors(v, f"{prefix}[{k}]")]
    return []


def run(
    trainer: Trainer,
    n_steps: int,
    *,
    checkpoint: str | Path | Checkpoint | None = None,
    checkpoint_every: int = CHECKPOINT_EVERY,
    resume: bool = True,
    callbacks: Sequence[Any] = (),
    stop: threading.Event | None = None,
    on_nan: Literal["raise", "stop"] = "raise",
    progress: bool = False,
) -> RunResult:
    """Train ``trainer`` for steps ``start, ..., n_steps - 1`` (``start`` from a checkpoint).

    Args:
        trainer: a :class:`Trainer`.
        n_steps: total number of steps (including those a resumed checkpoint already did).
        checkpoint: a path or a :class:`Checkpoint`; an existing file is resumed from
            (unless ``resume=False``) and the state is saved every ``checkpoint_every``
            steps and at the end (not after a divergence: the file keeps the last good state).
        checkpoint_every: steps between checkpoints written to a path.
        resume: continue from ``checkpoint`` when its file exists.
        callbacks: ``cb(step, metrics, history)`` after each step (True stops the run); one
            with a ``bind(trainer)`` method is given the trainer first.
        stop: an event that stops the run after the current step (from any thread).
        on_nan: a non-finite metric raises :class:`DivergenceError` (``"raise"``) or ends
            the run with status ``"diverged"`` (``"stop"``); the parameters stay the last
            finite ones in both cases.
        progress: a tqdm progress bar with the latest metrics.

    Returns:
        A :class:`RunResult`.

    Raises:
        DivergenceError: a non-finite metric with ``on_nan="raise"``, or a trainer whose
            state went non-finite although it reported the divergence (a trainer that
            does not keep :func:`guarded_step`'s contract; never returned silently).
    """
    check_int("checkpoint_every", checkpoint_every)
    for method in ("step", "state_dict", "load_state_dict"):
        if not callable(getattr(trainer, method, None)):
            raise ConfigError(f"trainer must have a {method}() method (see labkit.core.train."
                              f"Trainer), got {type(trainer).__name__}")
    began = time.perf_counter()
    for cb in callbacks:
        if callable(getattr(cb, "bind", None)):
            cb.bind(trainer)
    ckpt = _as_checkpoint(checkpoint, trainer, checkpoint_every)
    history = getattr(trainer, "history", None)
    try:
        res = fit(trainer.step, n_steps, callbacks=callbacks, stop=stop, checkpoint=ckpt,
                  resume=resume, on_nan=on_nan, progress=progress, history=history)
    except DivergenceError:
        _check_finite_state(trainer)
        raise
    if res.status == "diverged":
        _check_finite_state(trainer)
    return RunResult(history=res.history, status=res.status, message=res.message,
                     steps_done=res.steps_done, seconds=time.perf_counter() - began)


def _check_finite_state(trainer: Trainer) -> None:
    bad = _non_finite_tensors(trainer.state_dict())
    if bad:
        raise DivergenceError(f"{type(trainer).__name__} diverged and its state holds non-finite "
                              f"values ({', '.join(bad[:5])}): it updated from a non-finite "
                              "loss or gradient instead of using labkit.core.train.guarded_step")


# --- shared pieces of steps -----------------------------------------------------------------


def exponential_schedule(i: int, n_steps: int, start: float, end: float) -> float:
    """The learning rate of step ``i`` of ``n_steps``: exponential from ``start`` (step 0) to
    ``end`` (the last step), constant after it."""
    frac = min(1.0, i / max(1, n_steps - 1))
    return start * (end / start) ** frac


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def guarded_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, *,
                 clip: float = 0.0, params: Sequence[torch.Tensor] | None = None) -> bool:
    """Apply ``optimizer``'s update for gradients already computed from ``loss``, only if
    the loss and every gradient are finite; clip the gradient norm to ``clip`` first (0: no
    clipping). Returns whether the update was applied; the gradients are cleared either way.

    This is the update every trainer uses, so that a diverging loss never reaches the
    parameters (the engine's NaN policy: a diverged model keeps its last finite parameters).
    """
    import torch

    if params is None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
    grads = [p.grad for p in params if p.grad is not None]
    finite = bool(torch.isfinite(loss).all()) and all(bool(torch.isfinite(g).all()) for g in grads)
    if finite:
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(params, clip)
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return finite


def sample_windows(x: torch.Tensor, length: int, batch: int, rng: torch.Generator, *,
                   noise: float = 0.0) -> torch.Tensor:
    """``batch`` windows of ``length`` consecutive samples of the series ``x`` (``[T, N]``),
    uniform random starts (with replacement) drawn from ``rng`` (a CPU generator): returns
    ``[batch, length, N]`` on ``x``'s device, plus Gaussian noise of standard deviation
    ``noise`` (drawn from ``rng`` too)."""
    import torch

    t = x.shape[0]
    if not 1 <= length <= t:
        raise ConfigError(f"window length must be in [1, {t}] for a series of {t} samples, "
                          f"got {length}")
    starts = torch.randint(0, t - length + 1, (batch,), generator=rng)
    offsets = torch.arange(length)
    windows = x[(starts[:, None] + offsets).to(x.device)]
    if noise:
        eps = torch.randn(windows.shape, generator=rng, dtype=windows.dtype)
        windows = windows + noise * eps.to(x.device)
    return windows
