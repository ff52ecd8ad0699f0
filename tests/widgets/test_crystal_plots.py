"""Static crystal figures: what they draw, counted against known cells (periodic images,
12 cell edges, bonds), trajectories as plotly frames in which the lattice moves, and a grid
of samples with their metric captions."""

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

SIMPLE_CUBIC = ((84,), [[0.0, 0.0, 0.0]], 3.0 * np.eye(3))  # Po, a = 3 Å < 1.2 * 2 * 1.40
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
    # Bonds are pairs closer than 1.2 x the sum of covalent radii (Ti 1.60, Sr 1.95, O 0.66):
    # Ti-O at a/2 = 1.95 Å (2 on each of 12 edges), Sr-O at a/sqrt2 = 2.76 Å (all 12 O),
    # Sr-Ti at a sqrt3/2 = 3.38 Å < 4.26 Å (8 corners); not O-O (2.76 > 1.58), Ti-Ti (3.905
    # > 3.84).
    bonds = _kind(fig.data, "bonds")
    assert bonds.meta["bonds"] == 24 + 12 + 8
    # Periodic: a bond to an image outside the cell is a half-bond. Each corner Ti has 3 of
    # its 6 O and 7 of its 8 Sr outside; each O 3 of its 4 Sr; Sr its 6 Sr images (a = 3.905
    # < 4.68 Å).
    assert bonds.meta["half_bonds"] == 8 * 3 + 8 * 7 + 12 * 3 + 6
    assert _n_segments(bonds) == 44 + 122
    hover = next(t for t in fig.data if t.name == "Sr").hovertext
    assert list(hover) == ["Sr 0 (0.500, 0.500, 0.500)"]
    assert fig.layout.title.text.startswith("SrTiO3: a=3.90 b=3.90 c=3.90 Å, α=90.0°")
    colours = {t.name: t.marker.color for t in fig.data if t.meta["kind"] == "atoms"}
    assert colours == {"O": "#ff0d0d", "Ti": "#bfc2c7", "Sr": "#00ff00"}


def test_repeat_images_and_toggles_change_what_is_drawn():
    assert _atoms(crystal_figure(SIMPLE_CUBIC)) == {"Po": 8}
    assert _atoms(crystal_figure(SIMPLE_CUBIC, images=False)) == {"Po": 1}
    assert _atoms(crystal_figure(SIMPLE_CUBIC, repeat=(2, 2, 2))) == {"Po": 27}
    assert _atoms(crystal_figure(SIMPLE_CUBIC, repeat=(3, 1, 1), images=False)) == {"Po": 3}
    bonds = _kind(crystal_figure(SIMPLE_CUBIC).data, "bonds")
    assert bonds.meta["bonds"] == 12  # the cube's edges (a = 3 Å < 3.36 Å)
    off = crystal_figure(SIMPLE_CUBIC, bonds=False, cell=False)
    assert _n_segments(_kind(off.data, "bonds")) == 0 and _n_segments(_kind(off.data, "cell")) == 0
    with pytest.raises(ConfigError, match=r"repeat must be three ints in \[1, 6\].*got \(0, 1, 1\)"):
        crystal_figure(SIMPLE_CUBIC, repeat=(0, 1, 1))


def test_a_sample_crystal_from_ase_and_its_comparison_side_by_side():
    atoms = sample_crystals("perov_5")[0]  # CuCdN3: Cu at the corner, N on face centres
    fig = crystal_figure(atoms)
    assert _atoms(fig) == {"Cu": 8, "Cd": 1, "N": 6}
    both = crystal_figure(atoms, compare=sample_crystals("perov_5")[1])
    assert [a.text for a in both.layout.annotations] == ["generated", "ground truth"]
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
        assert [tr.name for tr in frame.data] == ["O", "Ti", "Sr", "cell", "bonds"]
    # Axes are fixed over the run and hold the largest cell.
    assert fig.layout.scene.xaxis.range[1] >= 3.905 * 1.5
    thinned = crystal_trajectory_figure({"species": truth.species, "frac": frac,
                                         "lattice": lattice}, max_frames=3)
    assert [f.name for f in thinned.frames] == ["0", "3", "6"]


def test_a_grid_of_samples_carries_metric_captions():
    samples = sample_crystals("perov_5")[:5]
    metrics = [{"match": k % 2 == 0, "rmse": 0.01 * (k + 1)} for k in range(5)]
    fig = crystal_grid_figure(samples, metrics=metrics, cols=3)
    captions = [a.text for a in fig.layout.annotations]
    assert captions[0] == "CuCdN3<br>match=True · rmse=0.01"
    assert captions[1].endswith("match=False · rmse=0.02") and len(captions) == 5
    assert {t.scene for t in fig.data} == {"scene", *(f"scene{k}" for k in range(2, 6))}
    assert fig.layout.height == 640  # two rows
    legend = [t.name for t in fig.data if t.showlegend]
    assert len(legend) == len(set(legend))  # one entry per element
    with pytest.raises(ConfigError, match=r"metrics must have one entry per structure \(5\), got 2"):
        crystal_grid_figure(samples, metrics=metrics[:2])
