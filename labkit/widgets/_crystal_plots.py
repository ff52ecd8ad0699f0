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
import textwrap
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
    crystal_info,
    crystal_scene,
)

__all__ = ["crystal_figure", "crystal_grid_figure", "crystal_trajectory_figure",
           "title_layout"]

#: Marker diameter in px per Å of covalent radius (plotly sizes markers in screen pixels).
MARKER_PX_PER_ANGSTROM = 14.0
CELL_COLOR = "#444"
BOND_COLOR = "#9a9a9a"
#: Frames kept at most in an animated figure (evenly spaced, first and last included).
MAX_FRAMES = 120
#: Margin round a frame's box in a view that frames it, as a fraction of the box's largest
#: side (relative, so a collapsed 0.04 Å cell fills the view as a 4 Å one does; plotly
#: draws the spheres in pixels, which need no room in Å).
FRAME_PAD = 0.08
#: Titles: the first line's font size (px), the smaller size of the lines below it, the
#: line height as a multiple of the size, the room above and below the title (px) and
#: the characters per line before a title wraps (about 600 px of 16 px text, so it fits
#: a notebook's or report's narrowest plotly output).
TITLE_SIZE = 16
SUBTITLE_SIZE = 12
LINE_HEIGHT = 1.35
TITLE_PAD = 18
TITLE_CHARS = 72
#: The element legend: inside the figure's top-left corner (a legend beside a 3-D scene
#: is clipped by narrow outputs), with constant-size symbols (a marker of 24 px per
#: element would not fit a legend row). The grid figure's legend runs along its foot.
LEGEND = {"x": 0.01, "y": 0.98, "xanchor": "left", "yanchor": "top",
          "bgcolor": "rgba(255,255,255,0.75)", "itemsizing": "constant",
          "orientation": "v", "title": {"text": ""}}
GRID_LEGEND = {"x": 0.5, "y": 0.0, "xanchor": "center", "yanchor": "top",
               "orientation": "h", "itemsizing": "constant", "title": {"text": ""}}
#: Room below a grid for its legend, px.
GRID_LEGEND_ROOM = 40
#: Grid captions: font size of the cell line (px), height of a caption line and the gap
#: below a caption (px), and the height of one row's scenes (px).
CAPTION_SIZE = 11
CAPTION_LINE_PX = 17
CAPTION_GAP = 6
ROW_HEIGHT = 320


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


def _scene_layout(bounds: np.ndarray | None = None) -> dict[str, Any]:
    """A 3-D scene without axes; with ``bounds`` (``[2, 3]``, Å) a cube of equal ranges on
    the three axes round that box, so the box fills the view undistorted."""
    axis = {"showbackground": False, "showgrid": False, "zeroline": False,
            "showticklabels": False, "title": {"text": ""}}
    layout: dict[str, Any] = {"xaxis": dict(axis), "yaxis": dict(axis), "zaxis": dict(axis),
                              "aspectmode": "data"}
    if bounds is not None:
        for name, (lo, hi) in zip(("xaxis", "yaxis", "zaxis"), _cube(bounds), strict=True):
            layout[name]["range"] = [lo, hi]
            layout[name]["autorange"] = False
        layout["aspectmode"] = "cube"
    return layout


def _cube(bounds: np.ndarray) -> list[tuple[float, float]]:
    """Equal ranges on x, y, z holding ``bounds`` with a margin of :data:`FRAME_PAD` of its
    largest side."""
    lo, hi = np.asarray(bounds[0], dtype=float), np.asarray(bounds[1], dtype=float)
    half = max(float((hi - lo).max()) / 2, 1e-9) * (1 + 2 * FRAME_PAD)
    mid = (lo + hi) / 2
    return [(float(m - half), float(m + half)) for m in mid]


def _elements(scenes: Sequence[CrystalScene]) -> list[int]:
    return sorted({int(z) for sc in scenes for z in np.unique(sc.species)})


def title_layout(lines: Sequence[str], *, size: int = TITLE_SIZE,
                 width: int = TITLE_CHARS) -> dict[str, Any]:
    """A figure title of ``lines`` (each wrapped at ``width`` characters, on spaces), the
    first in ``size`` px and the rest smaller, and a top margin that holds them all, so
    no title is cut off. Returns ``{"title": ..., "margin_top": px}``."""
    wrapped: list[str] = []
    for k, line in enumerate(lines):
        for part in str(line).split("<br>"):
            pieces = textwrap.wrap(part, width) or [""]
            wrapped += pieces if k == 0 else [f"<span style='font-size:{SUBTITLE_SIZE}px'>"
                                              f"{p}</span>" for p in pieces]
    wrapped = [w for w in wrapped if w] or [""]
    top = TITLE_PAD + round(LINE_HEIGHT * size) * len(wrapped)
    # plotly centres the title in the top margin (an anchor at the top would let a
    # title of several lines rise above the figure)
    return {"title": {"text": "<br>".join(wrapped), "x": 0.01, "xanchor": "left",
                      "font": {"size": size}},
            "margin_top": top}


def _title_lines(crystal: Any, title: str) -> list[str]:
    info = crystal_info(crystal)
    head = title or crystal.formula
    return [f"{head} · {info.space_group_text}", info.lattice_text]


def crystal_figure(crystal: Any, *, compare: Any = None, repeat: Sequence[int] = (1, 1, 1),
                   images: bool = True, bonds: bool = True, cell: bool = True,
                   bond_scale: float = BOND_SCALE, title: str = "",
                   height: int = 480) -> go.Figure:
    """One crystal as a 3-D plotly figure: atoms per element (Jmol colours, size by covalent
    radius, hover: element, index, fractional coordinates), the unit cell's 12 edges, bonds
    (VESTA's element-pair cut-offs, :func:`labkit.atoms.crystal_bonds`). The title gives
    ``title`` (default: the formula) with the space group (spglib), and below it the
    lattice parameters and volume.

    With ``compare`` (e.g. the ground truth), the two side by side
    (:func:`crystal_grid_figure` with captions "generated" and "ground truth").

    Args: as :func:`labkit.widgets._crystal_data.crystal_scene`; ``crystal`` is anything
    :func:`~labkit.widgets._crystal_data.as_crystal` reads.
    """
    options = {"repeat": repeat, "images": images, "bonds": bonds, "cell": cell,
               "bond_scale": bond_scale}
    if compare is not None:
        return crystal_grid_figure([crystal, compare], captions=["generated", "ground truth"],
                                   cols=2, height=height, title=title, **options)
    c = as_crystal(crystal)
    sc = crystal_scene(c, repeat=repeat, images=images, bonds=True, bond_scale=bond_scale)
    fig = go.Figure(_scene_traces(sc, _elements([sc]), bonds=bonds, cell=cell))
    head = title_layout(_title_lines(c, title))
    fig.update_layout(title=head["title"], scene=_scene_layout(sc.bounds), height=height,
                      legend=LEGEND, margin={"l": 0, "r": 0, "t": head["margin_top"], "b": 0})
    return fig


def crystal_trajectory_figure(trajectory: Any, *, index: int = 0,
                              repeat: Sequence[int] = (1, 1, 1), images: bool = True,
                              bonds: bool = True, cell: bool = True,
                              bond_scale: float = BOND_SCALE, max_frames: int = MAX_FRAMES,
                              duration_ms: int = 150, title: str = "",
                              height: int = 520) -> go.Figure:
    """A trajectory as an animated figure: one plotly frame per kept step (at most
    ``max_frames``, evenly spaced, first and last included), a slider and play/pause. Atoms,
    bonds and the cell all move; each frame sets the axes to a cube round its own box
    (:attr:`~labkit.widgets._crystal_data.CrystalScene.bounds`), so the first, collapsed
    cell of a denoising run fills the view as the last one does, and its title gives its
    space group, lattice parameters and volume (the cell's size is read there).

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
    name = title or traj.frame(-1).formula
    heads = [title_layout(_title_lines(sc.crystal, f"{name} · step {int(t)}"))
             for t, sc in zip(keep, scenes, strict=True)]
    frames = [go.Frame(data=_scene_traces(sc, elements, bonds=bonds, cell=cell),
                       name=str(int(t)),
                       layout={"title": head["title"], "scene": _scene_layout(sc.bounds)})
              for t, sc, head in zip(keep, scenes, heads, strict=True)]
    fig = go.Figure(data=frames[0].data, frames=frames)
    play = {"frame": {"duration": duration_ms, "redraw": True}, "fromcurrent": True,
            "transition": {"duration": 0}}
    fig.update_layout(
        title=heads[0]["title"], scene=_scene_layout(scenes[0].bounds), height=height,
        legend=LEGEND,
        margin={"l": 0, "r": 0, "t": max(h["margin_top"] for h in heads), "b": 0},
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


def _cell_caption(crystal: Any, *, full: bool) -> str:
    """The space group and lattice parameters under a grid caption: all of them when the
    column is wide (``full``), else the space group and the three lengths."""
    info = crystal_info(crystal)
    text = info.lattice_text if full else f"a={info.a:.2f} b={info.b:.2f} c={info.c:.2f} Å"
    return (f"<span style='font-size:{CAPTION_SIZE}px'>{info.space_group_text} · "
            f"{text}</span>")


def crystal_grid_figure(structures: Sequence[Any], *, captions: Sequence[str] | None = None,
                        metrics: Sequence[Mapping[str, Any] | None] | None = None,
                        cols: int = 4, repeat: Sequence[int] = (1, 1, 1), images: bool = True,
                        bonds: bool = True, cell: bool = True, bond_scale: float = BOND_SCALE,
                        title: str = "", height: int | None = None) -> go.Figure:
    """A grid of crystals (e.g. samples of a generative model), each with a caption: its
    formula and ``metrics`` (a mapping per structure, e.g. ``{"match": True, "rmse":
    0.031}``), or ``captions`` given outright; under it the structure's space group
    (spglib) and lattice parameters (all six with at most two columns, else a, b, c).

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
    texts = [f"{caption}<br>{_cell_caption(c, full=cols <= 2)}"
             for caption, c in zip(captions, crystals, strict=True)]
    lines = max(t.count("<br>") + 1 for t in texts)
    caption_px = CAPTION_LINE_PX * lines + CAPTION_GAP
    total = height or ROW_HEIGHT * rows + caption_px * rows
    head = title_layout([title]) if title else {"title": {"text": ""}, "margin_top": 0}
    fig = make_subplots(rows=rows, cols=cols, specs=[[{"type": "scene"}] * cols] * rows,
                        subplot_titles=texts, horizontal_spacing=0.01,
                        vertical_spacing=min(caption_px / total, 0.9 / max(rows - 1, 1)))
    scenes = [crystal_scene(c, repeat=repeat, images=images, bonds=True,
                            bond_scale=bond_scale) for c in crystals]
    for i, sc in enumerate(scenes):
        present = [int(z) for z in np.unique(sc.species)]
        key = "scene" if i == 0 else f"scene{i + 1}"
        for trace in _scene_traces(sc, present, bonds=bonds, cell=cell, scene=key,
                                   legend=False):
            fig.add_trace(trace)
        fig.layout[key].update(_scene_layout(sc.bounds))
    # One legend entry per element, from the first structure holding it.
    shown: set[str] = set()
    for trace in fig.data:
        if trace.meta and trace.meta.get("kind") == "atoms" and trace.name not in shown:
            trace.showlegend = True
            shown.add(trace.name)
    if title:  # centred in its own band above the captions of the first row
        head["title"].update(y=1 - head["margin_top"] / 2 / total, yanchor="middle",
                             yref="container")
    fig.update_layout(title=head["title"], height=total, legend=GRID_LEGEND,
                      margin={"l": 0, "r": 0, "t": head["margin_top"] + caption_px,
                              "b": GRID_LEGEND_ROOM})
    return fig
