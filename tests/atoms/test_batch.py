"""AtomsBatch: padding and masks, geometry against ASE and pymatgen, round trips through
both, and errors that name the structure and the bad value."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from labkit.atoms import AtomsBatch, sample_crystals
from labkit.errors import ConfigError, DataError

ROCKSALT = ([11, 17], [[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]], 5.64 * np.eye(3))
SKEWED = ([6, 6, 6], [[0.1, 0.2, 0.3], [0.9, 0.8, 0.7], [0.5, 0.0, 0.25]],
          [[3.0, 0.0, 0.0], [1.0, 2.5, 0.0], [0.3, 0.4, 4.0]])


def test_padding_and_mask():
    b = AtomsBatch.from_arrays([ROCKSALT, SKEWED])
    assert b.species.shape == (2, 3) and b.frac.shape == (2, 3, 3) and b.lattice.shape == (2, 3, 3)
    assert b.n_atoms.tolist() == [2, 3]
    assert b.mask.tolist() == [[True, True, False], [True, True, True]]
    assert b.species[0, 2] == 0 and torch.all(b.frac[0, 2] == 0)
    assert b.compositions() == [{11: 1, 17: 1}, {6: 3}]


def test_geometry_matches_ase():
    atoms = sample_crystals("carbon_24")[:6]
    b = AtomsBatch.from_ase(atoms)
    for k, a in enumerate(atoms):
        n = len(a)
        np.testing.assert_allclose(b.cartesian()[k, :n].numpy(), a.get_positions(wrap=False), atol=1e-10)
        assert float(b.volume()[k]) == pytest.approx(a.get_volume(), rel=1e-12)
        lengths, angles = b.lattice_parameters()
        np.testing.assert_allclose(torch.cat([lengths[k], angles[k]]).numpy(), a.cell.cellpar(), atol=1e-9)
    assert torch.all(b.cartesian()[~b.mask] == 0)


def test_round_trips_through_ase_and_pymatgen():
    b = AtomsBatch.from_ase(sample_crystals("carbon_24")[:5])
    back = AtomsBatch.from_ase(b.to_ase())
    assert torch.equal(back.species, b.species) and torch.equal(back.mask, b.mask)
    torch.testing.assert_close(back.frac, b.frac, atol=1e-12, rtol=0)
    pm = AtomsBatch.from_structures(b.to_structures())
    torch.testing.assert_close(pm.frac, b.frac, atol=1e-12, rtol=0)
    torch.testing.assert_close(pm.lattice, b.lattice, atol=1e-12, rtol=0)
    structure = b.to_structures()[0]
    assert structure.volume == pytest.approx(float(b.volume()[0]), rel=1e-12)
    assert structure.composition.reduced_formula == "C"


def test_indexing_trims_padding_and_keeps_ids():
    b = AtomsBatch.from_arrays([ROCKSALT, SKEWED, ROCKSALT], ids=["a", "b", "c"])
    one = b[0]
    assert len(one) == 1 and one.max_atoms == 2 and one.ids == ("a",)
    sub = b[[2, 1]]
    assert sub.ids == ("c", "b") and sub.max_atoms == 3
    torch.testing.assert_close(sub.frac[1], b.frac[1])
    assert b[-1].ids == ("c",)
    with pytest.raises(IndexError, match="structure 3 out of range for a batch of 3"):
        b[3]


def test_concat_wrapped_and_to():
    b = AtomsBatch.concat([AtomsBatch.from_arrays([ROCKSALT]), AtomsBatch.from_arrays([SKEWED])])
    assert b.max_atoms == 3 and b.n_atoms.tolist() == [2, 3] and b.ids == ("0", "0")
    shifted = AtomsBatch(b.species, b.frac + torch.tensor([1.0, -2.0, 3.0], dtype=b.dtype), b.lattice, b.mask)
    w = shifted.wrapped()
    torch.testing.assert_close(w.frac, b.frac, atol=1e-12, rtol=0)
    assert (w.frac >= 0).all() and (w.frac < 1).all()
    f32 = b.to(dtype=torch.float32)
    assert f32.frac.dtype == torch.float32 and f32.species.dtype == torch.int64


def test_errors_name_the_structure_and_value(unchecked_shapes):
    # AtomsBatch's own errors (what users get); under the test run its shape check comes first
    with pytest.raises(DataError, match=r"structure 1 \(b\): atomic numbers must be in 1..118, got \[0\]"):
        AtomsBatch.from_arrays([ROCKSALT, ([0], [[0, 0, 0]], np.eye(3))], ids=["a", "b"])
    with pytest.raises(DataError, match=r"structure 0: frac must have shape \[2, 3\], got \(2, 2\)"):
        AtomsBatch.from_arrays([([1, 1], [[0, 0], [1, 1]], np.eye(3))])
    with pytest.raises(DataError, match="structure 0: non-finite"):
        AtomsBatch.from_arrays([([1], [[np.nan, 0, 0]], np.eye(3))])
    with pytest.raises(DataError, match="structure 0: degenerate lattice"):
        AtomsBatch.from_arrays([([1], [[0, 0, 0]], np.diag([1.0, 1.0, 0.0]))])
    with pytest.raises(DataError, match="got no structures"):
        AtomsBatch.from_arrays([])
    with pytest.raises(ConfigError, match=r"lattice must have shape \[B, 3, 3\] = \[1, 3, 3\], got \(1, 3\)"):
        AtomsBatch(torch.ones(1, 1, dtype=torch.int64), torch.zeros(1, 1, 3), torch.zeros(1, 3),
                   torch.ones(1, 1, dtype=torch.bool))
    with pytest.raises(DataError, match="expected an ase.Atoms, got str"):
        AtomsBatch.from_ase(["not atoms"])
