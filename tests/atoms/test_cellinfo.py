"""Lattice parameters and space groups against pymatgen and spglib, and structure files
(CIF, POSCAR) written by pymatgen's writers that read back to the same crystal."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from labkit.atoms import cell_info, write_structure
from labkit.atoms.io import (
    arrays_to_structure,
    ase_to_arrays,
    sample_crystals,
    structure_file_format,
)
from labkit.errors import ConfigError, DataError


@functools.cache
def _sample(name: str) -> list:
    return sample_crystals(name)  # parsing 400 CIFs takes seconds: once per module


SRTIO3 = ((38, 22, 8, 8, 8), [[0.5, 0.5, 0.5], [0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]],
          3.905 * np.eye(3))


def test_cell_info_agrees_with_spglib_and_pymatgen():
    import warnings

    import spglib

    info = cell_info(*SRTIO3)
    assert (info.space_group, info.symbol) == (221, "Pm-3m")
    assert info.summary() == ("Pm-3m (221) · a=3.90 b=3.90 c=3.90 Å, α=90.0° β=90.0° "
                              "γ=90.0°, V=59.5 Å³")
    for atoms in _sample("perov_5")[:30] + _sample("carbon_24")[:10]:
        species, frac, lattice = ase_to_arrays(atoms)
        info = cell_info(species, frac, lattice)
        with warnings.catch_warnings():  # spglib 2.5's notice on its error handling
            warnings.simplefilter("ignore", DeprecationWarning)
            data = spglib.get_symmetry_dataset((lattice, frac, species), symprec=0.1)
        assert (info.space_group, info.symbol) == (data.number, data.international)
        s = arrays_to_structure(species, frac, lattice)
        np.testing.assert_allclose([info.a, info.b, info.c, info.alpha, info.beta, info.gamma],
                                   s.lattice.parameters, rtol=1e-10)
        assert info.volume == pytest.approx(s.volume, rel=1e-10)
    assert set(info.as_dict()) == {"a", "b", "c", "alpha", "beta", "gamma", "volume",
                                   "space_group", "symbol", "symprec"}


def test_a_noisy_cell_is_p1_and_bad_input_is_named():
    rng = np.random.default_rng(0)
    info = cell_info([8, 8, 22], rng.uniform(size=(3, 3)), rng.normal(size=(3, 3)))
    assert (info.space_group, info.symbol) == (1, "P1")
    with pytest.raises(DataError, match="the cell is singular"):
        cell_info([8], [[0, 0, 0]], np.zeros((3, 3)))
    with pytest.raises(DataError, match=r"expected species \[N\], frac \[N, 3\]"):
        cell_info([8, 8], [[0, 0, 0]], np.eye(3))
    with pytest.raises(ConfigError, match="symprec must be > 0, got 0"):
        cell_info(*SRTIO3, symprec=0)


@pytest.mark.parametrize("name", ["x.cif", "x.CIF", "POSCAR", "CONTCAR", "POSCAR.relaxed",
                                  "truth_POSCAR", "x.vasp", "x.poscar"])
def test_structure_files_round_trip_through_pymatgen(tmp_path, name):
    from pymatgen.core import Structure

    atoms = _sample("perov_5")[5]  # ScCoO2F, species not grouped by element
    species, frac, lattice = ase_to_arrays(atoms)
    for given in ((species, frac, lattice), atoms, arrays_to_structure(species, frac, lattice)):
        path = write_structure(given, tmp_path / name)
        back = Structure.from_file(path)
        np.testing.assert_allclose(back.lattice.matrix, lattice, atol=1e-5)
        # the same atoms (a CIF may list them in another order)
        assert _atoms([site.specie.Z for site in back], back.frac_coords) == \
            _atoms(species, frac)
    expected = "cif" if name.lower().endswith(".cif") else "poscar"
    assert structure_file_format(name) == expected


def _atoms(species, frac) -> list[tuple[int, tuple[float, ...]]]:
    wrapped = np.round(np.mod(np.asarray(frac) + 1e-7, 1.0), 4)
    return sorted((int(z), tuple(map(float, f))) for z, f in zip(species, wrapped, strict=True))


def test_a_file_name_of_unknown_format_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"cannot tell the format of 'x.xyz' from its "
                                          r"extension '.xyz': use .cif, .vasp, .poscar"):
        write_structure(SRTIO3, tmp_path / "x.xyz")
    with pytest.raises(ConfigError, match=r"'crystal' from its extension '\(none\)'"):
        write_structure(SRTIO3, tmp_path / "crystal")
    with pytest.raises(DataError, match="no folder"):
        write_structure(SRTIO3, tmp_path / "missing" / "x.cif")
    with pytest.raises(DataError, match="expected a pymatgen Structure, got str"):
        write_structure("SrTiO3", tmp_path / "x.cif")
    assert not list(tmp_path.iterdir())
