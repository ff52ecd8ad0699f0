"""Molecules as symmetry-discovery data: every atom's position rotates with one element."""

from __future__ import annotations

import numpy as np

from labkit.atoms.io import g2_conformers
from labkit.symmetry import SymmetryData, Vector, so

__all__ = ["g2_symmetry_data"]


def g2_symmetry_data(
    molecule: str = "H2O", n_samples: int = 2000, *, jitter: float = 0.05,
    seed: int | np.random.Generator | None = 0,
) -> SymmetryData:
    """Randomly oriented copies of a G2 molecule (:func:`~labkit.atoms.io.g2_conformers`)
    with their EMT energies, as :class:`~labkit.symmetry.SymmetryData`.

    ``x`` holds the ``3 N`` coordinates (one SO(3) element rotates every atom:
    ``rep = N * Vector(3)``), ``y`` the energy in eV (invariant); the reference is so(3).
    """
    conf = g2_conformers(molecule, n_samples, jitter=jitter, seed=seed)
    n_atoms = len(conf.symbols)
    return SymmetryData.from_array(
        conf.positions.reshape(n_samples, 3 * n_atoms),
        rep=n_atoms * Vector(3),
        y=conf.energies[:, None],
        name=f"g2-{molecule}",
        reference=so(3).basis,
        kind="continuous",
        description=f"{molecule} from ASE's G2 set, randomly rotated with {jitter} A jitter; "
        "EMT energies (SO(3) acting on every atom)",
    )
