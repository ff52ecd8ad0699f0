"""Static crystal figures: what they draw, counted against known cells (periodic images,
12 cell edges, bonds by VESTA's cut-offs), trajectories as plotly frames in which the
lattice moves and each frame is framed, a grid of samples with their metric captions, the
space group and lattice parameters in titles and captions, and a layout in which the
legend and titles fit."""

from __future__ import annotations

import numpy as np
import pytest

from labkit.atoms.io import sample_crystals
from labkit.errors import ConfigError
from labkit.widgets import (
    as_crystal,
    crystal_figure,
    crystal_grid_figure,
    crystal_trajectory_figure,
)
from labkit.widgets._crystal_plots import (
    LINE_HEIGHT,
    TITLE_CHARS,
    TITLE_SIZE,
    title_layout,
)

SIMPLE_CUBIC = ((84,), [[0.0, 0.0, 0.0]], 3.0 * np.eye(3))  # Po: a metal, no Po-Po bond
PEROVSKITE = ((38, 22, 8, 8, 8),  # SrTiO3, Ti at the corner: O on the edge midpoints
              [[0.5, 0.5, 0.5], [0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]],
              3.905 * np.eye(3))


def _atoms(fig, trace_filter=None):
    return {t.name: len(t.x) for t in fig.data if t.meta and t.meta["kind"] == "atoms"}


def _kind(data, kind):
    return next(t for t in data if t.meta and t.meta["kind"] == kind)


def _n_segments(trace) -> int:
    return sum(v is None for v in trace.x)


def test_a_cubic_perovskite_shows_its_periodic_images_cell_and_bonds():
    fig = crystal_figure(PEROVSKITE)
    # Ti at a corner: 8 corners; each O on an edge: 4 edges each; Sr at the centre: 1.
    assert _atoms(fig) == {"O": 12, "Ti": 8, "Sr": 1}
    cell = _kind(fig.data, "cell")
    assert cell.meta["edges"] == 12 and _n_segments(cell) == 12
    xs = [v for v in cell.x if v is not None]
    assert sorted(set(np.round(xs, 6))) == [0.0, 3.905]  # the cube's edges
    # Bonds are pairs closer than VESTA's cut-off (Ti-O 2.35 Å, Sr-O 2.98 Å, O-O 1.70 Å;
    # none for Sr-Ti or Ti-Ti, two metals): Ti-O at a/2 = 1.95 Å (2 on each of 12 edges),
    # Sr-O at a/sqrt2 = 2.76 Å (all 12 O); not O-O (2.76 Å).
    bonds = _kind(fig.data, "bonds")
    assert bonds.meta["bonds"] == 24 + 12
    # Periodic: a bond to an image outside the cell is a half-bond. Each corner Ti has 3 of
    # its 6 O outside; each O 3 of its 4 Sr. No metal-metal stubs.
    assert bonds.meta["half_bonds"] == 8 * 3 + 12 * 3
    assert _n_segments(bonds) == 36 + 60
    hover = next(t for t in fig.data if t.name == "Sr").hovertext
    assert list(hover) == ["Sr 0 (0.500, 0.500, 0.500)"]
    # The title: formula and space group (spglib), then the lattice parameters.
    assert fig.layout.title.text.startswith("SrTiO3 · Pm-3m (221)<br>")
    lattice = "a=3.90 b=3.90 c=3.90 Å, α=90.0° β=90.0° γ=90.0°, V=59.5 Å³"
    assert lattice in fig.layout.title.text
    colours = {t.name: t.marker.color for t in fig.data if t.meta["kind"] == "atoms"}
    assert colours == {"O": "#ff0d0d", "Ti": "#bfc2c7", "Sr": "#00ff00"}


def test_repeat_images_and_toggles_change_what_is_drawn():
    assert _atoms(crystal_figure(SIMPLE_CUBIC)) == {"Po": 8}
    assert _atoms(crystal_figure(SIMPLE_CUBIC, images=False)) == {"Po": 1}
    assert _atoms(crystal_figure(SIMPLE_CUBIC, repeat=(2, 2, 2))) == {"Po": 27}
    assert _atoms(crystal_figure(SIMPLE_CUBIC, repeat=(3, 1, 1), images=False)) == {"Po": 3}
    bonds = _kind(crystal_figure(SIMPLE_CUBIC).data, "bonds")
    assert bonds.meta["bonds"] == 0 and bonds.meta["half_bonds"] == 0  # a metal: no bonds
    bonds = _kind(crystal_figure(PEROVSKITE, repeat=(2, 1, 1)).data, "bonds")
    assert bonds.meta["bonds"] == 2 * 36 - 8  # the cells share the face at x = a: 4 O, 8 Ti-O
    off = crystal_figure(PEROVSKITE, bonds=False, cell=False)
    assert _n_segments(_kind(off.data, "bonds")) == 0 and _n_segments(_kind(off.data, "cell")) == 0
    with pytest.raises(ConfigError, match=r"repeat must be three ints in \[1, 6\].*got \(0, 1, 1\)"):
        crystal_figure(SIMPLE_CUBIC, repeat=(0, 1, 1))


def test_a_sample_crystal_from_ase_and_its_comparison_side_by_side():
    atoms = sample_crystals("perov_5")[0]  # CuCdN3: Cu at the corner, N on face centres
    fig = crystal_figure(atoms)
    assert _atoms(fig) == {"Cu": 8, "Cd": 1, "N": 6}
    both = crystal_figure(atoms, compare=sample_crystals("perov_5")[1])
    captions = [a.text for a in both.layout.annotations]
    assert [c.split("<br>")[0] for c in captions] == ["generated", "ground truth"]
    assert "Pm-3m (221) · a=4.28 b=4.28 c=4.28 Å, α=90.0° β=90.0° γ=90.0°" in captions[0]
    assert "P4mm (99) · a=3.97" in captions[1]
    assert {t.scene for t in both.data} == {"scene", "scene2"}


def test_a_trajectory_becomes_frames_in_which_the_lattice_moves():
    truth = as_crystal(PEROVSKITE)
    t = 7
    scale = np.linspace(1.5, 1.0, t)
    frac = np.stack([truth.frac + 0.01 * k for k in range(t)])
    lattice = scale[:, None, None] * truth.lattice
    fig = crystal_trajectory_figure({"species": truth.species, "frac": frac, "lattice": lattice})
    assert len(fig.frames) == t and [f.name for f in fig.frames] == [str(k) for k in range(t)]
    assert len(fig.layout.sliders[0].steps) == t
    assert [b.label for b in fig.layout.updatemenus[0].buttons] == ["▶ play", "❚❚ pause"]
    for k, frame in enumerate(fig.frames):
        cell = _kind(frame.data, "cell")
        assert max(v for v in cell.x if v is not None) == pytest.approx(3.905 * scale[k])
        assert f"a={3.905 * scale[k]:.2f}" in frame.layout.title.text
        assert f"SrTiO3 · step {k} · Pm-3m (221)" in frame.layout.title.text
        assert [tr.name for tr in frame.data] == ["O", "Ti", "Sr", "cell", "bonds"]
    assert fig.layout.scene.xaxis.range == fig.frames[0].layout.scene.xaxis.range
    thinned = crystal_trajectory_figure({"species": truth.species, "frac": frac,
                                         "lattice": lattice}, max_frames=3)
    assert [f.name for f in thinned.frames] == ["0", "3", "6"]


def test_a_grid_of_samples_carries_metric_captions():
    samples = sample_crystals("perov_5")[:5]
    metrics = [{"match": k % 2 == 0, "rmse": 0.01 * (k + 1)} for k in range(5)]
    fig = crystal_grid_figure(samples, metrics=metrics, cols=3)
    captions = [a.text for a in fig.layout.annotations]
    assert captions[0].startswith("CuCdN3<br>match=True · rmse=0.01<br>")
    assert "Pm-3m (221) · a=4.28 b=4.28 c=4.28 Å" in captions[0]  # space group, lengths
    assert "match=False · rmse=0.02<br>" in captions[1] and len(captions) == 5
    assert {t.scene for t in fig.data} == {"scene", *(f"scene{k}" for k in range(2, 6))}
    # two rows of 320 px, each under three caption lines (17 px) and a 6 px gap
    assert fig.layout.height == 2 * 320 + 2 * (3 * 17 + 6)
    assert fig.layout.margin.t == 3 * 17 + 6  # room for the first row's captions
    legend = [t.name for t in fig.data if t.showlegend]
    assert len(legend) == len(set(legend))  # one entry per element
    with pytest.raises(ConfigError, match=r"metrics must have one entry per structure \(5\), got 2"):
        crystal_grid_figure(samples, metrics=metrics[:2])


# ---- bonds, framing and layout --------------------------------------------------------------

def _segments_by_pair(fig):
    """Element pairs of the drawn bonds (between shown atoms), from the atom traces."""
    where = {}
    for t in fig.data:
        if t.meta and t.meta["kind"] == "atoms":
            for x, y, z in zip(t.x, t.y, t.z, strict=True):
                where[(round(x, 6), round(y, 6), round(z, 6))] = t.name
    bonds = _kind(fig.data, "bonds")
    pairs, ends = [], []
    xs, ys, zs = bonds.x, bonds.y, bonds.z
    for k in range(0, len(xs), 3):
        a = where.get((round(xs[k], 6), round(ys[k], 6), round(zs[k], 6)))
        b = where.get((round(xs[k + 1], 6), round(ys[k + 1], 6), round(zs[k + 1], 6)))
        (pairs if b is not None else ends).append(tuple(sorted((a, b))) if b else a)
    return pairs, ends


def test_a_sc_co_perovskite_shows_co_octahedra_and_no_sc_starburst():
    atoms = sample_crystals("perov_5")[5]
    assert atoms.get_chemical_formula() == "CoFO2Sc"
    fig = crystal_figure(atoms)
    pairs, stubs = _segments_by_pair(fig)
    # Co (B site, body centre) to its 4 O and 2 F; the 6 face-centred anions reach the Co
    # of the next cells with half-bonds. Sc (A site, 8 corners) has no bond at all.
    assert sorted(pairs) == [("Co", "F")] * 2 + [("Co", "O")] * 4
    assert sorted(stubs) == ["F"] * 2 + ["O"] * 4
    assert "Sc" not in {e for p in pairs for e in p} | set(stubs)


def test_every_frame_of_a_trajectory_is_framed():
    """A denoising run starts from a cell a hundred times smaller than its last: each plotly
    frame sets a cube of axes round its own atoms, cell and half-bonds."""
    truth = as_crystal(PEROVSKITE)
    t = 5
    scale = np.geomspace(0.01, 1.0, t)
    rng = np.random.default_rng(0)
    frac = np.stack([truth.frac + 0.1 * rng.normal(size=truth.frac.shape) for _ in range(t)])
    lattice = scale[:, None, None] * truth.lattice
    fig = crystal_trajectory_figure({"species": truth.species, "frac": frac, "lattice": lattice})
    spans = []
    for frame in fig.frames:
        scene = frame.layout.scene
        ranges = [scene.xaxis.range, scene.yaxis.range, scene.zaxis.range]
        assert scene.aspectmode == "cube"
        assert len({round(hi - lo, 9) for lo, hi in ranges}) == 1  # a cube: undistorted
        for trace in frame.data:
            for k, axis in enumerate("xyz"):
                values = [v for v in getattr(trace, axis) if v is not None]
                if values:
                    assert ranges[k][0] < min(values) and max(values) < ranges[k][1], trace.name
        spans.append(ranges[0][1] - ranges[0][0])
        cell = _kind(frame.data, "cell")
        # the cell fills the view: at least a third of the range (the rest: its images,
        # half-bonds and the margin)
        assert max(v for v in cell.x if v is not None) - min(v for v in cell.x if v is not None) \
            > spans[-1] / 3
    assert spans[0] < spans[-1] / 10  # the first frame is zoomed in, not a speck


def test_the_legend_sits_inside_and_titles_fit():
    fig = crystal_figure(PEROVSKITE)
    legend = fig.layout.legend
    assert 0 <= legend.x <= 1 and 0 <= legend.y <= 1  # inside the figure: never clipped
    assert (legend.xanchor, legend.yanchor, legend.itemsizing) == ("left", "top", "constant")
    # The top margin holds both title lines.
    assert fig.layout.margin.t >= 2 * TITLE_SIZE * LINE_HEIGHT
    grid = crystal_grid_figure(sample_crystals("perov_5")[:3], cols=3, title="samples")
    assert grid.layout.legend.orientation == "h" and grid.layout.margin.b >= 40
    assert grid.layout.title.yanchor == "middle" and grid.layout.title.y > 1 - (
        grid.layout.margin.t - 3 * 17) / grid.layout.height  # above the captions
    anim = crystal_trajectory_figure(PEROVSKITE)
    assert anim.layout.legend.itemsizing == "constant"


def test_long_titles_wrap_under_a_margin_that_holds_them():
    label = ("perov_5/labkit-train (seed 0) of first 400 of val (shipped sample) (320 "
             "structures, NOT an official split)")
    head = title_layout([f"DiffCSP-style training on {label}", "second line"])
    lines = head["title"]["text"].split("<br>")
    assert len(lines) == 3
    plain = [line.split(">")[-2].split("<")[0] if "<" in line else line for line in lines]
    assert all(len(line) <= TITLE_CHARS for line in plain)
    assert " ".join(plain[:2]) == f"DiffCSP-style training on {label}"
    assert head["margin_top"] >= 3 * TITLE_SIZE * LINE_HEIGHT
