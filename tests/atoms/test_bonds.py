"""Bonds by VESTA's element-pair cut-offs: the table is pymatgen's ``vesta_2019`` preset,
the bonds are the ones pymatgen's ``CutOffDictNN`` finds (the slow, obvious reference) on
real crystals, perovskites get their octahedra and no metal-metal bonds, and bad input is
named."""

from __future__ import annotations

import functools
import time

import numpy as np
import pytest

from labkit.atoms import bond_cutoffs, crystal_bonds
from labkit.atoms.io import ase_to_arrays, sample_crystals
from labkit.errors import ConfigError, DataError


@functools.cache
def _sample(name: str) -> list:
    return sample_crystals(name)  # parsing 400 CIFs takes seconds: once per module


SRTIO3 = ((38, 22, 8, 8, 8),  # Ti at the corner, O on the edge midpoints
          [[0.5, 0.5, 0.5], [0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]],
          3.905 * np.eye(3))
#: Diamond: the two-atom primitive cell of the fcc lattice, a = 3.567 Å; C-C = a sqrt3 / 4.
DIAMOND_A = 3.567
DIAMOND = ((6, 6), [[0, 0, 0], [0.25, 0.25, 0.25]],
           DIAMOND_A / 2 * np.array([[0.0, 1, 1], [1, 0, 1], [1, 1, 0]]))


def _metals() -> np.ndarray:
    from pymatgen.core import Element

    return np.array([False] + [Element.from_Z(z).is_metal for z in range(1, 119)])


def test_the_table_is_pymatgens_vesta_preset():
    from pymatgen.core import Element
    from pymatgen.core.local_env import CutOffDictNN

    table = bond_cutoffs()
    assert table.shape == (119, 119) and not table.flags.writeable
    np.testing.assert_array_equal(table, table.T)
    reference = CutOffDictNN.from_preset("vesta_2019").cut_off_dict
    expected = np.zeros_like(table)
    for (a, b), cut in reference.items():
        if Element.is_valid_symbol(a) and Element.is_valid_symbol(b):
            za, zb = Element(a).Z, Element(b).Z
            expected[za, zb] = expected[zb, za] = max(cut, expected[za, zb])
    np.testing.assert_array_equal(table, expected)
    assert table[27, 8] == pytest.approx(2.40493) and table[21, 21] == 0  # Co-O; no Sc-Sc


@pytest.mark.parametrize(("dataset", "count"), [("perov_5", 40), ("carbon_24", 24)])
def test_the_bonds_are_the_ones_cutoffdictnn_finds(dataset, count):
    from pymatgen.core.local_env import CutOffDictNN
    from pymatgen.io.ase import AseAtomsAdaptor

    nn = CutOffDictNN.from_preset("vesta_2019")
    rng = np.random.default_rng(0)
    for atoms in _sample(dataset)[:count]:
        structure = AseAtomsAdaptor.get_structure(atoms)
        species, frac, lattice = ase_to_arrays(atoms)
        frac = frac + rng.integers(-2, 3, size=frac.shape)  # coordinates outside [0, 1)
        bonds = crystal_bonds(species, frac, lattice)
        for i in range(len(species)):
            ours = [(j, image, round(d, 6)) for j, image, d in bonds.neighbours(i)]
            # pymatgen's images are relative to its own (wrapped) coordinates
            ref = []
            for entry in nn.get_nn_info(structure, i):
                j = entry["site_index"]
                at = entry["site"].frac_coords + np.rint(frac[i] - structure.frac_coords[i])
                ref.append((j, tuple(int(v) for v in np.rint(at - frac[j])),
                            round(float(np.linalg.norm((at - frac[i]) @ lattice)), 6)))
            assert sorted(ours) == sorted(ref), (atoms.get_chemical_formula(), i)


def test_the_image_convention_and_lengths():
    species, frac, lattice = DIAMOND
    frac = np.asarray(frac) + [[3, -1, 0], [0, 0, 2]]  # not wrapped
    bonds = crystal_bonds(species, frac, lattice)
    assert len(bonds) == 4 and bonds.coordination().tolist() == [4, 4]
    vectors = (frac[bonds.j] + bonds.image - frac[bonds.i]) @ lattice
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), bonds.length, atol=1e-12)
    np.testing.assert_allclose(bonds.length, DIAMOND_A * np.sqrt(3) / 4, atol=1e-12)
    # i <= j, and an atom's bond to its own image is listed once: simple cubic O-O at 1.5 Å
    own = crystal_bonds([8], [[0.2, 0.2, 0.2]], 1.5 * np.eye(3))
    assert len(own) == 3 and own.coordination().tolist() == [6]
    assert sorted(map(tuple, own.image.tolist())) == [(0, 0, 1), (0, 1, 0), (1, 0, 0)]


def test_a_perovskite_gets_its_octahedra_and_no_metal_metal_bonds():
    atoms = _sample("perov_5")[5]
    assert atoms.get_chemical_symbols() == ["Sc", "Co", "F", "O", "O"]
    bonds = crystal_bonds(*ase_to_arrays(atoms))
    # Co on the B site: 4 O and 2 F at 1.92 Å; Sc on the A site at 2.71 Å from its 12
    # anions, beyond VESTA's Sc-O 2.42 Å and Sc-F 2.32 Å: none, and no Sc-Sc or Sc-Co.
    assert bonds.coordination().tolist() == [0, 6, 2, 2, 2]
    assert sorted(j for j, _, _ in bonds.neighbours(1)) == [2, 2, 3, 3, 4, 4]
    np.testing.assert_allclose(bonds.length, 3.8311 / 2, atol=0.01)
    # SrTiO3: VESTA bonds Sr-O at 2.76 Å < 2.98 Å; never Sr-Ti or Ti-Ti.
    srtio3 = crystal_bonds(*SRTIO3)
    assert srtio3.coordination().tolist() == [12, 6, 6, 6, 6]
    metals = _metals()
    for atoms in _sample("perov_5"):
        z, frac, lattice = ase_to_arrays(atoms)
        b = crystal_bonds(z, frac, lattice)
        assert not (metals[z[b.i]] & metals[z[b.j]]).any(), atoms.get_chemical_formula()


def test_scale_and_bad_input():
    species, frac, lattice = SRTIO3
    assert len(crystal_bonds(species, frac, lattice, scale=0.0)) == 0
    assert crystal_bonds(species, frac, lattice, scale=0.9).coordination().tolist() == \
        [0, 6, 2, 2, 2]  # 0.9 x 2.98 Å < Sr-O 2.76 Å
    assert len(crystal_bonds([84], [[0, 0, 0]], 3.35 * np.eye(3))) == 0  # Po-Po: no entry
    with pytest.raises(ConfigError, match=r"scale must be in \[0.0, 2.0\], got 3"):
        crystal_bonds(species, frac, lattice, scale=3)
    with pytest.raises(DataError, match=r"expected species \[N\], frac \[N, 3\]"):
        crystal_bonds(species, np.zeros((4, 3)), lattice)
    with pytest.raises(DataError, match=r"atomic numbers in \[1, 118\], got \[0\]"):
        crystal_bonds([0], [[0, 0, 0]], np.eye(3))
    with pytest.raises(DataError, match="the cell is singular"):
        crystal_bonds([8], [[0, 0, 0]], np.zeros((3, 3)))


def test_a_collapsed_cell_stays_bounded_and_fast():
    """A denoising run's first cell (lattice ~ N(0, I) Å): the image search stops at
    MAX_IMAGE_RANGE cells, so the time stays in milliseconds."""
    from labkit.atoms._bonds import MAX_IMAGE_RANGE

    rng = np.random.default_rng(0)
    species = np.array([38, 22, 8, 8, 8] * 4)
    lattice = rng.normal(size=(3, 3))
    start = time.perf_counter()
    bonds = crystal_bonds(species, rng.uniform(size=(20, 3)), lattice)
    assert time.perf_counter() - start < 2.0  # about 30 ms; generous for a loaded machine
    assert np.abs(bonds.image).max() <= MAX_IMAGE_RANGE + 1  # +1: wrapping of coordinates
