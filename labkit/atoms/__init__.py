"""Atoms: molecules and crystals. ASE and pymatgen are imported only inside
:mod:`labkit.atoms.io` functions, so importing this package stays light."""

from labkit.atoms._pointgroup import CrystalSymmetry, crystal_point_group
from labkit.atoms._symmetry_data import g2_symmetry_data
from labkit.atoms.io import (
    Conformers,
    g2_conformers,
    read_cdvae_csv,
    read_cif,
    sample_crystals,
)

__all__ = [
    "Conformers",
    "CrystalSymmetry",
    "crystal_point_group",
    "g2_conformers",
    "g2_symmetry_data",
    "read_cdvae_csv",
    "read_cif",
    "sample_crystals",
]
