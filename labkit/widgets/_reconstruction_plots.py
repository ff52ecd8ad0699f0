"""Figures of dynamical-systems reconstruction: the true attractor beside the model's
free run with the metric readouts, the AL-RNN's attractor coloured by linear subregion
(its symbolic code), and a training monitor (loss and alpha beside the current free run).

Series are ``[time, dim]`` (NumPy arrays or torch tensors); the first three dimensions
are drawn in 3D, a two-dimensional series in the plane. Long series are thinned to at
most ``max_points`` samples by an even stride (drawn samples are input samples, never
interpolated).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from labkit.errors import ConfigError, DataError
from labkit.widgets._csp_plots import _smooth

__all__ = ["reconstruction_figure", "symbolic_code_figure", "training_monitor_figure"]

#: Colours of the two series of :func:`reconstruction_figure` (truth grey-blue, model red).
TRUTH_COLOUR = "#1f3a68"
MODEL_COLOUR = "#d62728"
#: Discrete colours of linear subregions: code ``k`` always gets ``CODE_COLOURS[k % 24]``
#: (plotly's Dark24), so one region has one colour across figures.
CODE_COLOURS = (
    "#2E91E5", "#E15F99", "#1CA71C", "#FB0D0D", "#DA16FF", "#222A2A", "#B68100", "#750D86",
    "#EB663B", "#511CFB", "#00A08B", "#FB00D1", "#FC0080", "#B2828D", "#6C7C32", "#778AAE",
    "#862A16", "#A777F1", "#620042", "#1616A7", "#DA60CA", "#6C4516", "#0D2A63", "#AF0038",
)
#: How :func:`reconstruction_figure` can colour the samples.
COLOUR_MODES = (None, "time", "speed")


def _series(name: str, x: Any) -> np.ndarray:
    """``x`` as float64 ``[time, dim]`` with at least 2 dimensions."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise DataError(f"{name} must be a numeric array [time, dim], got "
                        f"{type(x).__name__}") from err
    if arr.ndim != 2:
        raise DataError(f"{name} must have shape [time, dim], got {tuple(arr.shape)}")
    if arr.shape[1] < 2:
        raise DataError(f"{name} has {arr.shape[1]} dimension(s); a state-space picture needs "
                        f"at least 2 (shape {tuple(arr.shape)})")
    if arr.shape[0] < 2:
        raise DataError(f"{name} has {arr.shape[0]} sample(s), at least 2 are needed")
    return arr


def _same_dims(a: np.ndarray, b: np.ndarray, names: Sequence[str]) -> None:
    if a.shape[1] != b.shape[1]:
        raise DataError(f"{names[0]} has {a.shape[1]} dimensions but {names[1]} has "
                        f"{b.shape[1]}: shapes {tuple(a.shape)} and {tuple(b.shape)}")


def _finite_prefix(x: np.ndarray) -> tuple[np.ndarray, int | None]:
    """The samples before the first non-finite one, and its index (``None``: all finite)."""
    bad = ~np.isfinite(x).all(1)
    if not bad.any():
        return x, None
    k = int(np.argmax(bad))
    return x[:k], k


def _stride(n: int, max_points: int) -> int:
    return max(1, math.ceil(n / max_points))


def _check_max_points(max_points: Any) -> None:
    if not isinstance(max_points, int) or isinstance(max_points, bool) or max_points < 2:
        raise ConfigError(f"max_points must be an int >= 2, got {max_points!r}")


def _axis_labels(dim: int) -> list[str]:
    return [f"x{i + 1}" for i in range(min(dim, 3))]


def _trace(x: np.ndarray, *, name: str, colour: str | np.ndarray, mode: str = "lines",
           size: float = 2.0, opacity: float = 0.8, showlegend: bool = True,
           colourbar: str | None = None) -> go.Scatter3d | go.Scattergl:
    """One series as a 3D (``dim >= 3``) or planar trace."""
    style: dict[str, Any] = {"color": colour}
    if not isinstance(colour, str):
        style.update(colorscale="Viridis", showscale=colourbar is not None)
        if colourbar is not None:
            style["colorbar"] = {"title": colourbar, "len": 0.6}
    if mode == "lines":
        style["width"] = size
        extra: dict[str, Any] = {"line": style}
    else:
        style["size"] = size
        extra = {"marker": style}
    if x.shape[1] >= 3:
        return go.Scatter3d(x=x[:, 0], y=x[:, 1], z=x[:, 2], mode=mode, name=name,
                            opacity=opacity, showlegend=showlegend, hoverinfo="skip", **extra)
    return go.Scattergl(x=x[:, 0], y=x[:, 1], mode=mode, name=name, opacity=opacity,
                        showlegend=showlegend, hoverinfo="skip", **extra)


def _colour_values(x: np.ndarray, mode: str | None) -> np.ndarray | None:
    if mode is None:
        return None
    if mode == "time":
        return np.arange(len(x), dtype=np.float64)
    step = np.linalg.norm(np.diff(x, axis=0), axis=1)  # "speed": distance to the next sample
    return np.append(step, step[-1] if step.size else 0.0)


def _metric(metrics: Any, key: str) -> float | None:
    if metrics is None:
        return None
    if isinstance(metrics, Mapping):
        value = metrics.get(key)
    else:
        value = getattr(metrics, key, None)
    return None if value is None else float(value)


def _metric_readouts(metrics: Any) -> list[str]:
    """The readout lines of a :class:`~labkit.dynamics.DSRMetrics` (or a mapping with its
    field names): ``D_stsp`` and ``D_H`` with the floor beside each, and the largest
    Lyapunov exponent against the truth's with the relative error."""
    if metrics is None:
        return []
    if not isinstance(metrics, Mapping) and not hasattr(metrics, "d_stsp"):
        raise ConfigError(f"metrics must be a DSRMetrics or a mapping of its fields, got "
                          f"{type(metrics).__name__}")
    lines = []
    for label, key in (("D_stsp", "d_stsp"), ("D_H", "d_h")):
        value, floor = _metric(metrics, key), _metric(metrics, f"floor_{key}")
        if value is not None:
            lines.append(f"{label} {value:.3g}" + ("" if floor is None else f" (floor {floor:.3g})"))
    lam, true = _metric(metrics, "lyapunov_model"), _metric(metrics, "lyapunov_true")
    if lam is not None:
        text = f"λ_max {lam:.3g}"
        if true is not None:
            text += f" vs true {true:.3g}"
            if true != 0:
                text += f" ({100 * abs(lam - true) / abs(true):.0f}% off)"
        lines.append(text)
    return lines


def reconstruction_figure(
    truth: Any,
    model_series: Any,
    *,
    metrics: Any = None,
    names: Sequence[str] = ("truth", "model"),
    colour_by: str | None = None,
    max_points: int = 20_000,
    title: str = "",
) -> go.Figure:
    """The true attractor and the model's free run side by side, on equal axes.

    Args:
        truth: the true series ``[time, dim]`` (e.g. the test series).
        model_series: the model's free-running trajectory ``[time', dim]`` (any length).
            Samples from the first non-finite one on are left out and named in red
            (a diverged run).
        metrics: a :class:`~labkit.dynamics.DSRMetrics` (or a mapping of its fields):
            ``D_stsp``, ``D_H`` with their floors and the largest Lyapunov exponent
            against the truth's are shown in the model panel's title and in a line below.
        names: the two panels' titles.
        colour_by: ``None`` (one colour per series), ``"time"`` (sample index) or
            ``"speed"`` (distance to the next sample).
        max_points: the most samples drawn per series (an even stride beyond).
        title: the figure title.

    Returns:
        Two 3D scenes (first three dimensions; planes for ``dim == 2``), one trace each.

    Raises:
        DataError: not ``[time, dim >= 2]``, or the two series differ in dimension.
        ConfigError: a bad ``colour_by``, ``names`` or ``max_points``.
    """
    if colour_by not in COLOUR_MODES:
        raise ConfigError(f"colour_by must be one of {list(COLOUR_MODES)}, got {colour_by!r}")
    if isinstance(names, str) or len(names) != 2:
        raise ConfigError(f"names must be two titles (truth, model), got {names!r}")
    _check_max_points(max_points)
    a, b = _series("truth", truth), _series("model_series", model_series)
    _same_dims(a, b, ("truth", "model_series"))
    b, bad_at = _finite_prefix(b)
    dim = a.shape[1]
    readouts = _metric_readouts(metrics)
    subtitles = [names[0], names[1] + (f"<br><sup>{', '.join(readouts)}</sup>" if readouts else "")]
    kind = "scene" if dim >= 3 else "xy"
    fig = make_subplots(rows=1, cols=2, specs=[[{"type": kind}, {"type": kind}]],
                        subplot_titles=subtitles, horizontal_spacing=0.04)
    for col, (x, name, colour) in enumerate(((a, names[0], TRUTH_COLOUR),
                                             (b, names[1], MODEL_COLOUR)), start=1):
        if len(x) == 0:
            continue
        s = x[::_stride(len(x), max_points)]
        values = _colour_values(s, colour_by)
        # planar lines take one colour only: coloured samples are drawn as markers there
        mode = "markers" if values is not None and dim < 3 else "lines"
        fig.add_trace(_trace(s, name=name, colour=colour if values is None else values,
                             mode=mode,
                             colourbar=colour_by if (values is not None and col == 2) else None),
                      row=1, col=col)
    finite = np.concatenate([a, b])[:, :3]
    lo, hi = finite.min(0), finite.max(0)
    pad = 0.05 * np.maximum(hi - lo, 1e-12)
    ranges = [[float(lo[i] - pad[i]), float(hi[i] + pad[i])] for i in range(len(lo))]
    labels = _axis_labels(dim)
    if dim >= 3:
        scene: dict[str, Any] = {f"{ax}axis": {"title": labels[i], "range": ranges[i]}
                                 for i, ax in enumerate("xyz")}
        scene["aspectmode"] = "cube"
        fig.update_scenes(**scene)
    else:
        fig.update_xaxes(title=labels[0], range=ranges[0])
        fig.update_yaxes(title=labels[1], range=ranges[1])
    notes = []
    if dim > 3:
        notes.append(f"first 3 of {dim} dimensions")
    if readouts:
        notes.append("; ".join(readouts))
    if notes:
        fig.add_annotation(text=" · ".join(notes), xref="paper", yref="paper", x=0.5, y=-0.04,
                           showarrow=False, font={"size": 12})
    if bad_at is not None:
        fig.add_annotation(text=f"{names[1]}: non-finite from sample {bad_at} on (diverged); "
                                f"{bad_at} samples drawn", xref="paper", yref="paper", x=1,
                           y=-0.1, xanchor="right", showarrow=False, font={"color": MODEL_COLOUR})
    fig.update_layout(title=title or None, height=480, showlegend=False,
                      margin={"l": 0, "r": 0, "t": 80, "b": 40})
    return fig


def symbolic_code_figure(
    series: Any,
    codes: Any,
    *,
    max_points: int = 20_000,
    title: str = "attractor by linear subregion",
) -> go.Figure:
    """A trajectory coloured by the linear subregion of each sample (an AL-RNN's symbolic
    code, :meth:`~labkit.dynamics.ALRNN.symbolic_code`): one marker trace per code, in a
    fixed discrete colour (:data:`CODE_COLOURS`), named with the code, its ReLU pattern
    (units on, first unit leftmost) and the fraction of time spent there.

    Args:
        series: ``[time, dim]`` (observations or latent states; first 3 dimensions drawn).
        codes: ``[time]`` non-negative integer codes.
        max_points: the most samples drawn (an even stride beyond; fractions use all).
        title: the figure title.

    Raises:
        DataError: a bad series, codes of another length, or codes that are not
            non-negative integers.
    """
    _check_max_points(max_points)
    x = _series("series", series)
    if hasattr(codes, "detach"):
        codes = codes.detach().cpu().numpy()
    c = np.asarray(codes)
    if c.ndim != 1 or c.shape[0] != x.shape[0]:
        raise DataError(f"codes must have shape [time] = ({x.shape[0]},) like the series, got "
                        f"{tuple(c.shape)}")
    if c.dtype.kind not in "iu" and not (c.dtype.kind == "f" and np.all(c == np.round(c))):
        raise DataError(f"codes must be integers, got dtype {c.dtype}")
    c = c.astype(np.int64)
    if (c < 0).any():
        raise DataError(f"codes must be >= 0, got {int(c.min())}")
    if not np.isfinite(x).all():
        raise DataError("series has non-finite values: a diverged trajectory has no regions to "
                        "colour")
    n_bits = max(1, int(c.max()).bit_length())
    stride = _stride(len(x), max_points)
    keep = np.zeros(len(x), dtype=bool)
    keep[::stride] = True
    fig = go.Figure()
    for k in np.unique(c):
        mask = c == k
        share = mask.mean()
        pattern = format(int(k), f"0{n_bits}b")[::-1]  # unit 1 first
        pts = x[mask & keep]
        fig.add_trace(_trace(pts, name=f"code {k} [{pattern}] {100 * share:.1f}%",
                             colour=CODE_COLOURS[int(k) % len(CODE_COLOURS)], mode="markers",
                             size=2.5, opacity=0.9))
    labels = _axis_labels(x.shape[1])
    # Explicit ranges (5% padding) and a camera a little further out than plotly's: the
    # whole orbit stays in frame however the codes split it; the legend goes below the
    # scene so that long code names do not narrow it.
    lo, hi = x[:, :3].min(0), x[:, :3].max(0)
    pad = 0.05 * np.maximum(hi - lo, 1e-9)
    ranges = [[float(a - p), float(b + p)] for a, b, p in zip(lo, hi, pad, strict=True)]
    if x.shape[1] >= 3:
        fig.update_layout(scene={
            "xaxis": {"title": labels[0], "range": ranges[0]},
            "yaxis": {"title": labels[1], "range": ranges[1]},
            "zaxis": {"title": labels[2], "range": ranges[2]},
            "aspectmode": "cube", "camera": {"eye": {"x": 1.6, "y": 1.6, "z": 1.1}}})
    else:
        fig.update_layout(xaxis={"title": labels[0], "range": ranges[0]},
                          yaxis={"title": labels[1], "range": ranges[1]})
    fig.update_layout(title=f"{title} ({len(np.unique(c))} regions visited)", height=560,
                      legend={"itemsizing": "constant", "title": "code [ReLU on]",
                              "orientation": "h", "y": -0.02, "yanchor": "top"},
                      margin={"l": 0, "r": 0, "t": 50, "b": 0})
    return fig


def training_monitor_figure(
    history: Any,
    free_run: Any,
    truth: Any,
    *,
    keys: Sequence[str] = ("loss",),
    smooth: int = 50,
    max_points: int = 10_000,
    title: str = "training",
) -> go.Figure:
    """The training curves beside the model's current free-running attractor.

    Left, top: each of ``keys`` (raw faint, a ``smooth``-step moving average on top, log
    scale); left, bottom: the teacher-forcing :math:`\\alpha` when the history has it;
    right: the truth (faint) and the free run (``None`` before there is one; a
    non-finite free run is drawn up to its first bad sample and named in red).

    Args:
        history: a :class:`~labkit.core.train.History` (or a ``{name: values}`` mapping).
        free_run: ``[time, dim]`` or ``None``.
        truth: ``[time, dim]``.
        keys: the loss curves.
        smooth: moving-average window (steps).
        max_points: the most samples of each series drawn.
        title: the figure title.

    Raises:
        ConfigError: a key the history lacks, ``smooth < 1``.
        DataError: bad series, or different dimensions.
    """
    if not isinstance(smooth, int) or smooth < 1:
        raise ConfigError(f"smooth must be an int >= 1, got {smooth!r}")
    _check_max_points(max_points)
    snap = history.snapshot() if hasattr(history, "snapshot") else {"metrics": dict(history)}
    metrics = snap["metrics"]
    missing = [k for k in keys if k not in metrics]
    if missing:
        raise ConfigError(f"history has no metric {missing[0]!r}; it has {sorted(metrics)}")
    n_steps = len(next(iter(metrics.values()), []))
    steps = np.asarray(snap.get("steps") or range(n_steps))
    a = _series("truth", truth)
    b, bad_at = (None, None) if free_run is None else _finite_prefix(_series("free_run", free_run))
    if b is not None:
        _same_dims(a, b, ("truth", "free_run"))
    kind = "scene" if a.shape[1] >= 3 else "xy"
    fig = make_subplots(rows=2, cols=2, column_widths=[0.45, 0.55],
                        specs=[[{"type": "xy"}, {"type": kind, "rowspan": 2}],
                               [{"type": "xy"}, None]],
                        subplot_titles=["loss", "free run against the truth", "α (forcing)"],
                        vertical_spacing=0.12, horizontal_spacing=0.08)
    colours = ("#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e")
    for i, key in enumerate(keys):
        y = np.asarray(metrics[key], dtype=float)
        colour = colours[i % len(colours)]
        fig.add_trace(go.Scatter(x=steps, y=y, mode="lines", line={"color": colour, "width": 1},
                                 opacity=0.25, name=f"{key} (raw)", showlegend=False), row=1, col=1)
        fig.add_trace(go.Scatter(x=steps, y=_smooth(y, smooth), mode="lines",
                                 line={"color": colour, "width": 2}, name=key), row=1, col=1)
    fig.update_yaxes(type="log", row=1, col=1)
    if "alpha" in metrics:
        fig.add_trace(go.Scatter(x=steps, y=np.asarray(metrics["alpha"], dtype=float),
                                 mode="lines", line={"color": "#8c564b", "width": 2}, name="α"),
                      row=2, col=1)
    fig.update_yaxes(range=[0, 1.05], row=2, col=1)
    fig.update_xaxes(title="step", row=2, col=1)
    s = a[::_stride(len(a), max_points)]
    fig.add_trace(_trace(s, name="truth", colour="#7f7f7f", opacity=0.35, size=1.5),
                  row=1, col=2)
    if b is not None and len(b):
        s = b[::_stride(len(b), max_points)]
        fig.add_trace(_trace(s, name="free run", colour=MODEL_COLOUR, size=2), row=1, col=2)
    if bad_at is not None:
        fig.add_annotation(text=f"free run non-finite from sample {bad_at} on (diverged)",
                           xref="paper", yref="paper", x=1, y=0, xanchor="right",
                           showarrow=False, font={"color": MODEL_COLOUR})
    last = f" (step {int(steps[-1])})" if len(steps) else ""
    fig.update_layout(title=title + last, height=520,
                      margin={"l": 50, "r": 10, "t": 70, "b": 40})
    return fig
