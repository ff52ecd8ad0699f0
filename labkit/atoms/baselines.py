"""No-model baselines for crystal structure prediction (CSP).

A CSP model is given each target's composition (and here, for the first baseline, its
cell) and must place the atoms. Two rules that learn nothing set the floor any model
must clear on perov-5; score them with :func:`labkit.atoms.metrics.match_rate`:

- :func:`random_coordinates`: the true cell and species, uniform random fractional
  coordinates.
- :func:`perovskite_rule`: the ideal cubic perovskite ABX3.

Measured by ``bench/crystal_metrics.py`` with the CDVAE/DiffCSP protocol
(StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3), validity filter on) on the official
perov-5 *validation* split, 3,787 crystals (bench/RESULTS.md, docs/crystals.md):

============================  ===========  ======
baseline                      match rate   RMSE
============================  ===========  ======
perovskite rule               50.09%       0.0700
random coordinates (seed 0)   32.22%       0.4452
============================  ===========  ======

No figure on the official *test* split is quoted: labkit has not measured one
(``bench/crystal_metrics.py --split test`` does, given the file). For scale, DiffCSP reports 52.02% / 0.0760 on the test split with one sample per
target (Jiao et al., NeurIPS 2023, table 1).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from labkit.core.config import check_in, check_positive
from labkit.core.rng import numpy_rng
from labkit.errors import DataError

__all__ = ["A_SITE_RADIUS", "PEROVSKITE_SITES", "perovskite_rule", "random_coordinates"]

#: Fractional coordinates of the ideal cubic perovskite ABX3 (space group Pm-3m): A at
#: the corner, B at the body centre, X at the three face centres around B.
PEROVSKITE_SITES = {
    "A": ((0.0, 0.0, 0.0),),
    "B": ((0.5, 0.5, 0.5),),
    "X": ((0.5, 0.5, 0.0), (0.5, 0.0, 0.5), (0.0, 0.5, 0.5)),
}

#: The pymatgen ``Element`` radius that decides which cation sits on the A site (the
#: larger one). ``"atomic_radius"`` (empirical radii, Slater 1964): on the perov-5
#: validation split it gives the smallest RMSE at a match rate within 0.4 points of the
#: best radius measured (see :func:`perovskite_rule`).
A_SITE_RADIUS = "atomic_radius"
_RADII = ("atomic_radius", "atomic_radius_calculated", "average_ionic_radius",
          "average_cationic_radius")


def _check_targets(targets: Sequence) -> None:
    from pymatgen.core import Structure

    if isinstance(targets, Structure) or not isinstance(targets, Sequence):
        raise DataError(f"targets must be a list of pymatgen Structure, got "
                        f"{type(targets).__name__}")
    for i, s in enumerate(targets):
        if not isinstance(s, Structure):
            raise DataError(f"targets[{i}] must be a pymatgen Structure, got {type(s).__name__}")


def random_coordinates(targets: Sequence, *, seed: int | np.random.Generator | None = 0) -> list:
    """Each target's cell and species with i.i.d. uniform fractional coordinates.

    The baseline a CSP model with the lattice given must beat: it knows the cell and
    the composition and nothing about positions. On the official perov-5 validation
    split (seed 0) it matches 32.22% (RMSE 0.4452). There 8.08% of its predictions are
    invalid (a clash below 0.5 Angstrom, or the 1.27% of compositions SMACT rejects)
    and most of the rest are arrangements StructureMatcher rejects (docs/crystals.md).

    Args:
        targets: pymatgen ``Structure`` list.
        seed: an ``int`` or ``None`` (fresh entropy) for a NumPy PCG64 generator, or a
            ``numpy.random.Generator`` used as is. Coordinates are drawn target by
            target in order, ``[n_sites, 3]`` each.

    Returns:
        One new ``Structure`` per target, same lattice and species order.

    Raises:
        DataError: an element that is not a Structure.
        ConfigError: a bad seed.
    """
    from pymatgen.core import Structure

    _check_targets(targets)
    rng = seed if isinstance(seed, np.random.Generator) else numpy_rng(seed)
    return [Structure(t.lattice, t.species, rng.random((len(t), 3))) for t in targets]


def _radius(symbol: str, which: str) -> float:
    from pymatgen.core import Element

    value = getattr(Element(symbol), which)
    return float("nan") if value is None else float(value)


def perovskite_rule(targets: Sequence, *, lattice_constant: float | None = None,
                    radius: str = A_SITE_RADIUS) -> list:
    """The ideal cubic perovskite ABX3 built from each target's composition.

    For a 5-atom cell, the three most electronegative atoms (pymatgen ``Element.X``,
    Pauling scale; ties broken by atomic number, then input order) take the X sites
    of :data:`PEROVSKITE_SITES`; of the two others, the one with the larger
    ``radius`` takes the A site (the corner, 12-fold coordinated) and the other the
    B site (the octahedral centre). Nothing is learned and no positions are read.

    StructureMatcher rescales volumes, so the lattice only needs to be cubic (on the
    first 200 validation crystals, 1 Angstrom cubes match the same targets with the same
    RMSE: docs/crystals.md); by default it is the cube root of the target's volume (so densities are right), or
    ``lattice_constant`` Angstrom for every cell.

    On the official perov-5 validation split (3,787 crystals; 1.27% of them fail SMACT
    and can never match) it matches 50.09% (RMSE 0.0700). With each A-site radius:
    ``atomic_radius`` 50.09% / 0.0700, ``atomic_radius_calculated`` 50.44% / 0.0858,
    ``average_ionic_radius`` 49.67% / 0.0705, ``average_cationic_radius`` 49.59% /
    0.0712 (bench/RESULTS.md).

    Args:
        targets: 5-atom pymatgen ``Structure`` list (only compositions and volumes
            are used).
        lattice_constant: cubic cell edge in Angstrom; ``None``: ``V_target^(1/3)``.
        radius: the pymatgen ``Element`` attribute compared for the A site, one of
            ``"atomic_radius"``, ``"atomic_radius_calculated"``,
            ``"average_ionic_radius"``, ``"average_cationic_radius"``.

    Returns:
        One new 5-site ``Structure`` per target, sites in the order A, B, X, X, X.

    Raises:
        DataError: a target without exactly 5 sites, or a non-Structure element.
        ConfigError: a non-positive ``lattice_constant`` or unknown ``radius``.
    """
    from pymatgen.core import Element, Lattice, Structure

    _check_targets(targets)
    if lattice_constant is not None:
        check_positive("lattice_constant", lattice_constant)
    check_in("radius", radius, _RADII)
    sites = [*PEROVSKITE_SITES["A"], *PEROVSKITE_SITES["B"], *PEROVSKITE_SITES["X"]]
    out = []
    for i, t in enumerate(targets):
        if len(t) != 5:
            raise DataError(f"targets[{i}] ({t.composition.formula!r}) has {len(t)} sites; "
                            "the perovskite rule needs 5-atom ABX3 cells")
        symbols = [site.specie.symbol for site in t]

        def eneg(j: int, symbols=symbols) -> tuple[float, int, int]:
            x = Element(symbols[j]).X
            return (-(x if np.isfinite(x) else -np.inf), Element(symbols[j]).Z, j)

        order = sorted(range(5), key=eneg)
        anions, cations = [symbols[j] for j in order[:3]], [symbols[j] for j in order[3:]]
        r0, r1 = (_radius(s, radius) for s in cations)
        a_site, b_site = (cations[1], cations[0]) if r1 > r0 else (cations[0], cations[1])
        edge = lattice_constant if lattice_constant is not None else t.volume ** (1 / 3)
        out.append(Structure(Lattice.cubic(edge), [a_site, b_site, *anions], sites))
    return out
