"""Static plotly figures for notebooks and offline reports."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from labkit.core.integrate import Trajectory
from labkit.errors import ConfigError

__all__ = ["growth_figure", "spectrum_figure", "trajectories_figure"]


def trajectories_figure(
    traj: Trajectory,
    *,
    var_names: Sequence[str] = ("x", "y", "z"),
    max_lines: int = 8,
    title: str = "",
) -> go.Figure:
    """3D lines of up to ``max_lines`` trajectories of a ``[member, time, 3]`` result."""
    y = traj.y.detach().cpu().numpy()
    if y.ndim != 3 or y.shape[-1] < 3:
        raise ConfigError(f"need y of shape [member, time, >=3], got {y.shape}")
    fig = go.Figure()
    for i in range(min(max_lines, y.shape[0])):
        fig.add_trace(
            go.Scatter3d(
                x=y[i, :, 0], y=y[i, :, 1], z=y[i, :, 2], mode="lines",
                line={"width": 2}, name=f"trajectory {i}", opacity=0.8,
            )
        )
    fig.update_layout(
        title=title,
        scene={"xaxis_title": var_names[0], "yaxis_title": var_names[1],
               "zaxis_title": var_names[2]},
        margin={"l": 0, "r": 0, "t": 40, "b": 0},
        height=480,
    )
    return fig


def growth_figure(
    t: np.ndarray, log_sep: np.ndarray, *, rate: float, window: tuple[float, float],
    reference: float | None = None,
) -> go.Figure:
    """Log separation against time with the fitted slope over ``window``."""
    t, log_sep = np.asarray(t), np.asarray(log_sep)
    mask = (t >= window[0]) & (t <= window[1])
    intercept = float(np.mean(log_sep[mask] - rate * t[mask]))
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=t, y=log_sep, mode="lines", name="mean log separation"))
    fig.add_trace(go.Scatter(x=t[mask], y=intercept + rate * t[mask], mode="lines",
                             line={"dash": "dash"}, name=f"fit: slope {rate:.3f}"))
    if reference is not None:
        fig.add_trace(go.Scatter(x=t[mask], y=intercept + reference * t[mask], mode="lines",
                                 line={"dash": "dot"}, name=f"reference {reference:.4f}"))
    fig.update_layout(xaxis_title="time", yaxis_title="log |δ(t)|", height=360,
                      margin={"t": 30})
    return fig


def spectrum_figure(
    mean: Sequence[float], stderr: Sequence[float] | None = None, *,
    reference: Sequence[float] | None = None, title: str = "Lyapunov spectrum",
) -> go.Figure:
    """Bars of Lyapunov exponents with error bars, and reference values as markers."""
    mean = np.asarray(mean, dtype=float)
    if mean.ndim != 1 or mean.size == 0:
        raise ConfigError(f"mean must be a non-empty 1-D spectrum, got shape {mean.shape}")
    labels = [f"λ{i + 1}" for i in range(mean.size)]
    error = None if stderr is None else {"type": "data", "array": np.asarray(stderr, float)}
    fig = go.Figure(go.Bar(x=labels, y=mean, error_y=error, name="labkit (mean ± s.e.)",
                           text=[f"{v:.4f}" for v in mean], textposition="outside"))
    if reference is not None:
        fig.add_trace(go.Scatter(x=labels[: len(reference)], y=list(reference), mode="markers",
                                 marker={"symbol": "line-ew-open", "size": 28,
                                         "line": {"width": 3}}, name="reference"))
    fig.update_layout(title=title, yaxis_title="exponent (1 / time)", height=360,
                      margin={"t": 40})
    return fig
