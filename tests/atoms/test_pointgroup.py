"""Discrete symmetry discovery on real crystals, checked against spglib."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import spglib

from labkit.atoms import crystal_point_group, read_cif
from labkit.errors import ConfigError, DataError

pytestmark = pytest.mark.filterwarnings("ignore:Set OLD_ERROR_HANDLING:DeprecationWarning")


def _rows(data: Path, name: str, n: int) -> list[dict]:
    with (data / "cdvae" / name / "val.csv").open() as fh:
        return [row for _, row in zip(range(n), csv.DictReader(fh), strict=False)]


def _rotation_set(rotations) -> set[tuple[int, ...]]:
    return {tuple(int(v) for v in r.ravel()) for r in rotations}


@pytest.mark.parametrize(("name", "n", "least"), [("perov_5", 40, 40), ("carbon_24", 40, 39)])
def test_point_group_operations_match_spglib(shared_data, name, n, least):
    agree, orders = 0, set()
    for i, row in enumerate(_rows(shared_data, name, n)):
        atoms = read_cif(row["cif"], row=i)
        ours = crystal_point_group(atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers)
        ref = spglib.get_symmetry((atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers),
                                  symprec=1e-3)
        agree += _rotation_set(ours.rotations) == _rotation_set(ref["rotations"])
        orders.add(ours.order)
        # every operation found really maps the crystal onto itself
        f = atoms.get_scaled_positions()
        for w, t in zip(ours.rotations, ours.translations, strict=True):
            d = (f @ w.T + t)[:, None, :] - f[None, :, :]
            d -= np.rint(d)
            dist = np.linalg.norm(d @ atoms.cell[:], axis=-1)
            same = atoms.numbers[:, None] == atoms.numbers[None, :]
            assert ((dist <= 1e-3) & same).any(1).all()
    # near symprec the two tolerance conventions can disagree on a borderline operation
    assert agree >= least, f"{agree}/{n} structures agree with spglib"
    assert len(orders) > 1 or name == "perov_5"


def test_cubic_perovskite_has_the_full_cubic_point_group():
    lattice = 4.0 * np.eye(3)
    frac = np.array([[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    found = crystal_point_group(lattice, frac, [38, 22, 8, 8, 8])  # SrTiO3, Pm-3m
    assert found.order == 48 and found.isometries == 48
    assert found.as_dict() == {"order": 48, "isometries": 48, "candidates": found.candidates}
    assert found.summary() == (f"point group of order 48 (of 48 lattice isometries, "
                               f"{found.candidates} integer matrices searched)")
    # moving one oxygen along z off its site leaves the polar tetragonal 4mm (order 8)
    frac[2, 2] = 0.02
    assert crystal_point_group(lattice, frac, [38, 22, 8, 8, 8]).order == 8
    assert spglib.get_spacegroup((lattice, frac, [38, 22, 8, 8, 8]), symprec=1e-3) == "P4mm (99)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((np.zeros((3, 3)), np.zeros((1, 3)), [1]), "lattice must be 3 finite, independent"),
        ((np.eye(3), np.zeros((2, 2)), [1, 1]), r"frac must be finite \[N, 3\], got shape \(2, 2\)"),
        ((np.eye(3), np.zeros((2, 3)), [1]), r"species must have one entry per atom \(2\)"),
    ],
)
def test_bad_input(args, message):
    with pytest.raises(ConfigError, match=message):
        crystal_point_group(*args)


def test_bad_cif_names_the_row():
    with pytest.raises(DataError, match=r"not a CIF string \(row 7\)"):
        read_cif("hello", row=7)
    with pytest.raises(DataError, match=r"could not parse the CIF \(row 3\)"):
        read_cif("data_x\n_cell_length_a 3.0\n_cell_length_b oops\n", row=3)


def test_shipped_sample_crystals_are_the_first_rows_of_the_official_split(shared_data):
    from labkit.atoms import read_cdvae_csv, sample_crystals

    for name in ("perov_5", "carbon_24"):
        sample = sample_crystals(name)
        size = {"perov_5": 400, "carbon_24": 24}[name]
        full = read_cdvae_csv(shared_data / "cdvae" / name / "val.csv", limit=size)
        assert len(sample) == size
        for a, b in zip(sample, full, strict=True):
            assert a.get_chemical_formula() == b.get_chemical_formula()
            np.testing.assert_allclose(a.cell[:], b.cell[:], rtol=0, atol=1e-12)
    with pytest.raises(ConfigError, match=r"name must be one of \['perov_5', 'carbon_24'\]"):
        sample_crystals("mp_20")
