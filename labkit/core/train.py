"""The one training loop. Models differ in their step (their loss), not in forks of this loop.

:func:`fit` calls ``step(i)`` for ``i = start, ..., n_steps - 1``. The step does its own
forward, backward and optimizer updates (a GAN has two optimizers, a diffusion model
one) and returns a mapping of scalar metrics. ``fit`` records them in a
:class:`History`, stops on a non-finite metric (never trains on silently), honours a
``threading.Event`` so a background run can be stopped from a widget, calls callbacks
(progress bars, live plots, early stopping), and writes atomic checkpoints from which an
interrupted run resumes exactly where it stopped.
"""

from __future__ import annotations

import dataclasses
import io
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from labkit.core.cache import atomic_write
from labkit.core.config import check_in, check_int
from labkit.errors import ConfigError, DivergenceError

__all__ = ["Checkpoint", "FitResult", "History", "fit"]

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


@dataclasses.dataclass(frozen=True, kw_only=True)
class Checkpoint:
    """Atomic checkpoints: every ``every`` steps, ``state()`` (a dict of tensors,
    ``state_dict``s, numbers) is saved with the step and history to ``path``;
    ``load(state)`` restores it when :func:`fit` resumes."""

    path: str | Path
    state: Callable[[], dict[str, Any]]
    load: Callable[[dict[str, Any]], None]
    every: int = 100

    def __post_init__(self) -> None:
        check_int("every", self.every)

    def save(self, step: int, history: History) -> None:
        import torch

        buf = io.BytesIO()
        torch.save({"step": step, "history": history.snapshot(), "state": self.state()}, buf)
        atomic_write(self.path, buf.getvalue())

    def restore(self) -> tuple[int, History] | None:
        """Load the checkpoint if it exists: returns ``(next_step, history)``."""
        import torch

        path = Path(self.path)
        if not path.exists():
            return None
        data = torch.load(path, map_location="cpu", weights_only=False)
        self.load(data["state"])
        return int(data["step"]), History.from_snapshot(data["history"])


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
