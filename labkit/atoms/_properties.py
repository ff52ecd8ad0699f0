"""Distances between property distributions of generated and reference crystals: density
and number of elements (CDVAE's Wasserstein distances) and space groups (spglib).

Public through :mod:`labkit.atoms.metrics`; spglib and scipy are imported inside the
functions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from labkit.atoms._cellinfo import SYMPREC, spglib_dataset
from labkit.atoms._metric_common import _check_structures
from labkit.core.config import check_positive
from labkit.errors import DataError


@dataclasses.dataclass(frozen=True)
class PropertyDistances:
    """Distances between the property distributions of generated and reference crystals.

    Attributes:
        density: 1-Wasserstein distance between the densities, in g/cm^3.
        n_elements: 1-Wasserstein distance between the numbers of distinct elements.
        space_group_tv: total-variation distance between the space-group histograms,
            :math:`\\tfrac12 \\sum_g |p_g - q_g|` over groups 1-230 (and 0 for structures
            spglib could not analyse), in [0, 1].
        symprec: spglib's tolerance used, in Angstrom.
    """

    density: float
    n_elements: float
    space_group_tv: float
    symprec: float

    def as_dict(self) -> dict[str, float]:
        """Every field, plain numbers."""
        return dataclasses.asdict(self)

    def summary(self) -> str:
        """One line for people: the three distances with their units."""
        return (f"density W1 {self.density:.4g} g/cm^3, number of elements W1 "
                f"{self.n_elements:.4g}, space-group TV {self.space_group_tv:.4g} "
                f"(symprec {self.symprec:g} A)")


def space_group_numbers(structures: Sequence, *, symprec: float = SYMPREC) -> np.ndarray:
    """International space-group number (1-230) of each structure, found by spglib.

    Args:
        structures: pymatgen ``Structure`` list.
        symprec: spglib's distance tolerance in Angstrom (default 0.1, pymatgen's
            ``SpacegroupAnalyzer`` default and the usual choice for generated crystals).

    Returns:
        ``[n]`` int array; 0 where spglib finds no symmetry dataset.
    """
    check_positive("symprec", symprec)
    _check_structures("structures", structures)
    out = np.zeros(len(structures), dtype=int)
    for i, s in enumerate(structures):
        data = spglib_dataset(s.lattice.matrix, s.frac_coords, [site.specie.Z for site in s],
                              symprec)
        out[i] = 0 if data is None else int(data.number)
    return out


def property_distances(generated: Sequence, reference: Sequence, *,
                       symprec: float = SYMPREC) -> PropertyDistances:
    """Distribution distances of simple properties, generated against reference.

    ``density`` and ``n_elements`` are CDVAE's "density" and "# elem." Wasserstein
    distances (``scipy.stats.wasserstein_distance`` between the empirical
    distributions of ``Structure.density`` in g/cm^3 and of the number of distinct
    elements). CDVAE computes them on 1,000 *valid* generated crystals, so filter
    ``generated`` with :func:`validity` first to reproduce its numbers.
    ``space_group_tv`` compares the space-group histograms of
    :func:`space_group_numbers` by total variation.

    Args:
        generated, reference: non-empty ``Structure`` lists.
        symprec: spglib tolerance in Angstrom.

    Returns:
        A :class:`PropertyDistances`.

    Raises:
        DataError: an empty list or a non-Structure element.
    """
    from scipy.stats import wasserstein_distance

    _check_structures("generated", generated)
    _check_structures("reference", reference)
    if not generated or not reference:
        raise DataError(f"property_distances needs non-empty lists, got {len(generated)} "
                        f"generated and {len(reference)} reference crystals")
    density = wasserstein_distance([float(s.density) for s in generated],
                                   [float(s.density) for s in reference])
    n_elem = wasserstein_distance([len(s.composition.elements) for s in generated],
                                  [len(s.composition.elements) for s in reference])
    p = np.bincount(space_group_numbers(generated, symprec=symprec), minlength=231)
    q = np.bincount(space_group_numbers(reference, symprec=symprec), minlength=231)
    tv = 0.5 * float(np.abs(p / p.sum() - q / q.sum()).sum())
    return PropertyDistances(density=float(density), n_elements=float(n_elem),
                             space_group_tv=tv, symprec=float(symprec))
