"""Static plotly figures of crystals for notebooks and offline HTML reports.

They draw the scenes of :func:`labkit.widgets._crystal_data.crystal_scene` (the same atoms,
periodic images, bonds and cell as the live :class:`~labkit.widgets.CrystalViewer`):
:func:`crystal_figure` one crystal (or two side by side), :func:`crystal_trajectory_figure`
a trajectory as plotly frames in which the cell moves too (nglview cannot move it), and
:func:`crystal_grid_figure` a grid of samples with their metric captions. Written with
the ``notebook`` renderer (or ``include_plotlyjs=True``) they render with no network.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from labkit.errors import ConfigError
from labkit.widgets._crystal_data import (
    BOND_SCALE,
    ELEMENT_COLORS,
    ELEMENTS,
    CrystalScene,
    as_crystal,
    as_trajectory,
    crystal_scene,
)

__all__ = ["crystal_figure", "crystal_grid_figure", "crystal_trajectory_figure"]

#: Marker diameter in px per Å of covalent radius (plotly sizes markers in screen pixels).
MARKER_PX_PER_ANGSTROM = 14.0
CELL_COLOR = "#444"
BOND_COLOR = "#9a9a9a"
#: Frames kept at most in an animated figure (evenly spaced, first and last included).
MAX_FRAMES = 120


def _hex(rgb: np.ndarray) -> str:
    r, g, b = (int(round(255 * float(v))) for v in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def _segments(starts: np.ndarray, ends: np.ndarray) -> tuple[list[Any], ...]:
    """x, y, z lists of line segments separated by ``None`` (one trace for all of them)."""
    out: tuple[list[Any], list[Any], list[Any]] = ([], [], [])
    for a, b in zip(starts, ends, strict=True):
        for k in range(3):
            out[k].extend((float(a[k]), float(b[k]), None))
    return out


def _scene_traces(sc: CrystalScene, elements: Sequence[int], *, bonds: bool, cell: bool,
                  scene: str = "scene", legend: bool = True) -> list[go.Scatter3d]:
    """One trace per element of ``elements`` (empty when absent), then cell, then bonds:
    the same traces in the same order for every frame of an animation."""
    traces = []
    for z in elements:
        idx = np.nonzero(sc.species == z)[0]
        pos = sc.cart[idx]
        text = [f"{ELEMENTS[z]} {int(sc.source[i])} ({sc.frac[i, 0]:.3f}, {sc.frac[i, 1]:.3f}, "
                f"{sc.frac[i, 2]:.3f})" for i in idx]
        radius = float(sc.radii[idx[0]]) if len(idx) else 1.0
        traces.append(go.Scatter3d(
            x=pos[:, 0], y=pos[:, 1], z=pos[:, 2], mode="markers", name=ELEMENTS[z],
            legendgroup=ELEMENTS[z], showlegend=legend, scene=scene, hovertext=text,
            hoverinfo="text", meta={"kind": "atoms", "element": ELEMENTS[z]},
            marker={"size": MARKER_PX_PER_ANGSTROM * radius, "opacity": 1.0,
                    "color": _hex(ELEMENT_COLORS[z]),
                    "line": {"color": "#222", "width": 1}}))
    edges = sc.cell if cell else np.zeros((0, 2, 3))
    x, y, z_ = _segments(edges[:, 0], edges[:, 1])
    traces.append(go.Scatter3d(x=x, y=y, z=z_, mode="lines", name="cell", showlegend=False,
                               scene=scene, hoverinfo="skip",
                               meta={"kind": "cell", "edges": len(edges)},
                               line={"color": CELL_COLOR, "width": 3}))
    pairs = sc.bonds if bonds else np.zeros((0, 2), dtype=int)
    half = sc.dangling if bonds else np.zeros(0, dtype=int)
    starts = np.concatenate([sc.cart[pairs[:, 0]], sc.cart[half]])
    ends = np.concatenate([sc.cart[pairs[:, 1]],
                           (sc.cart[half] + sc.partners[:len(half)]) / 2])
    x, y, z_ = _segments(starts, ends)
    traces.append(go.Scatter3d(x=x, y=y, z=z_, mode="lines", name="bonds", showlegend=False,
                               scene=scene, hoverinfo="skip",
                               meta={"kind": "bonds", "bonds": len(pairs), "half_bonds": len(half)},
                               line={"color": BOND_COLOR, "width": 4}))
    return traces


def _scene_layout(ranges: np.ndarray | None = None) -> dict[str, Any]:
    axis = {"showbackground": False, "showgrid": False, "zeroline": False,
            "showticklabels": False, "title": {"text": ""}}
    layout: dict[str, Any] = {"xaxis": dict(axis), "yaxis": dict(axis), "zaxis": dict(axis),
                              "aspectmode": "data"}
    if ranges is not None:  # fixed for an animation, so the moving cell is seen to move
        span = ranges[1] - ranges[0]
        for k, name in enumerate(("xaxis", "yaxis", "zaxis")):
            layout[name]["range"] = [float(ranges[0, k]), float(ranges[1, k])]
        ratio = span / span.max()
        layout["aspectmode"] = "manual"
        layout["aspectratio"] = {"x": float(ratio[0]), "y": float(ratio[1]),
                                 "z": float(ratio[2])}
    return layout


def _elements(scenes: Sequence[CrystalScene]) -> list[int]:
    return sorted({int(z) for sc in scenes for z in np.unique(sc.species)})


def _lattice_text(lattice: np.ndarray) -> str:
    a, b, c = np.linalg.norm(lattice, axis=1)
    def angle(u: np.ndarray, v: np.ndarray) -> float:
        return math.degrees(math.acos(float(np.clip(u @ v / np.linalg.norm(u) /
                                                    np.linalg.norm(v), -1, 1))))
    al, be, ga = angle(lattice[1], lattice[2]), angle(lattice[0], lattice[2]), \
        angle(lattice[0], lattice[1])
    return (f"a={a:.2f} b={b:.2f} c={c:.2f} Å, α={al:.1f}° β={be:.1f}° γ={ga:.1f}°")


def crystal_figure(crystal: Any, *, compare: Any = None, repeat: Sequence[int] = (1, 1, 1),
                   images: bool = True, bonds: bool = True, cell: bool = True,
                   bond_scale: float = BOND_SCALE, title: str = "",
                   height: int = 480) -> go.Figure:
    """One crystal as a 3-D plotly figure: atoms per element (Jmol colours, size by covalent
    radius, hover: element, index, fractional coordinates), the unit cell's 12 edges, bonds.

    With ``compare`` (e.g. the ground truth), the two side by side
    (:func:`crystal_grid_figure` with captions "generated" and "ground truth").

    Args: as :func:`labkit.widgets._crystal_data.crystal_scene`; ``crystal`` is anything
    :func:`~labkit.widgets._crystal_data.as_crystal` reads.
    """
    options = {"repeat": repeat, "images": images, "bonds": bonds, "cell": cell,
               "bond_scale": bond_scale}
    if compare is not None:
        fig = crystal_grid_figure([crystal, compare], captions=["generated", "ground truth"],
                                  cols=2, height=height, **options)
        fig.update_layout(title=title)
        return fig
    c = as_crystal(crystal)
    sc = crystal_scene(c, repeat=repeat, images=images, bonds=True, bond_scale=bond_scale)
    fig = go.Figure(_scene_traces(sc, _elements([sc]), bonds=bonds, cell=cell))
    fig.update_layout(title=title or f"{c.formula}: {_lattice_text(c.lattice)}",
                      scene=_scene_layout(), height=height,
                      margin={"l": 0, "r": 0, "t": 40, "b": 0})
    return fig


def crystal_trajectory_figure(trajectory: Any, *, index: int = 0,
                              repeat: Sequence[int] = (1, 1, 1), images: bool = True,
                              bonds: bool = True, cell: bool = True,
                              bond_scale: float = BOND_SCALE, max_frames: int = MAX_FRAMES,
                              duration_ms: int = 150, title: str = "",
                              height: int = 520) -> go.Figure:
    """A trajectory as an animated figure: one plotly frame per kept step (at most
    ``max_frames``, evenly spaced, first and last included), a slider and play/pause. Atoms,
    bonds and the cell all move; the axes are fixed over the whole run and each frame's
    title gives its lattice parameters.

    Args:
        trajectory: anything :func:`~labkit.widgets._crystal_data.as_trajectory` reads
            (item ``index`` of a batch).
        The rest: as :func:`crystal_figure`.
    """
    traj = as_trajectory(trajectory, index=index)
    if isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1:
        raise ConfigError(f"max_frames must be a positive int, got {max_frames!r}")
    keep = np.unique(np.linspace(0, traj.n_frames - 1, min(max_frames, traj.n_frames))
                     .round().astype(int))
    scenes = [crystal_scene(traj.frame(int(t)), repeat=repeat, images=images, bonds=True,
                            bond_scale=bond_scale) for t in keep]
    elements = _elements(scenes)
    points = np.concatenate([np.concatenate([sc.cart, sc.cell.reshape(-1, 3)])
                             for sc in scenes])
    lo, hi = points.min(0), points.max(0)
    pad = 0.05 * float((hi - lo).max()) + 0.5
    ranges = np.stack([lo - pad, hi + pad])
    name = title or traj.frame(-1).formula
    frames = [go.Frame(data=_scene_traces(sc, elements, bonds=bonds, cell=cell),
                       name=str(int(t)),
                       layout={"title": {"text": f"{name} · step {int(t)}: "
                                                 f"{_lattice_text(sc.crystal.lattice)}"}})
              for t, sc in zip(keep, scenes, strict=True)]
    fig = go.Figure(data=frames[0].data, frames=frames)
    play = {"frame": {"duration": duration_ms, "redraw": True}, "fromcurrent": True,
            "transition": {"duration": 0}}
    fig.update_layout(
        # plotly's generated properties are untyped: Frame.layout reads as a union here
        title=frames[0].layout.title,  # pyright: ignore[reportAttributeAccessIssue, reportOptionalMemberAccess]
        scene=_scene_layout(ranges), height=height,
        margin={"l": 0, "r": 0, "t": 40, "b": 0},
        updatemenus=[{"type": "buttons", "showactive": False, "x": 0.0, "y": 0.0,
                      "xanchor": "left", "yanchor": "top", "buttons": [
                          {"label": "▶ play", "method": "animate", "args": [None, play]},
                          {"label": "❚❚ pause", "method": "animate",
                           "args": [[None], {"mode": "immediate",
                                             "frame": {"duration": 0, "redraw": False}}]}]}],
        sliders=[{"x": 0.15, "len": 0.85, "y": 0.0, "currentvalue": {"prefix": "step "},
                  "steps": [{"label": str(int(t)), "method": "animate",
                             "args": [[str(int(t))], {"mode": "immediate",
                                                      "frame": {"duration": 0,
                                                                "redraw": True},
                                                      "transition": {"duration": 0}}]}
                            for t in keep]}])
    return fig


def _caption(crystal: Any, metrics: Mapping[str, Any] | None) -> str:
    text = crystal.formula
    if metrics:
        parts = []
        for key, value in metrics.items():
            if isinstance(value, float):
                parts.append(f"{key}={value:.3g}")
            else:
                parts.append(f"{key}={value}")
        text += "<br>" + " · ".join(parts)
    return text


def crystal_grid_figure(structures: Sequence[Any], *, captions: Sequence[str] | None = None,
                        metrics: Sequence[Mapping[str, Any] | None] | None = None,
                        cols: int = 4, repeat: Sequence[int] = (1, 1, 1), images: bool = True,
                        bonds: bool = True, cell: bool = True, bond_scale: float = BOND_SCALE,
                        title: str = "", height: int | None = None) -> go.Figure:
    """A grid of crystals (e.g. samples of a generative model), each with a caption: its
    formula and ``metrics`` (a mapping per structure, e.g. ``{"match": True, "rmse":
    0.031}``), or ``captions`` given outright.

    Raises:
        ConfigError: ``captions``/``metrics`` of the wrong length, or bad ``cols``.
    """
    crystals = [as_crystal(s) for s in structures]
    n = len(crystals)
    if n == 0:
        raise ConfigError("structures is empty: nothing to draw")
    if isinstance(cols, bool) or not isinstance(cols, int) or cols < 1:
        raise ConfigError(f"cols must be a positive int, got {cols!r}")
    for name, given in (("captions", captions), ("metrics", metrics)):
        if given is not None and len(given) != n:
            raise ConfigError(f"{name} must have one entry per structure ({n}), got "
                              f"{len(given)}")
    if captions is None:
        captions = [_caption(c, None if metrics is None else metrics[i])
                    for i, c in enumerate(crystals)]
    cols = min(cols, n)
    rows = math.ceil(n / cols)
    fig = make_subplots(rows=rows, cols=cols, specs=[[{"type": "scene"}] * cols] * rows,
                        subplot_titles=list(captions), horizontal_spacing=0.01,
                        vertical_spacing=0.06)
    scenes = [crystal_scene(c, repeat=repeat, images=images, bonds=True,
                            bond_scale=bond_scale) for c in crystals]
    for i, sc in enumerate(scenes):
        present = [int(z) for z in np.unique(sc.species)]
        key = "scene" if i == 0 else f"scene{i + 1}"
        for trace in _scene_traces(sc, present, bonds=bonds, cell=cell, scene=key,
                                   legend=False):
            fig.add_trace(trace)
        fig.layout[key].update(_scene_layout())
    # One legend entry per element, from the first structure holding it.
    shown: set[str] = set()
    for trace in fig.data:
        if trace.meta and trace.meta.get("kind") == "atoms" and trace.name not in shown:
            trace.showlegend = True
            shown.add(trace.name)
    fig.update_layout(title=title, height=height or 320 * rows,
                      margin={"l": 0, "r": 0, "t": 60, "b": 0})
    return fig
