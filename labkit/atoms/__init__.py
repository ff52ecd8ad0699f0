"""Atoms: molecules and crystals. ASE and pymatgen are imported only inside
:mod:`labkit.atoms.io` functions, so importing this package stays light."""

from labkit.atoms._pointgroup import CrystalSymmetry, crystal_point_group
from labkit.atoms.io import Conformers, g2_conformers, read_cif

__all__ = ["Conformers", "CrystalSymmetry", "crystal_point_group", "g2_conformers", "read_cif"]
