"""A live training monitor for reconstruction: the model's free run beside the truth in an
:class:`~labkit.widgets.AttractorViewer`, with the metrics as they improve.

:class:`ReconstructionMonitor` is a callback of :func:`labkit.core.train.run`
(``cb(step, metrics, history)``). Every ``every`` steps it runs the current model freely
from the truth's first state, computes :math:`D_{stsp}` and :math:`D_H`
(:func:`labkit.dynamics.dsr_metrics`) against the truth, and pushes both series, the
AL-RNN's symbolic code (when the model has one) and a readout line into the viewer.

Design: the callback runs on the training thread *between* two steps, where the trainer
does not touch its model, so it reads the model without locks and nothing runs behind
the trainer's back. Widget updates are comm messages, sent at once even while a cell is
running, so a foreground run already animates the viewer; to keep the kernel free for
clicks (colour mode, series toggles) during training, run the training in a
``threading.Thread`` (as :class:`~labkit.widgets.SymmetryDashboard` does) with the same
callback, and stop it with :func:`~labkit.core.train.run`'s ``stop`` event.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from labkit.core.config import check_int
from labkit.dynamics import dsr_metrics
from labkit.errors import ConfigError, DataError, LabkitError
from labkit.widgets._series_view import _given_series

__all__ = ["ReconstructionMonitor", "free_run"]

#: Most true samples the monitor compares against (each update runs the model this long).
MAX_MONITOR_SAMPLES = 4000


def free_run(trainer: Any, n: int, x0: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """The trainer's model run freely for ``n`` steps from observation ``x0``: the
    observed series ``[n + 1, N]`` (float64; rows from the first non-finite latent state
    on are NaN, never an exception) and the symbolic code ``[n + 1]`` of each latent state
    when the model has one (an AL-RNN), else ``None``.

    Call it between training steps (a run callback) or when training is not running."""
    model, obs = trainer.model, trainer.observation
    p = next(model.parameters())
    with torch.no_grad():
        z = obs.init_state(torch.as_tensor(x0, dtype=p.dtype, device=p.device))
        zs = torch.full((n + 1, model.dim), math.nan, dtype=p.dtype, device=p.device)
        zs[0] = z
        for t in range(n):
            z = model(z)
            if not bool(torch.isfinite(z).all()):
                break
            zs[t + 1] = z
        x = obs(zs).to("cpu", torch.float64).numpy()
        codes = None
        if hasattr(model, "symbolic_code"):
            finite = torch.isfinite(zs).all(-1)
            codes = torch.where(finite, model.symbolic_code(torch.nan_to_num(zs)),
                                torch.zeros_like(finite, dtype=torch.long)).cpu().numpy()
    return x, codes


class ReconstructionMonitor:
    """Shows a reconstruction as it trains: a :func:`~labkit.core.train.run` callback.

    Args:
        viewer: an :class:`~labkit.widgets.AttractorViewer`, or its Panel component
            (``attractor_panel_class()``), switched to series mode.
        truth: the true series ``[time, N]`` to compare with (e.g. ``data.test``); at most
            :data:`MAX_MONITOR_SAMPLES` samples are used.
        trainer: the :class:`~labkit.dynamics.GTFTrainer` (or anything with ``model`` and
            ``observation``); also settable later with :meth:`bind`.
        every: update every this many steps (and after the first).
        reference: a second true stretch ``[time, N]`` for the metrics' floor (computed
            once), shown in parentheses.
        names: the series names in the viewer.

    Example::

        trainer = GTFTrainer(data, config)
        viewer = AttractorViewer.from_series({"truth": data.test})
        monitor = ReconstructionMonitor(viewer, data.test, trainer=trainer, every=100)
        run(trainer, config.steps, callbacks=[monitor])   # labkit.core.run

    Attributes:
        updates: how many times the viewer was updated.
        last: the latest readout values (``step``, ``loss``, ``d_stsp``, ``d_h``).
    """

    def __init__(self, viewer: Any, truth: Any, *, trainer: Any = None, every: int = 100,
                 reference: Any = None, names: tuple[str, str] = ("truth", "model")) -> None:
        check_int("every", every)
        if len(names) != 2 or len(set(names)) != 2:
            raise ConfigError(f"names must be two different names, got {names!r}")
        self.truth = _given_series("truth", truth)[:MAX_MONITOR_SAMPLES]
        if not np.isfinite(self.truth).all():
            raise DataError("truth has non-finite values; reference data must be finite")
        self.viewer, self.trainer, self.every, self.names = viewer, trainer, every, names
        self.floor: tuple[float, float] | None = None
        if reference is not None:
            ref = _given_series("reference", reference)[:len(self.truth)]
            m = dsr_metrics(self.truth[:len(ref)], ref)
            self.floor = (m.d_stsp, m.d_h)
        self.updates = 0
        self.last: dict[str, float] = {}

    def bind(self, trainer: Any) -> ReconstructionMonitor:
        """Monitor ``trainer`` (returns self)."""
        self.trainer = trainer
        return self

    def __call__(self, step: int, metrics: Mapping[str, float], history: Any = None) -> bool:
        if step == 0 or (step + 1) % self.every == 0:
            self.update(step, metrics)
        return False

    def update(self, step: int, metrics: Mapping[str, float] | None = None) -> str:
        """Run the model freely, compute the metrics and push everything into the viewer;
        returns the readout line."""
        if self.trainer is None:
            raise ConfigError("ReconstructionMonitor has no trainer: pass trainer= or call "
                              "bind(trainer) before training")
        x, codes = free_run(self.trainer, len(self.truth) - 1, self.truth[0])
        loss = float((metrics or {}).get("loss", math.nan))
        parts = [f"step {step + 1}", f"loss {loss:.3g}"]
        self.last = {"step": step + 1, "loss": loss}
        try:
            m = dsr_metrics(self.truth, x)
        except LabkitError as exc:  # a diverged free run has no attractor to compare
            parts.append(f"D_stsp — (model diverged: {str(exc).split(':')[0]})")
            self.last |= {"d_stsp": math.nan, "d_h": math.nan}
        else:
            fs = "" if self.floor is None else f" (floor {self.floor[0]:.3g})"
            fh = "" if self.floor is None else f" (floor {self.floor[1]:.3g})"
            parts += [f"D_stsp {m.d_stsp:.3g}{fs}", f"D_H {m.d_h:.3g}{fh}"]
            self.last |= {"d_stsp": m.d_stsp, "d_h": m.d_h}
        readout = " · ".join(parts)
        truth_name, model_name = self.names
        self.viewer.show_series({truth_name: self.truth, model_name: x},
                                codes=None if codes is None else {model_name: codes},
                                readout=readout)
        self.updates += 1
        return readout
