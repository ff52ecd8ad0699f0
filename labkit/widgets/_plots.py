"""Static plotly figures for notebooks and offline reports."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from labkit.core.integrate import Trajectory
from labkit.errors import ConfigError
from labkit.widgets._attractor_data import AttractorData, OrbitData, color_quantity

__all__ = ["attractor_figure", "gallery_figure", "growth_figure", "orbit_figure", "spectrum_figure", "trajectories_figure"]


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
    values = np.asarray(mean, dtype=float)
    if values.ndim != 1 or values.size == 0:
        raise ConfigError(f"mean must be a non-empty 1-D spectrum, got shape {values.shape}")
    labels = [f"λ{i + 1}" for i in range(values.size)]
    error = None if stderr is None else {"type": "data", "array": np.asarray(stderr, float)}
    fig = go.Figure(go.Bar(x=labels, y=values, error_y=error, name="labkit (mean ± s.e.)",
                           text=[f"{v:.4f}" for v in values], textposition="outside"))
    if reference is not None:
        fig.add_trace(go.Scatter(x=labels[: len(reference)], y=list(reference), mode="markers",
                                 marker={"symbol": "line-ew-open", "size": 28,
                                         "line": {"width": 3}}, name="reference"))
    fig.update_layout(title=title, yaxis_title="exponent (1 / time)", height=360,
                      margin={"t": 40})
    return fig


def attractor_figure(data: AttractorData, *, max_lines: int = 64, title: str = "") -> go.Figure:
    """The attractor viewer's picture as a static 3D plotly figure: up to ``max_lines``
    whole trajectories coloured like the live view, diverged ones in red, with a colour bar
    titled with the quantity and ticked in its units (:attr:`AttractorData.color_range`)."""
    if not isinstance(max_lines, int) or max_lines < 1:
        raise ConfigError(f"max_lines must be an int >= 1, got {max_lines!r}")
    fig = go.Figure()
    n = min(max_lines, data.positions.shape[0])
    mode = "markers" if data.kind == "map" else "lines"
    lo, hi = data.color_range
    scale = {"showscale": True, "colorbar": {
        "title": {"text": color_quantity("series" if data.series else data.kind, data.color_by)},
        "tickvals": [0.0, 0.25, 0.5, 0.75, 1.0],
        "ticktext": [f"{lo + f * (hi - lo):.4g}" for f in (0.0, 0.25, 0.5, 0.75, 1.0)]}}
    if data.color_by in ("series", "codes"):  # palette colours: the legend is the key
        scale = {}
    for i in range(n):
        k = int(data.valid[i])
        if k < 1:
            continue
        xyz = data.positions[i, :k]
        style: dict[str, object]
        if data.diverged[i]:
            style = {"color": "#d62728"}
        else:
            style = {"color": data.colors[i, :k], "colorscale": "Viridis", "cmin": 0, "cmax": 1,
                     **scale}
            scale = {}  # one colour bar
        if mode == "lines":
            style["width"] = 2
            extra = {"line": style}
        else:
            style["size"] = 2
            extra = {"marker": style}
        fig.add_trace(go.Scatter3d(x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2], mode=mode,
                                   showlegend=False, hoverinfo="skip", opacity=0.8, **extra))
    params = ", ".join(f"{k}={v:.4g}" for k, v in data.parameters.items()
                       if isinstance(v, int | float))
    fig.update_layout(
        title=title or f"{data.system} ({params}); {n} of {data.positions.shape[0]} "
                       f"trajectories, colour: {data.color_by}",
        scene={"xaxis_title": data.var_names[0], "yaxis_title": data.var_names[1],
               "zaxis_title": data.var_names[2]},
        margin={"l": 0, "r": 0, "t": 40, "b": 0}, height=520,
    )
    if data.message:
        fig.add_annotation(text=data.message, xref="paper", yref="paper", x=0, y=0,
                           showarrow=False, font={"color": "#d62728"}, align="left")
    return fig


def gallery_figure(views: Sequence[AttractorData], *, cols: int = 3,
                   max_lines: int = 12) -> go.Figure:
    """Several attractors side by side, one 3D scene each (a static gallery for reports)."""
    from plotly.subplots import make_subplots

    if not views:
        raise ConfigError("views must hold at least one AttractorData")
    if not isinstance(cols, int) or cols < 1:
        raise ConfigError(f"cols must be an int >= 1, got {cols!r}")
    rows = -(-len(views) // cols)
    fig = make_subplots(rows=rows, cols=cols, specs=[[{"type": "scene"}] * cols] * rows,
                        subplot_titles=[v.system for v in views],
                        horizontal_spacing=0.01, vertical_spacing=0.04)
    for k, view in enumerate(views):
        single = attractor_figure(view, max_lines=max_lines)
        for trace in single.data:
            trace.update(line_showscale=False, marker_showscale=False)  # no stacked colour bars
            fig.add_trace(trace, row=k // cols + 1, col=k % cols + 1)
    fig.update_scenes(xaxis_visible=False, yaxis_visible=False, zaxis_visible=False)
    fig.update_layout(height=320 * rows, margin={"l": 0, "r": 0, "t": 30, "b": 0},
                      showlegend=False)
    return fig


def orbit_figure(orbit: OrbitData, *, title: str = "") -> go.Figure:
    """An orbit (bifurcation) diagram: maxima (flows) or iterates (maps) against the
    parameter, with the current value marked and diverged values listed."""
    pts = orbit.points
    fig = go.Figure(go.Scattergl(x=pts[:, 0], y=pts[:, 1], mode="markers",
                                 marker={"size": 2, "color": "#1f3a68", "opacity": 0.5},
                                 name="orbit", hoverinfo="skip"))
    fig.add_vline(x=orbit.current, line={"color": "#d62728", "width": 2},
                  annotation_text=f"{orbit.parameter} = {orbit.current:.4g}")
    fig.update_layout(title=title or f"orbit diagram over {orbit.parameter}",
                      xaxis_title=orbit.parameter, yaxis_title=f"x{orbit.variable}",
                      height=380, margin={"t": 40}, showlegend=False)
    if orbit.message:
        fig.add_annotation(text=orbit.message, xref="paper", yref="paper", x=0, y=-0.2,
                           showarrow=False, font={"color": "#d62728"})
    return fig
