"""Atoms: molecules and crystals. ASE and pymatgen are imported only inside
:mod:`labkit.atoms.io` functions, so importing this package stays light."""

from labkit.atoms._batch import AtomsBatch
from labkit.atoms._pointgroup import CrystalSymmetry, crystal_point_group
from labkit.atoms._symmetry_data import g2_symmetry_data
from labkit.atoms.datasets import CrystalDataset, load_cdvae, load_sample, resplit
from labkit.atoms.io import (
    Conformers,
    g2_conformers,
    read_cdvae_csv,
    read_cif,
    sample_crystals,
)

__all__ = [
    "AtomsBatch",
    "Conformers",
    "CrystalDataset",
    "CrystalSymmetry",
    "crystal_point_group",
    "g2_conformers",
    "g2_symmetry_data",
    "load_cdvae",
    "load_sample",
    "read_cdvae_csv",
    "read_cif",
    "resplit",
    "sample_crystals",
]
