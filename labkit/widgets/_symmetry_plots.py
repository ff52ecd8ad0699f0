"""Static plotly views of symmetry discovery, for notebooks and HTML reports."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from labkit.widgets._symmetry_data import align_generators, heatmap_payload, trace_payload

__all__ = ["discovery_figure", "discovery_table_figure"]


def discovery_figure(result: Any, *, title: str = "", threshold: float = 0.99,
                     window: int = 5) -> Any:
    """One discovery at a glance: each learned generator beside the truth (sign- and
    scale-aligned), the cosine trace with the threshold and the sustained crossing, and
    the GAN losses; for LieGG, the singular values with the gap.

    Args:
        result: a :class:`labkit.symmetry.DiscoveryResult`.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    gens = align_generators(result.generators, result.reference)
    k = min(len(gens), 3)
    heat = heatmap_payload(result.generators, result.reference, threshold=threshold)
    ref = heat.get("reference") or []
    has_trace = len(result.history) > 0
    titles = [f"learned L{i + 1}" for i in range(k)] + ["truth" if ref else "(no truth)"]
    titles.append("cosine to the truth" if has_trace else "LieGG singular values")
    fig = make_subplots(rows=1, cols=k + 2, subplot_titles=titles)
    for i in range(k):
        fig.add_trace(go.Heatmap(z=gens[i], zmin=-1, zmax=1, colorscale="RdBu_r",
                                 showscale=False), row=1, col=i + 1)
    if ref:
        fig.add_trace(go.Heatmap(z=ref[0], zmin=-1, zmax=1, colorscale="RdBu_r"),
                      row=1, col=k + 1)
    for col in range(1, k + 2):  # matrix axes: integer row and column indices only
        fig.update_yaxes(autorange="reversed", scaleanchor=f"x{col}", tickmode="linear",
                         tick0=0, dtick=1, row=1, col=col)
        fig.update_xaxes(tickmode="linear", tick0=0, dtick=1, row=1, col=col)
    if has_trace:
        tr = trace_payload(result.history.snapshot(), threshold=threshold, window=window)
        fig.add_trace(go.Scatter(x=tr["cosine_steps"], y=tr["cosine"], mode="lines+markers",
                                 name="cosine"), row=1, col=k + 2)
# plotly's add_hline/add_vline leave row/col unannotated, so they read as str (their
        # default is 'all'); they take subplot numbers. Hence the ignores below.
        fig.add_hline(y=threshold, line_dash="dash", row=1, col=k + 2)  # pyright: ignore[reportArgumentType]
        if tr["sustained_step"] is not None:
            fig.add_vline(x=tr["sustained_step"], line_color="green", row=1, col=k + 2)  # pyright: ignore[reportArgumentType]
        fig.update_xaxes(title_text="step", row=1, col=k + 2)
    elif result.singular_values is not None:
        sv = np.asarray(result.singular_values, dtype=float)
        fig.add_trace(go.Scatter(y=sv, mode="markers", name="singular values"),
                      row=1, col=k + 2)
        fig.update_yaxes(type="log", row=1, col=k + 2)
    cos = result.scores.get("cosine")
    head = f"{title or result.method}: {result.verdict.label}"
    if cos is not None and np.isfinite(cos):
        head += f" (cosine {cos:.4f})"
    fig.update_layout(title=head, height=320, width=260 * (k + 2), showlegend=False)
    return fig


def discovery_table_figure(rows: Sequence[Mapping[str, Any]]) -> Any:
    """A table of discovery runs: one row per mapping (keys become columns)."""
    import plotly.graph_objects as go

    if not rows:
        return go.Figure()
    keys = list(rows[0])

    def fmt(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    cells = [[fmt(r.get(k, "")) for r in rows] for k in keys]
    fig = go.Figure(go.Table(header={"values": keys}, cells={"values": cells}))
    fig.update_layout(height=60 + 28 * len(rows), margin={"t": 10, "b": 10})
    return fig
