"""Figures of the whole-catalogue invariants table against dysts' stored values."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from labkit.dynamics import Comparison
from labkit.errors import ConfigError

__all__ = ["disagreement_table_figure", "invariants_scatter_figure"]

#: quantity -> (our attribute, our error bar, dysts' attribute, axis title)
_QUANTITIES = {
    "max_lyapunov": ("ours", "ours_stderr", "dysts_max",
                     "largest Lyapunov exponent (dysts maximum_lyapunov_estimated)"),
    "spectrum_first": ("ours", "ours_stderr", "dysts_spectrum_first",
                       "largest Lyapunov exponent (dysts lyapunov_spectrum_estimated[0])"),
    "kaplan_yorke": ("ours_kaplan_yorke", "ours_kaplan_yorke_stderr", "dysts_kaplan_yorke",
                     "Kaplan-Yorke dimension (dysts kaplan_yorke_dimension)"),
}


def invariants_scatter_figure(comparison: Comparison, *, quantity: str = "max_lyapunov",
                              log: bool = True, title: str = "") -> go.Figure:
    """Ours (with standard-error bars) against dysts' value, one point per system.

    Points that agree within the comparison's tolerance (of dysts' headline
    ``maximum_lyapunov_estimated``) and those that do not are two traces; the hover text
    gives the name and the reasons. The diagonal and the tolerance band are drawn.

    Args:
        comparison: from :func:`labkit.dynamics.compare_with_dysts`.
        quantity: ``"max_lyapunov"``, ``"spectrum_first"`` or ``"kaplan_yorke"``.
        log: log-log axes (points with a non-positive value are left out).
        title: figure title.

    Raises:
        ConfigError: for an unknown ``quantity``.
    """
    if quantity not in _QUANTITIES:
        raise ConfigError(f"quantity must be one of {sorted(_QUANTITIES)}, got {quantity!r}")
    ours_key, err_key, ref_key, axis = _QUANTITIES[quantity]
    fig = go.Figure()
    lo, hi = math.inf, -math.inf
    for agree, colour, label in ((True, "#2a9d8f", "agrees"), (False, "#e76f51", "disagrees")):
        rows = [r for r in comparison.rows if r.agree == agree]
        x = np.array([getattr(r, ref_key) for r in rows], dtype=float)
        y = np.array([getattr(r, ours_key) for r in rows], dtype=float)
        err = np.array([getattr(r, err_key) for r in rows], dtype=float)
        keep = np.isfinite(x) & np.isfinite(y) & ((x > 0) & (y > 0) if log else True)
        if not keep.any():
            continue
        lo, hi = min(lo, x[keep].min(), y[keep].min()), max(hi, x[keep].max(), y[keep].max())
        # The legend counts every system of the group, as the table does, and says how many
        # cannot be drawn (no value, or a non-positive one on log axes).
        hidden = len(rows) - int(keep.sum())
        count = f"{len(rows)}; {hidden} not drawn" if hidden else f"{len(rows)}"
        text = [f"{r.name}<br>{', '.join(r.reasons) or 'agrees'}"
                for r, k in zip(rows, keep, strict=True) if k]
        fig.add_trace(go.Scatter(
            x=x[keep], y=y[keep], mode="markers", name=f"{label} ({count})",
            error_y={"type": "data", "array": np.nan_to_num(err[keep]), "visible": True,
                     "thickness": 1},
            marker={"color": colour, "size": 7}, text=text,
            hovertemplate="%{text}<br>dysts %{x:.4g}<br>labkit %{y:.4g}<extra></extra>",
        ))
    if math.isfinite(lo):
        line = np.geomspace(lo, hi, 50) if log else np.linspace(lo, hi, 50)
        tol = comparison.tolerance
        for factor, dash, name in ((1.0, "solid", "equal"), (1 + tol, "dot", f"+-{tol:g}"),
                                   (1 - tol, "dot", None)):
            fig.add_trace(go.Scatter(x=line, y=factor * line, mode="lines",
                                     line={"color": "grey", "dash": dash, "width": 1},
                                     name=name, showlegend=name is not None,
                                     hoverinfo="skip"))
    kind = "log" if log else "linear"
    fig.update_layout(title=title, xaxis={"title": f"dysts: {axis}", "type": kind},
                      yaxis={"title": "labkit (recomputed)", "type": kind}, height=520,
                      margin={"l": 60, "r": 20, "t": 50, "b": 60})
    return fig


def disagreement_table_figure(comparison: Comparison, *, max_rows: int = 200) -> go.Figure:
    """A table of the systems that disagree with dysts, with the checked reasons.

    Raises:
        ConfigError: for ``max_rows`` that is not an int >= 1.
    """
    if not isinstance(max_rows, int) or max_rows < 1:
        raise ConfigError(f"max_rows must be an int >= 1, got {max_rows!r}")
    rows = comparison.disagreements()[:max_rows]

    def fmt(value: float) -> str:
        return f"{value:.4g}" if math.isfinite(value) else "-"

    columns = {
        "system": [r.name for r in rows],
        "status": [r.status for r in rows],
        "labkit lambda1": [f"{fmt(r.ours)} +- {fmt(r.ours_stderr)}" for r in rows],
        "dysts max": [fmt(r.dysts_max) for r in rows],
        "dysts spectrum[0]": [fmt(r.dysts_spectrum_first) for r in rows],
        "rel. diff": [fmt(r.rel_diff_max) for r in rows],
        "reasons": [", ".join(r.reasons) for r in rows],
    }
    fig = go.Figure(go.Table(
        columnwidth=[1.4, 0.8, 1.5, 1, 1, 0.8, 4],
        header={"values": list(columns), "align": "left", "fill_color": "#eeeeee"},
        cells={"values": list(columns.values()), "align": "left"},
    ))
    fig.update_layout(title=f"{len(comparison.disagreements())} disagreements at tolerance "
                            f"{comparison.tolerance:g}",
                      height=min(900, 120 + 28 * len(rows)),
                      margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig
