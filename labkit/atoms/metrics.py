"""Crystal-generation metrics with the field's exact definitions (CDVAE, DiffCSP).

Every function takes lists of pymatgen ``Structure``; pymatgen, SMACT, matminer and
spglib are imported inside the functions, so ``import labkit.atoms`` stays light.

- **CSP match rate and RMSE** (:func:`match_rate`, :func:`match_rate_best_of_k`):
  pymatgen ``StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3)``; a prediction matches
  its target when ``get_rms_dist(pred, target)`` is not ``None``, and the RMSE is the
  mean of its first element (the RMS displacement normalised by ``(V/N)^{1/3}``, so
  dimensionless) over matched pairs. A prediction must first be *valid* (structure and
  composition), as in CDVAE's ``RecEval`` and DiffCSP's ``RecEval``/``RecEvalBatch``.
- **Validity** (:func:`structure_valid`, :func:`composition_valid`, :func:`validity`):
  CDVAE's 0.5 Angstrom / 0.1 Angstrom^3 structure rule and its SMACT composition rule
  with the 2014 SMACT oxidation states (``smact14``).
- **Coverage** (:func:`coverage`): COV-R / COV-P from CrystalNN ("ops") site
  fingerprints averaged over sites and Magpie composition fingerprints standardised
  with CDVAE's fixed means and standard deviations.
- **Property distances** (:func:`property_distances`): Wasserstein distances of
  density and number of elements, and the total-variation distance between the
  space-group distributions (spglib).

References:
    CDVAE: T. Xie, X. Fu, O.-E. Ganea, R. Barzilay, T. Jaakkola, "Crystal Diffusion
    Variational Autoencoder for Periodic Material Generation", ICLR 2022; evaluation
    code ``scripts/compute_metrics.py`` and ``scripts/eval_utils.py`` of
    github.com/txie-93/cdvae.
    DiffCSP: R. Jiao, W. Huang, P. Lin, J. Han, P. Chen, Y. Lu, Y. Liu, "Crystal
    Structure Prediction by Joint Equivariant Diffusion", NeurIPS 2023; evaluation code
    ``scripts/compute_metrics.py`` of github.com/jiaor17/DiffCSP.

The implementation lives in private modules, one concept each: ``_matching``,
``_validity``, ``_coverage`` (CDVAE's Magpie scaling in ``data/cdvae_magpie_scale.json``),
``_properties`` and the shared ``_metric_common``; this module is the public surface.
"""

# The tolerances and thresholds stay importable from here (``X as X``: a re-export).
from labkit.atoms._coverage import (
    COVERAGE_CUTOFFS,
    CoverageResult,
    composition_fingerprint,
    coverage,
    structure_fingerprint,
)
from labkit.atoms._matching import ANGLE_TOL as ANGLE_TOL
from labkit.atoms._matching import LTOL as LTOL
from labkit.atoms._matching import STOL as STOL
from labkit.atoms._matching import MatchResult, match_rate, match_rate_best_of_k
from labkit.atoms._properties import SYMPREC as SYMPREC
from labkit.atoms._properties import PropertyDistances, property_distances, space_group_numbers
from labkit.atoms._validity import MIN_DISTANCE as MIN_DISTANCE
from labkit.atoms._validity import MIN_VOLUME as MIN_VOLUME
from labkit.atoms._validity import SMACT_OXIDATION_STATES as SMACT_OXIDATION_STATES
from labkit.atoms._validity import (
    ValidityResult,
    composition_valid,
    structure_valid,
    validity,
)

__all__ = [
    "COVERAGE_CUTOFFS",
    "CoverageResult",
    "MatchResult",
    "PropertyDistances",
    "ValidityResult",
    "composition_fingerprint",
    "composition_valid",
    "coverage",
    "match_rate",
    "match_rate_best_of_k",
    "property_distances",
    "space_group_numbers",
    "structure_fingerprint",
    "structure_valid",
    "validity",
]
