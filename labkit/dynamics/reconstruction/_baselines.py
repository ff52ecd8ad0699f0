r"""Baselines for dynamical-systems reconstruction, judged on the same data and metrics as
the shPLRNN: an echo state network (reservoir computer, :mod:`._esn`), SINDy (sparse
regression of the vector field, through pysindy, :mod:`._sindy`) and a neural ODE
(:mod:`._node`), and the table that puts them side by side.

Every trainer takes a :class:`~labkit.dynamics.ReconstructionData` and returns a result
with the same small interface as :class:`~labkit.dynamics.GTFResult`:

- ``generate(n_steps, x0=None) -> Tensor [n_steps + 1, N]``: a free-running (autonomous)
  series in the data's units, float64 on the CPU, row 0 being ``x0`` (default: the first
  test sample, else the last training sample); :class:`~labkit.errors.DivergenceError`
  naming the step when it leaves the finite numbers or escapes far beyond the data
  (``ESCAPE_FACTOR`` times the training series' largest magnitude);
- ``name``: what kind of model it is; ``seconds``: the wall time of training.

:func:`baseline_table` puts any such results (GTF runs included) on one table of
:math:`D_{stsp}` and :math:`D_H` against the test series, beside the finite-sample floor;
a model that diverges gets a row that says at which step, never a NaN.

pysindy is imported inside :func:`train_sindy` only, so ``import labkit.dynamics`` stays
light.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from labkit.core.config import check_int
from labkit.dynamics._tables import markdown_table, records_to_xarray
from labkit.dynamics.reconstruction._data import ReconstructionData
from labkit.dynamics.reconstruction._free_run import (
    check_generated,
)
from labkit.dynamics.reconstruction._metrics import dsr_metrics
from labkit.errors import DataError, DivergenceError

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["BaselineRow", "BaselineTable", "baseline_table"]


@dataclasses.dataclass(frozen=True)
class BaselineRow:
    """One model on the table.

    Attributes:
        label: the key it was given under.
        d_stsp, d_h: its metrics, or ``None`` when it diverged.
        seconds: its training wall time (``None`` when the result has none).
        diverged_at: the step at which generation diverged, or ``None``.
        message: ``""``, or the divergence in words.
    """

    label: str
    d_stsp: float | None
    d_h: float | None
    seconds: float | None
    diverged_at: int | None = None
    message: str = ""

    @property
    def status(self) -> str:
        """``"ok"``, ``"diverged at step k"``, or ``"diverged"`` when no step was named."""
        if self.d_stsp is not None:
            return "ok"
        return "diverged" if self.diverged_at is None else f"diverged at step {self.diverged_at}"


@dataclasses.dataclass(frozen=True)
class BaselineTable:
    """Models' :math:`D_{stsp}` and :math:`D_H` on one test series, beside the floor.

    Attributes:
        rows: one per model, in the order given.
        floor_d_stsp, floor_d_h: the metrics between two true stretches (``None`` without
            a floor).
        floor_source: which stretches gave the floor.
        n_generate: generated steps per model (series of ``n_generate + 1`` samples).
    """

    rows: tuple[BaselineRow, ...]
    floor_d_stsp: float | None
    floor_d_h: float | None
    floor_source: str
    n_generate: int

    def records(self) -> list[dict[str, Any]]:
        """Rows as dictionaries (for a DataFrame), the floor last: ``model``, ``D_stsp``,
        ``D_H``, ``seconds`` (training) and ``status`` (``None`` where there is no number)."""
        out = [{"model": r.label, "D_stsp": r.d_stsp, "D_H": r.d_h, "seconds": r.seconds,
                "status": r.status} for r in self.rows]
        if self.floor_d_stsp is not None:
            out.append({"model": "floor (true vs true)", "D_stsp": self.floor_d_stsp,
                        "D_H": self.floor_d_h, "seconds": None, "status": self.floor_source})
        return out

    def summary(self) -> str:
        """The table in Markdown (``-`` where a model has no number, e.g. it diverged)."""
        return markdown_table(self.records(), (
            ("model", "model", ""), ("D_stsp", "D_stsp", ".3g"), ("D_H", "D_H", ".3f"),
            ("seconds", "train s", ".1f"), ("status", "status", "")))

    def __str__(self) -> str:
        return self.summary()

    def to_xarray(self) -> xr.Dataset:
        """:meth:`records` as an :class:`xarray.Dataset` on a ``model`` axis (``None``
        becomes NaN); ``n_generate`` and ``floor_source`` go into ``attrs``."""
        return records_to_xarray(self.records(), "model", "model",
                                 attrs={"n_generate": self.n_generate,
                                        "floor_source": self.floor_source})


def baseline_table(
    data: ReconstructionData,
    results: Mapping[str, Any],
    *,
    n_generate: int | None = None,
    floor: bool = True,
    bins: int = 30,
    smoothing: float = 20.0,
) -> BaselineTable:
    r""":math:`D_{stsp}` and :math:`D_H` of each model's free-running series against the
    test series, with the finite-sample floor.

    Each result's ``generate(n_generate, x0)`` is called from the first test sample; the
    series is compared with ``data.test[: n_generate + 1]``. The floor compares that
    stretch with a second true stretch of the same length: the next
    ``n_generate + 1`` test samples when the test series is long enough, else the last
    ``n_generate + 1`` training samples (which carry the training series' observation
    noise, if any; ``floor_source`` says which).

    Args:
        data: the data the models were trained on; must have a test series.
        results: label -> a result with ``generate(n_steps, x0)`` (any baseline here, a
            :class:`~labkit.dynamics.GTFResult`, ...) and optionally ``seconds``.
        n_generate: generated steps (default: the whole test series, ``len(test) - 1``).
        floor: compute the floor.
        bins, smoothing: the metrics' settings.

    Returns:
        A :class:`BaselineTable`; a model whose generation raises
        :class:`DivergenceError` (or produces a series the metrics reject as diverged)
        gets a row with ``d_stsp = d_h = None`` and ``status`` ``"diverged at step k"``.

    Raises:
        DataError: no test series, or one too short for ``n_generate``.
    """
    if data.test is None:
        raise DataError("baseline_table needs data with a test series (n_test > 0)")
    n_test = data.test.shape[0]
    n = n_test - 1 if n_generate is None else n_generate
    check_int("n_generate", n)
    if n + 1 > n_test:
        raise DataError(f"n_generate={n} needs {n + 1} test samples, the test series has "
                        f"{n_test}")
    x_true = data.test[: n + 1]
    reference, source = None, ""
    if floor:
        if n_test >= 2 * (n + 1):
            reference, source = data.test[n + 1: 2 * (n + 1)], "test vs later test"
        elif data.train.shape[0] >= n + 1:
            reference, source = data.train[-(n + 1):], "test vs end of training series"
        else:
            raise DataError(f"no second true stretch of {n + 1} samples for the floor "
                            f"(test {n_test}, train {data.train.shape[0]}); pass floor=False "
                            "or a smaller n_generate")
    rows = []
    fl = None
    for label, res in results.items():
        seconds = getattr(res, "seconds", None)
        try:
            x_gen = res.generate(n, data.test[0])
            check_generated(torch.as_tensor(x_gen, dtype=torch.float64), math.inf, str(label))
        except DivergenceError as err:
            rows.append(BaselineRow(label=str(label), d_stsp=None, d_h=None, seconds=seconds,
                                    diverged_at=_step_of(str(err)), message=str(err)))
            continue
        m = dsr_metrics(x_true, x_gen, reference=reference if fl is None else None,
                        bins=bins, smoothing=smoothing)
        if fl is None and reference is not None:
            fl = (m.floor_d_stsp, m.floor_d_h)
        rows.append(BaselineRow(label=str(label), d_stsp=m.d_stsp, d_h=m.d_h, seconds=seconds))
    if fl is None and reference is not None:
        fm = dsr_metrics(x_true, reference, bins=bins, smoothing=smoothing)
        fl = (fm.d_stsp, fm.d_h)
    return BaselineTable(rows=tuple(rows), floor_d_stsp=None if fl is None else fl[0],
                         floor_d_h=None if fl is None else fl[1], floor_source=source,
                         n_generate=n)


def _step_of(message: str) -> int | None:
    """The step number in a "diverged at step k" message, if there is one."""
    import re

    hit = re.search(r"at step (\d+)", message)
    return None if hit is None else int(hit.group(1))
