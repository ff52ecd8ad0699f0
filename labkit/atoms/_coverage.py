"""COV-R / COV-P of generated crystals (CDVAE): CrystalNN structure fingerprints and Magpie
composition fingerprints standardised with CDVAE's fixed scaling.

The scaling (132 means and standard deviations) lives in ``data/cdvae_magpie_scale.json``
with its source, and is read on first use. Public through :mod:`labkit.atoms.metrics`;
matminer, pymatgen and scipy are imported inside the functions.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources

import numpy as np

from labkit.atoms._metric_common import _check_structures, _composition, _payload, _pmap, _structure
from labkit.core.config import check_in, check_positive
from labkit.errors import ConfigError, DataError

#: COV thresholds on the structure- and composition-fingerprint distances, per data set,
#: as published with CDVAE (``COV_Cutoffs`` in ``scripts/compute_metrics.py``; Xie et
#: al. 2022, appendix) and reused by DiffCSP.
COVERAGE_CUTOFFS: dict[str, tuple[float, float]] = {
    "perov_5": (0.2, 4.0),
    "carbon_24": (0.2, 4.0),
    "mp_20": (0.4, 10.0),
}


#: Where CDVAE's standardisation of the 132 Magpie features is kept (``CompScalerMeans``
#: and ``CompScalerStds`` in cdvae/common/constants.py, commit 73874c4), relative to
#: the ``labkit.atoms`` package; NaN features become 0 after standardising, as CDVAE's
#: ``StandardScaler(replace_nan_token=0.)`` does.
_MAGPIE_SCALE_FILE = "data/cdvae_magpie_scale.json"


@lru_cache(maxsize=1)
def _magpie_scale() -> tuple[np.ndarray, np.ndarray]:
    """CDVAE's Magpie ``(means, stds)``, each ``[132]``, read once from the shipped table."""
    text = resources.files("labkit.atoms").joinpath(_MAGPIE_SCALE_FILE).read_text()
    table = json.loads(text)
    means = np.asarray(table["means"], dtype=float)
    stds = np.asarray(table["stds"], dtype=float)
    if means.shape != (table["n_features"],) or stds.shape != means.shape:
        raise DataError(f"{_MAGPIE_SCALE_FILE} must hold {table['n_features']} means and stds, "
                        f"got {means.shape} and {stds.shape}")
    means.setflags(write=False)
    stds.setflags(write=False)
    return means, stds


@dataclasses.dataclass(frozen=True)
class CoverageResult:
    """COV-R / COV-P between generated and reference crystals (CDVAE's ``compute_cov``).

    Attributes:
        recall: COV-R, fraction of references with a generated crystal within both
            cutoffs.
        precision: COV-P, number of generated crystals with a reference within both
            cutoffs, divided by *all* generated crystals (those whose fingerprint failed
            count as misses).
        struct_cutoff: the structure-fingerprint cutoff used.
        comp_cutoff: the (standardised) composition-fingerprint cutoff used.
        amsd_recall, amsd_precision: mean of the nearest structure-fingerprint
            distances, reference-to-generated and generated-to-reference.
        amcd_recall, amcd_precision: the same for composition fingerprints.
        n_generated: generated crystals given.
        n_failed: generated crystals whose CrystalNN fingerprint raised (left out).
    """

    recall: float
    precision: float
    struct_cutoff: float
    comp_cutoff: float
    amsd_recall: float
    amsd_precision: float
    amcd_recall: float
    amcd_precision: float
    n_generated: int
    n_failed: int

    def as_dict(self) -> dict[str, float | int]:
        """Every field, plain numbers."""
        return dataclasses.asdict(self)

    def summary(self) -> str:
        """One line for people: COV-R and COV-P with their cutoffs."""
        failed = f", {self.n_failed} fingerprints failed" if self.n_failed else ""
        return (f"COV-R {100 * self.recall:.2f}%, COV-P {100 * self.precision:.2f}% "
                f"(cutoffs {self.struct_cutoff:g} structure, {self.comp_cutoff:g} composition; "
                f"{self.n_generated} generated{failed})")


@lru_cache(maxsize=1)
def _crystalnn_featurizer():
    from matminer.featurizers.site.fingerprint import CrystalNNFingerprint

    return CrystalNNFingerprint.from_preset("ops")


@lru_cache(maxsize=1)
def _magpie_featurizer():
    from matminer.featurizers.composition.composite import ElementProperty

    return ElementProperty.from_preset("magpie")


def structure_fingerprint(structure) -> np.ndarray:
    """CDVAE's structure fingerprint: matminer's ``CrystalNNFingerprint`` ("ops" preset)
    of every site, averaged over sites.

    Returns:
        ``[61]`` float array.

    Raises:
        DataError: when CrystalNN fails on the structure (CDVAE then calls the crystal
        invalid).
    """
    import warnings

    fp = _crystalnn_featurizer()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sites = [fp.featurize(structure, i) for i in range(len(structure))]
    except Exception as exc:
        raise DataError(f"CrystalNN fingerprint failed for {structure.formula!r}: {exc}") from exc
    return np.asarray(sites, dtype=float).mean(axis=0)


def composition_fingerprint(structure) -> np.ndarray:
    """CDVAE's composition fingerprint: matminer's Magpie ``ElementProperty`` of the
    composition, standardised with CDVAE's fixed means and standard deviations (NaN
    features become 0).

    Args:
        structure: a pymatgen ``Structure`` or ``Composition``, or a formula.

    Returns:
        ``[132]`` float array (dimensionless).
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = np.asarray(_magpie_featurizer().featurize(_composition(structure)), dtype=float)
    means, stds = _magpie_scale()
    scaled = (raw - means) / stds
    return np.where(np.isnan(scaled), 0.0, scaled)


def _fingerprint_task(payload: dict) -> tuple[np.ndarray | None, np.ndarray]:
    s = _structure(payload)
    try:
        struct = structure_fingerprint(s)
    except DataError:
        struct = None
    return struct, composition_fingerprint(s)


def coverage(
    generated: Sequence,
    reference: Sequence,
    *,
    dataset: str | None = None,
    cutoffs: tuple[float, float] | None = None,
    processes: int | None = None,
) -> CoverageResult:
    """COV-R and COV-P of generated crystals against reference crystals (CDVAE).

    With :math:`d^S` the Euclidean distances between structure fingerprints
    (:func:`structure_fingerprint`) and :math:`d^C` between standardised composition
    fingerprints (:func:`composition_fingerprint`), and cutoffs
    :math:`(\\delta_S, \\delta_C)`:

    .. math::
        \\mathrm{COV\\text{-}R} = \\frac{1}{|R|}\\,\\big|\\{r \\in R : \\exists g,\\
        d^S_{gr} \\le \\delta_S \\text{ and } d^C_{gr} \\le \\delta_C\\}\\big|

    where, as in CDVAE's ``compute_cov``, the two minima are taken *separately* (the
    nearest generated crystal in structure need not be the nearest in composition);
    COV-P swaps the roles and divides by all generated crystals, including those whose
    CrystalNN fingerprint failed. CDVAE passes all generated crystals (valid or not).

    Args:
        generated: generated ``Structure`` list.
        reference: reference ``Structure`` list (CDVAE: the test split).
        dataset: ``"perov_5"``, ``"carbon_24"`` or ``"mp_20"``, for the published
            cutoffs in :data:`COVERAGE_CUTOFFS` ((0.2, 4), (0.2, 4), (0.4, 10)).
        cutoffs: ``(struct_cutoff, comp_cutoff)`` instead of ``dataset``.
        processes: worker processes (a fingerprint costs about 0.1 s per 5-atom cell,
            docs/crystals.md).

    Returns:
        A :class:`CoverageResult`.

    Raises:
        ConfigError: neither or both of ``dataset`` and ``cutoffs``; an unknown
            data set; non-positive cutoffs.
        DataError: empty lists, a non-Structure element, or a reference crystal whose
            fingerprint fails.
    """
    if (dataset is None) == (cutoffs is None):
        raise ConfigError(f"give exactly one of dataset and cutoffs, got dataset={dataset!r}, "
                          f"cutoffs={cutoffs!r}")
    if dataset is not None:
        check_in("dataset", dataset, COVERAGE_CUTOFFS)
        struct_cut, comp_cut = COVERAGE_CUTOFFS[dataset]
    else:
        if not isinstance(cutoffs, tuple) or len(cutoffs) != 2:
            raise ConfigError(f"cutoffs must be a (struct_cutoff, comp_cutoff) tuple, "
                              f"got {cutoffs!r}")
        struct_cut, comp_cut = cutoffs
        check_positive("struct_cutoff", struct_cut)
        check_positive("comp_cutoff", comp_cut)
    _check_structures("generated", generated)
    _check_structures("reference", reference)
    if not generated or not reference:
        raise DataError(f"coverage needs non-empty lists, got {len(generated)} generated "
                        f"and {len(reference)} reference crystals")
    from scipy.spatial.distance import cdist

    fps = _pmap(_fingerprint_task, [_payload(s) for s in [*generated, *reference]], processes)
    gen, ref = fps[: len(generated)], fps[len(generated):]
    for i, (s, _) in enumerate(ref):
        if s is None:
            raise DataError(f"the CrystalNN fingerprint of reference[{i}] "
                            f"({reference[i].formula!r}) failed")
    kept = [(s, c) for s, c in gen if s is not None]
    n_failed = len(gen) - len(kept)
    if not kept:
        nan = math.nan
        return CoverageResult(0.0, 0.0, float(struct_cut), float(comp_cut), nan, nan, nan,
                              nan, len(gen), n_failed)
    d_struct = cdist(np.array([s for s, _ in kept]), np.array([s for s, _ in ref]))
    d_comp = cdist(np.array([c for _, c in kept]), np.array([c for _, c in ref]))
    recall_s, recall_c = d_struct.min(axis=0), d_comp.min(axis=0)
    prec_s, prec_c = d_struct.min(axis=1), d_comp.min(axis=1)
    recall = float(np.mean((recall_s <= struct_cut) & (recall_c <= comp_cut)))
    precision = float(np.sum((prec_s <= struct_cut) & (prec_c <= comp_cut)) / len(gen))
    return CoverageResult(
        recall=recall, precision=precision,
        struct_cutoff=float(struct_cut), comp_cutoff=float(comp_cut),
        amsd_recall=float(recall_s.mean()), amsd_precision=float(prec_s.mean()),
        amcd_recall=float(recall_c.mean()), amcd_precision=float(prec_c.mean()),
        n_generated=len(gen), n_failed=n_failed,
    )
