"""CrystalViewer without a browser: the adaptors read what users hold (pymatgen, ASE,
batches, sampler results, torch), bad input is named, the buffers hold the scenes, and
state travels both ways (Python -> front end through comm messages; front end -> Python
through the same ``update`` messages a browser sends), every frame comes with the box that
frames it and its space group and lattice parameters, and the shown crystal exports to
CIF and POSCAR."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

from labkit.atoms.io import sample_crystals
from labkit.errors import ConfigError, DataError
from labkit.widgets import CrystalViewer, as_crystal, as_trajectory
from labkit.widgets._crystal_data import (
    ATOM_STRIDE,
    BOND_STRIDE,
    COVALENT_RADII,
    ELEMENT_COLORS,
    ELEMENTS,
    crystal_scene,
)

SIMPLE_CUBIC = ((84,), [[0.0, 0.0, 0.0]], 3.0 * np.eye(3))


@pytest.fixture(scope="module")
def perov():
    return sample_crystals("perov_5")[:3]


# ---- element table and adaptors -----------------------------------------------------------

def test_element_table_agrees_with_ase():
    from ase.data import chemical_symbols, covalent_radii
    from ase.data.colors import jmol_colors

    assert list(ELEMENTS[1:]) == chemical_symbols[1:119]
    z = np.arange(1, 97)  # Cordero's radii end at Cm
    np.testing.assert_allclose(COVALENT_RADII[z], covalent_radii[z], atol=1e-12)
    np.testing.assert_allclose(ELEMENT_COLORS[z], jmol_colors[z], atol=0.6 / 255 + 1e-3)


def test_ase_atoms_and_pymatgen_structure_read_the_same(perov):
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = perov[1]
    a = as_crystal(atoms)
    b = as_crystal(AseAtomsAdaptor.get_structure(atoms))
    np.testing.assert_array_equal(a.species, atoms.numbers)
    np.testing.assert_allclose(a.lattice, atoms.cell[:])
    np.testing.assert_allclose(a.cart, atoms.positions, atol=1e-12)  # cart = frac @ lattice
    np.testing.assert_array_equal(b.species, a.species)
    np.testing.assert_allclose(b.frac, a.frac, atol=1e-12)
    np.testing.assert_allclose(b.lattice, a.lattice, atol=1e-12)
    assert a.formula == "VIrO3" and a.symbols == ["V", "Ir", "O", "O", "O"]


def test_a_masked_torch_batch_gives_item_index_without_padding(perov):
    crystals = [as_crystal(c) for c in perov[:2]]
    n = 7  # padded
    species = torch.zeros(2, n, dtype=torch.long)
    frac = torch.zeros(2, n, 3)
    mask = torch.zeros(2, n, dtype=torch.bool)
    for b, c in enumerate(crystals):
        species[b, :c.n_atoms] = torch.as_tensor(c.species)
        frac[b, :c.n_atoms] = torch.as_tensor(c.frac)
        mask[b, :c.n_atoms] = True
    lattice = torch.as_tensor(np.stack([c.lattice for c in crystals]), dtype=torch.float32)
    batch = types.SimpleNamespace(species=species, frac=frac, lattice=lattice, mask=mask)
    got = as_crystal(batch, index=1)
    np.testing.assert_array_equal(got.species, crystals[1].species)
    np.testing.assert_allclose(got.frac, crystals[1].frac, atol=1e-6)
    np.testing.assert_allclose(got.lattice, crystals[1].lattice, atol=1e-5)
    assert as_trajectory(batch, index=0).n_frames == 1
    with pytest.raises(ConfigError, match=r"index must be an int in \[0, 1\] \(2 structures"):
        as_crystal(batch, index=2)


def test_a_sampler_result_gives_one_trajectory_whose_lattice_moves(perov):
    c = as_crystal(perov[0])
    t, b, n = 4, 3, 6
    frac = np.random.default_rng(0).uniform(size=(t, b, n, 3))
    lattice = np.stack([np.stack([(2.0 - 0.25 * k) * c.lattice] * b) for k in range(t)])
    species = np.full((b, n), 8)
    species[:, :5] = c.species
    mask = np.ones((b, n), dtype=bool)
    mask[:, 5] = False
    result = types.SimpleNamespace(frac=torch.as_tensor(frac), lattice=torch.as_tensor(lattice),
                                   species=torch.as_tensor(species), mask=torch.as_tensor(mask))
    traj = as_trajectory(result, index=2)
    assert traj.n_frames == 4 and traj.frac.shape == (4, 5, 3)
    np.testing.assert_allclose(traj.frac, frac[:, 2, :5])
    np.testing.assert_allclose(traj.lattice[-1], 1.25 * c.lattice)
    np.testing.assert_array_equal(traj.frame(0).species, c.species)
    # labkit's SampleResult layout: [*batch, time, state], species per step, padding Z = 0.
    species_t = np.broadcast_to(species[:, None], (b, t, n)).copy()
    species_t[:, 0, :5] = 118  # a noisy first frame may hold any element
    species_t[:, :, 5] = 0
    sample = types.SimpleNamespace(
        species=torch.as_tensor(species), mask=torch.as_tensor(mask),
        frac_trajectory=torch.as_tensor(frac.transpose(1, 0, 2, 3)),
        lattice_trajectory=torch.as_tensor(lattice.transpose(1, 0, 2, 3)),
        species_trajectory=torch.as_tensor(species_t), frac=None, lattice=None)
    traj = as_trajectory(sample, index=2)
    np.testing.assert_allclose(traj.frac, frac[:, 2, :5])
    np.testing.assert_allclose(traj.lattice, lattice[:, 2])
    assert traj.frame(0).symbols == ["Og"] * 5
    np.testing.assert_array_equal(traj.frame(-1).species, c.species)
    # A list of frames (anything as_crystal reads) is a trajectory too.
    assert as_trajectory([perov[0], c]).n_frames == 2


@pytest.mark.parametrize(("value", "error", "match"), [
    (((8, 8), [[0, 0, 0]], np.eye(3)), DataError,
     r"frac must have shape \[N, 3\] = \[2, 3\] \(N from species\), got \(1, 3\)"),
    (((8,), [[0, 0, 0]], np.eye(2)), DataError,
     r"lattice must have shape \[3, 3\] \(rows are lattice vectors\), got \(2, 2\)"),
    (((8,), [[0, np.nan, 0]], np.eye(3)), DataError,
     r"frac has non-finite values \(first at index \(0, 1\): nan\)"),
    (((0,), [[0, 0, 0]], np.eye(3)), DataError,
     r"unknown element number 0: species must be atomic numbers in \[1, 118\]"),
    (((130,), [[0, 0, 0]], np.eye(3)), DataError, r"unknown element number 130"),
    (((8,), [[0, 0, 0]], np.zeros((3, 3))), DataError, r"lattice is singular"),
    ("POSCAR", DataError, r"cannot read a crystal from str"),
])
def test_bad_crystals_are_named(value, error, match):
    with pytest.raises(error, match=match):
        as_crystal(value)


def test_bad_trajectories_are_named():
    frac = np.zeros((3, 2, 4, 3))
    with pytest.raises(DataError, match=r"lattice must have shape \[T, B, 3, 3\] = \[3, 2, 3, 3\]"):
        as_trajectory({"species": np.ones((2, 4), int), "frac": frac, "lattice": np.eye(3)})
    with pytest.raises(DataError, match=r"species must have shape \[B, N\] = \[2, 4\]"):
        as_trajectory({"species": np.ones(5, int), "frac": frac,
                       "lattice": np.broadcast_to(np.eye(3), (3, 2, 3, 3))})
    with pytest.raises(DataError, match=r"trajectory lattice must have shape \[T, 3, 3\] = \[3"):
        as_trajectory({"species": np.ones(4, int), "frac": np.zeros((3, 4, 3)),
                       "lattice": np.broadcast_to(np.eye(3), (2, 3, 3))})


# ---- the widget -------------------------------------------------------------------------

def _capture(widget):
    sent: list[tuple[dict, list]] = []
    widget.comm.send = lambda data=None, metadata=None, buffers=None: sent.append((data, buffers))
    widget.sent = sent
    return widget


def _front_end_update(widget, **state):
    """What a browser sends when the user changes a control."""
    widget._handle_msg({"content": {"data": {"method": "update", "state": state,
                                             "buffer_paths": []}}, "buffers": []})


def _trajectory(crystal, t=6):
    c = as_crystal(crystal)
    frac = np.stack([c.frac + 0.02 * k for k in range(t)])
    lattice = np.stack([(1.5 - 0.1 * k) * c.lattice for k in range(t)])
    return {"species": c.species, "frac": frac, "lattice": lattice}


@pytest.fixture
def viewer(perov):
    return _capture(CrystalViewer(_trajectory(perov[0]), compare=perov[0]))


def test_initial_state_holds_every_frame_of_both_panels(viewer, perov):
    assert viewer.n_frames == 6 and viewer.frame == 0 and viewer.version == 1
    assert viewer.panels == [
        {"title": "generated", "frames": 6, "slot": 0, "formula": "CuCdN3"},
        {"title": "ground truth", "frames": 1, "slot": 6, "formula": "CuCdN3"}]
    assert viewer.elements == {"7": "N", "29": "Cu", "48": "Cd"}
    offsets = np.frombuffer(viewer.atom_offsets, np.int32)
    atoms = np.frombuffer(viewer.atoms, np.float32).reshape(-1, ATOM_STRIDE)
    assert len(offsets) == 7 + 1 and offsets[-1] == len(atoms)
    # The ground truth's slot is its scene: 15 shown atoms, positions frac @ lattice.
    truth = crystal_scene(perov[0])
    rows = atoms[offsets[6]:offsets[7]]
    np.testing.assert_allclose(rows[:, :3], truth.cart, rtol=1e-6, atol=1e-5)
    np.testing.assert_array_equal(rows[:, 10], truth.species)
    np.testing.assert_array_equal(rows[:, 11], truth.source)
    # The cell of frame k is (1.5 - 0.1 k) times the truth's: the lattice moves.
    cells = np.frombuffer(viewer.cells, np.float32).reshape(7, 24, 3)
    for k in range(6):
        assert cells[k].max() == pytest.approx((1.5 - 0.1 * k) * truth.cell.max(), rel=1e-6)
    # One box and one description per slot.
    bounds = np.frombuffer(viewer.frame_bounds, np.float32).reshape(7, 2, 3)
    np.testing.assert_allclose(bounds[6], truth.bounds, rtol=1e-6)
    assert len(viewer.frame_info) == 7
    assert viewer.frame_info[6]["text"] == ("CuCdN3 · Pm-3m (221) · a=4.28 b=4.28 c=4.28 Å, "
                                            "α=90.0° β=90.0° γ=90.0°, V=78.4 Å³")
    assert viewer.frame_info[0]["a"] == pytest.approx(1.5 * 4.27928426, abs=1e-4)


def test_python_changes_reach_the_front_end(viewer):
    viewer.sent.clear()
    viewer.frame = 3
    assert viewer.sent[-1][0]["state"] == {"frame": 3}
    viewer.repeat = [2, 1, 1]
    data, buffers = viewer.sent[-1]
    assert data["state"]["version"] == 2  # one message, version last
    assert ["atoms"] in data["buffer_paths"] and ["cells"] not in data["buffer_paths"]
    i = data["buffer_paths"].index(["atoms"])
    assert len(memoryview(buffers[i]).cast("B")) == len(viewer.atoms)
    viewer.playing = True
    assert viewer.sent[-1][0]["state"] == {"playing": True}


def test_front_end_changes_reach_python(viewer):
    seen = []
    viewer.observe(lambda change: seen.append(change["new"]), names="frame")
    _front_end_update(viewer, frame=2)
    _front_end_update(viewer, playing=True)
    for k in (3, 4, 5, 0):  # the player advancing and wrapping round
        _front_end_update(viewer, frame=k)
    assert seen == [2, 3, 4, 5, 0] and viewer.playing
    np.testing.assert_allclose(viewer.crystals()[0].lattice, viewer.trajectories[0].lattice[0])
    _front_end_update(viewer, frame=4)
    assert viewer.crystals()[0].lattice[0, 0] == pytest.approx(1.1 * 4.27928426)
    _front_end_update(viewer, images=False, bonds=False)
    assert viewer.version == 2 and viewer.payload.atoms.shape[0] == 5 * 6 + 5


def test_bad_settings_are_refused_with_the_value(viewer):
    with pytest.raises(Exception, match=r"frame must be in \[0, 5\], got 6"):
        viewer.frame = 6
    viewer.repeat = [0, 1, 1]
    assert viewer.repeat == [1, 1, 1] and "repeat must be three ints in [1, 6]" in viewer.message
    with pytest.raises(ConfigError, match=r"unknown CrystalViewer option\(s\) \['colour'\]"):
        CrystalViewer(SIMPLE_CUBIC, colour="red")
    with pytest.raises(DataError, match="unknown element number 200"):
        CrystalViewer(((200,), [[0, 0, 0]], np.eye(3)))


def test_static_figure_shows_the_current_frame(viewer):
    viewer.frame = 5
    fig = viewer.figure()
    cell = next(t for t in fig.data if t.name == "cell" and t.scene == "scene")
    assert max(v for v in cell.x if v is not None) == pytest.approx(1.0 * 4.27928426)
    anim = viewer.figure(animate=True)
    assert len(anim.frames) == 6


def test_the_panel_component_shares_the_state_and_behaviour(perov):
    from labkit.widgets import crystal_app
    from labkit.widgets._crystal import crystal_panel_class

    cls = crystal_panel_class()
    p = cls(_trajectory(perov[0], t=3))
    assert p.version == 1 and p.n_frames == 3
    p.frame = 7  # Panel has no validator: the controller clamps
    assert p.frame == 2
    p.repeat = [2, 2, 2]
    assert p.version == 2
    assert crystal_app(index=1) is not None
    with pytest.raises(ConfigError, match="unknown CrystalPanel option"):
        cls(SIMPLE_CUBIC, colour="x")


# ---- bonds, framing, cell info and export -------------------------------------------------------

def _slots(viewer):
    offsets = np.frombuffer(viewer.atom_offsets, np.int32)
    atoms = np.frombuffer(viewer.atoms, np.float32).reshape(-1, ATOM_STRIDE)
    bond_offsets = np.frombuffer(viewer.bond_offsets, np.int32)
    bonds = np.frombuffer(viewer.bond_vertices, np.float32).reshape(-1, BOND_STRIDE)
    bounds = np.frombuffer(viewer.frame_bounds, np.float32).reshape(-1, 2, 3)
    return [(atoms[offsets[s]:offsets[s + 1]], bonds[bond_offsets[s]:bond_offsets[s + 1]],
             bounds[s]) for s in range(len(bounds))]


def test_a_sc_co_perovskite_has_co_o_bonds_and_no_sc_bonds(perov):
    atoms = sample_crystals("perov_5")[5]  # ScCoO2F: Sc on the corners, Co at the centre
    scene = crystal_scene(atoms)
    z = scene.species
    pairs = sorted(tuple(sorted((ELEMENTS[z[i]], ELEMENTS[z[j]]))) for i, j in scene.bonds)
    assert pairs == [("Co", "F")] * 2 + [("Co", "O")] * 4  # the octahedron round Co
    assert sorted(ELEMENTS[v] for v in z[scene.dangling]) == ["F"] * 2 + ["O"] * 4
    assert not np.isin(np.nonzero(z == 21)[0], np.concatenate([scene.bonds.ravel(),
                                                               scene.dangling])).any()
    # The viewer sends the same bonds: every bond vertex sits on an atom of Co, O or F or on
    # a bond's midpoint; none on a Sc.
    viewer = CrystalViewer(atoms)
    rows, verts, _ = _slots(viewer)[0]
    sc = rows[rows[:, 10] == 21][:, :3]
    dist = np.linalg.norm(verts[:, None, :3] - sc[None], axis=-1)
    assert dist.min() > 1.0
    assert len(verts) == 4 * 6 + 2 * 6


def test_every_atom_lies_in_its_frame_bounds(perov):
    """A denoising-like run whose cell grows 100x: each slot's box holds its atoms, cell and
    bond vertices, and is as small as its own frame (not the largest one)."""
    c = as_crystal(perov[1])
    t = 6
    scale = np.geomspace(0.01, 1.0, t)
    rng = np.random.default_rng(1)
    frac = np.stack([c.frac + 0.2 * rng.normal(size=c.frac.shape) for _ in range(t)])
    traj = {"species": c.species, "frac": frac, "lattice": scale[:, None, None] * c.lattice}
    viewer = CrystalViewer(traj, compare=perov[1], repeat=[2, 1, 1])
    cells = np.frombuffer(viewer.cells, np.float32).reshape(-1, 24, 3)
    slots = _slots(viewer)
    assert len(slots) == t + 1
    tol = 1e-5
    for k, (rows, verts, box) in enumerate(slots):
        assert (box[0] <= box[1]).all()
        for points in (rows[:, :3], verts[:, :3], cells[k]):
            assert (points >= box[0] - tol).all() and (points <= box[1] + tol).all(), k
        # tight: the box is the extent of what is drawn
        drawn = np.concatenate([rows[:, :3], verts[:, :3], cells[k]])
        np.testing.assert_allclose(box, [drawn.min(0), drawn.max(0)], atol=tol)
    size = [float(np.linalg.norm(b[1] - b[0])) for _, _, b in slots]
    assert size[0] < size[t - 1] / 20  # the first frame's box fits its tiny cell


def test_cell_info_is_spglibs(perov):
    import warnings

    import spglib

    viewer = CrystalViewer(perov[2], compare=perov[0])
    for c, info, record in zip(viewer.crystals(), viewer.cell_info(), viewer.frame_info,
                               strict=True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            data = spglib.get_symmetry_dataset((c.lattice, c.frac, c.species), symprec=0.1)
        assert (info.space_group, info.symbol) == (data.number, data.international)
        assert (record["space_group"], record["symbol"]) == (data.number, data.international)
        assert record["a"] == pytest.approx(np.linalg.norm(c.lattice[0]), abs=1e-4)
        assert record["volume"] == pytest.approx(abs(np.linalg.det(c.lattice)), abs=1e-3)
        assert record["text"].startswith(f"{c.formula} · {data.international} ({data.number})")


@pytest.mark.parametrize("name", ["shown.cif", "POSCAR", "shown.vasp"])
def test_export_writes_the_shown_frame(viewer, tmp_path, name):
    from pymatgen.core import Structure

    viewer.frame = 4
    path = viewer.export(tmp_path / name)
    back = Structure.from_file(path)
    shown = viewer.crystals()[0]
    np.testing.assert_allclose(back.lattice.matrix, shown.lattice, atol=1e-5)
    assert sorted(site.specie.Z for site in back) == sorted(shown.species.tolist())
    truth = Structure.from_file(viewer.export(tmp_path / f"truth-{name}", panel=1))
    np.testing.assert_allclose(truth.lattice.matrix, viewer.crystals()[1].lattice, atol=1e-5)
    first = Structure.from_file(viewer.export(tmp_path / f"first-{name}", frame=0))
    np.testing.assert_allclose(first.lattice.matrix, viewer.trajectories[0].lattice[0],
                               atol=1e-5)


def test_export_refuses_what_it_cannot_write(viewer, tmp_path):
    with pytest.raises(ConfigError, match=r"cannot tell the format of 'view.png' from its "
                                          r"extension '.png'"):
        viewer.export(tmp_path / "view.png")
    with pytest.raises(ConfigError, match=r"panel must be an int in \[0, 1\] \(2 panel"):
        viewer.export(tmp_path / "x.cif", panel=2)
    with pytest.raises(ConfigError, match=r"frame must be an int in \[0, 5\] or None, got 6"):
        viewer.export(tmp_path / "x.cif", frame=6)
    assert not list(tmp_path.iterdir())


def test_a_collapsed_first_frame_gets_no_bonds_and_stays_fast(perov):
    """The near-singular cell of a denoising run's first frame (under MIN_VOLUME_PER_ATOM
    per atom) is drawn without bonds, so a rebuild stays fast."""
    import time

    from labkit.widgets._crystal_data import MIN_VOLUME_PER_ATOM

    c = as_crystal(perov[0])
    rng = np.random.default_rng(0)
    lattice = np.stack([rng.normal(size=(3, 3))] + [c.lattice] * 3)
    frac = rng.uniform(size=(4, c.n_atoms, 3))
    assert abs(np.linalg.det(lattice[0])) < MIN_VOLUME_PER_ATOM * c.n_atoms
    start = time.perf_counter()
    viewer = CrystalViewer({"species": c.species, "frac": frac, "lattice": lattice})
    assert time.perf_counter() - start < 5.0
    offsets = np.frombuffer(viewer.bond_offsets, np.int32)
    assert offsets[1] == 0 and offsets[-1] > 0  # no bonds in frame 0; bonds later
