"""Plots of a crystal-generation run: the training curves and the CSP table (a model
beside the no-model baselines and the published DiffCSP figures).

Their titles name the data split, whose label can run past 100 characters: they wrap
(:func:`~labkit.widgets._crystal_plots.title_layout`) under a top margin that holds them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from labkit.errors import ConfigError
from labkit.widgets._crystal_plots import title_layout

__all__ = ["csp_benchmark_figure", "training_figure"]

#: Published DiffCSP results on the official perov-5 test split (Jiao et al., NeurIPS 2023,
#: table 1), drawn as reference lines: samples per target -> match rate.
DIFFCSP_PEROV5_MATCH = {1: 0.5202, 20: 0.9860}
#: Top margin of a one-line title, px: a longer title adds its lines to the figure's
#: height, so the plot keeps its size.
MARGIN_TOP = title_layout(["one line"])["margin_top"]


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average that ignores NaN (the first points average what exists)."""
    ok = np.isfinite(values)
    v = np.where(ok, values, 0.0)
    c = np.cumsum(np.insert(v, 0, 0.0))
    n = np.cumsum(np.insert(ok.astype(float), 0, 0.0))
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(idx - window, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (c[idx] - c[lo]) / (n[idx] - n[lo])


def training_figure(history: Any, keys: Sequence[str] | None = None, *, smooth: int = 50,
                    title: str = "training", log_y: bool = True) -> go.Figure:
    """Loss curves of a :class:`~labkit.core.train.History` (or a ``{name: values}``
    mapping): the raw values faint, a ``smooth``-step moving average on top.

    Raises:
        ConfigError: a key the history does not have, or ``smooth < 1``.
    """
    if smooth < 1:
        raise ConfigError(f"smooth must be an int >= 1, got {smooth!r}")
    snap = history.snapshot() if hasattr(history, "snapshot") else {"metrics": dict(history)}
    metrics = snap["metrics"]
    steps = np.asarray(snap.get("steps") or range(len(next(iter(metrics.values()), []))))
    keys = list(keys) if keys is not None else sorted(k for k in metrics if k.startswith("loss"))
    missing = [k for k in keys if k not in metrics]
    if missing:
        raise ConfigError(f"history has no metric {missing[0]!r}; it has {sorted(metrics)}")
    fig = go.Figure()
    colours = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")
    for i, key in enumerate(keys):
        y = np.asarray(metrics[key], dtype=float)
        colour = colours[i % len(colours)]
        fig.add_trace(go.Scatter(x=steps, y=y, mode="lines", line={"color": colour, "width": 1},
                                 opacity=0.25, name=f"{key} (raw)", showlegend=False))
        fig.add_trace(go.Scatter(x=steps, y=_smooth(y, smooth), mode="lines",
                                 line={"color": colour, "width": 2}, name=key))
    head = title_layout([title])
    fig.update_layout(title=head["title"], xaxis_title="step", yaxis_title="loss",
                      height=360 + head["margin_top"] - MARGIN_TOP,
                      yaxis_type="log" if log_y else "linear",
                      margin={"l": 60, "r": 20, "t": head["margin_top"], "b": 50})
    return fig


def csp_benchmark_figure(benchmark: Any, *, reference: bool = True) -> go.Figure:
    """Match rate per method and sample count (bars, RMSE in the hover and the label), with
    DiffCSP's published perov-5 figures as dashed lines when ``reference``.

    ``benchmark`` is a :class:`~labkit.atoms.CSPBenchmark`.
    """
    rows = list(benchmark.rows)
    if not rows:
        raise ConfigError("the benchmark has no rows")
    names = [f"{r.method}" + (f" (best of {r.k})" if r.k > 1 else "") for r in rows]
    rates = [100 * r.match_rate for r in rows]
    text = [f"{v:.1f}%" + ("" if math.isnan(r.rmse) else f"<br>RMSE {r.rmse:.3f}") for v, r in zip(rates, rows, strict=True)]
    colours = ["#7f7f7f" if "baseline" in r.method else "#1f77b4" for r in rows]
    fig = go.Figure(go.Bar(x=names, y=rates, text=text, textposition="outside", marker_color=colours,
                           hovertext=[f"{r.n} targets, {r.seconds:.1f} s" for r in rows], name="match rate"))
    if reference and "perov_5" in benchmark.split:
        for k, v in DIFFCSP_PEROV5_MATCH.items():
            fig.add_hline(y=100 * v, line_dash="dash", line_color="#2ca02c",
                          annotation_text=f"DiffCSP, {k} sample{'s' if k > 1 else ''} (published, official test)",
                          annotation_position="top left")
    head = title_layout([f"CSP match rate on {benchmark.split}"])
    fig.update_layout(title=head["title"], yaxis_title="match rate (%)", yaxis_range=[0, 110],
                      height=420 + head["margin_top"] - MARGIN_TOP,
                      margin={"l": 60, "r": 20, "t": head["margin_top"], "b": 80})
    return fig
