"""CDVAE's validity of generated crystals: structure (distances, volume) and composition
(SMACT charge neutrality with the 2014 oxidation states).

Public through :mod:`labkit.atoms.metrics`; SMACT and pymatgen are imported inside the
functions.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from labkit.atoms._metric_common import _check_structures, _composition, _payload, _pmap, _structure
from labkit.core.config import check_positive
from labkit.errors import DataError

#: CDVAE's structure validity: the shortest interatomic distance (Angstrom) ...
MIN_DISTANCE = 0.5
#: ... and the smallest cell volume (Angstrom^3).
MIN_VOLUME = 0.1
#: SMACT oxidation-state set that reproduces CDVAE's composition validity (SMACT 4
#: changed the default; FIELD-NOTES "Crystals").
SMACT_OXIDATION_STATES = "smact14"


@dataclasses.dataclass(frozen=True)
class ValidityResult:
    """CDVAE's validity of each structure.

    Attributes:
        structure: ``[n]`` bool, :func:`structure_valid`.
        composition: ``[n]`` bool, :func:`composition_valid`.
    """

    structure: np.ndarray
    composition: np.ndarray

    @property
    def structure_rate(self) -> float:
        """Fraction of structurally valid structures."""
        return float(self.structure.mean())

    @property
    def composition_rate(self) -> float:
        """Fraction of compositionally valid structures."""
        return float(self.composition.mean())

    @property
    def rate(self) -> float:
        """Fraction valid in both senses (CDVAE's "valid")."""
        return float((self.structure & self.composition).mean())



def structure_valid(structure, *, min_distance: float = MIN_DISTANCE,
                    min_volume: float = MIN_VOLUME) -> bool:
    """CDVAE's structure validity: every interatomic distance >= ``min_distance`` and the
    cell volume >= ``min_volume``.

    Distances are pymatgen's ``distance_matrix``, the minimum-image distance between
    every two distinct sites (so an atom clashing with another atom's periodic image
    fails); as in CDVAE (``structure_validity`` in ``scripts/eval_utils.py``) an atom's
    distance to its own images is not checked.

    Args:
        structure: a pymatgen ``Structure``.
        min_distance: in Angstrom (CDVAE: 0.5).
        min_volume: in Angstrom^3 (CDVAE: 0.1).

    Returns:
        ``True`` when valid.
    """
    check_positive("min_distance", min_distance, allow_zero=True)
    check_positive("min_volume", min_volume, allow_zero=True)
    if not structure.volume >= min_volume:
        return False
    if len(structure) < 2:
        return True
    dist = np.array(structure.distance_matrix, dtype=float)
    np.fill_diagonal(dist, np.inf)
    return bool(dist.min() >= min_distance)



def composition_valid(composition) -> bool:
    """CDVAE's composition validity: SMACT charge neutrality plus the Pauling
    electronegativity test, with the 2014 SMACT oxidation states.

    The rule of CDVAE's ``smact_validity`` (``scripts/eval_utils.py``, Xie et al. 2022),
    reproduced step by step:

    1. a single-element composition is valid;
    2. a composition of metals only (SMACT's ``smact.metals``) is valid ("alloys");
    3. otherwise the element counts are divided by their gcd, and the composition is
       valid when some assignment of one ``smact14`` oxidation state per element is
       charge neutral at exactly those ratios (``smact.neutral_ratios`` with the
       reduced counts as the only allowed stoichiometry, threshold = largest count)
       *and* passes ``pauling_test`` (cations less electronegative than anions); an
       element without a Pauling electronegativity makes the test pass (CDVAE catches
       the ``TypeError``), and an element without ``smact14`` oxidation states makes
       the composition invalid.

    SMACT 4 changed its default oxidation states; ``smact14`` reproduces CDVAE's
    published composition validity (98.60% on the perov-5 test split).

    Args:
        composition: a pymatgen ``Structure`` or ``Composition``, or a formula string.

    Returns:
        ``True`` when valid.

    Raises:
        DataError: an unreadable formula, or non-integer amounts (a disordered site).
    """
    import itertools

    import smact
    from smact.screening import pauling_test

    comp = _composition(composition)
    symbols = tuple(el.symbol for el in comp.elements)
    amounts = [comp[el] for el in comp.elements]
    if any(abs(a - round(a)) > 1e-8 for a in amounts):
        raise DataError(f"composition {comp.formula!r} has non-integer amounts; "
                        "expected an ordered crystal")
    counts = [int(round(a)) for a in amounts]
    if len(symbols) == 1:
        return True
    if all(s in smact.metals for s in symbols):
        return True
    gcd = math.gcd(*counts)
    ratios = [c // gcd for c in counts]
    elements = smact.element_dictionary(symbols)
    states = [getattr(elements[s], "oxidation_states_" + SMACT_OXIDATION_STATES) or []
              for s in symbols]
    eneg = [elements[s].pauling_eneg for s in symbols]
    stoichs = [(r,) for r in ratios]
    for ox in itertools.product(*states):
        if not smact.neutral_ratios(ox, stoichs=stoichs, threshold=max(ratios)):
            continue
        try:
            if pauling_test(ox, eneg):
                return True
        except TypeError:  # no electronegativity: CDVAE counts the test as passed
            return True
    return False


def _validity_task(payload: dict) -> tuple[bool, bool]:
    s = _structure(payload)
    return structure_valid(s), composition_valid(s)


def validity(structures: Sequence, *, processes: int | None = None) -> ValidityResult:
    """Structure and composition validity of each structure (CDVAE's "Validity").

    Args:
        structures: pymatgen ``Structure`` list.
        processes: worker processes (``None``: ``os.cpu_count()``; ``1``: inline).

    Returns:
        A :class:`ValidityResult`; ``.structure_rate``, ``.composition_rate`` and
        ``.rate`` are CDVAE's "struc.", "comp." and overall validity.

    Raises:
        DataError: an element that is not a Structure.
    """
    _check_structures("structures", structures)
    out = _pmap(_validity_task, [_payload(s) for s in structures], processes)
    return ValidityResult(structure=np.array([a for a, _ in out], dtype=bool),
                          composition=np.array([b for _, b in out], dtype=bool))
