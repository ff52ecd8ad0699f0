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
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from labkit.core.config import check_in, check_int, check_positive
from labkit.errors import ConfigError, DataError

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

#: StructureMatcher tolerances of CDVAE and DiffCSP: site tolerance (fraction of the
#: average free length per atom), angle tolerance (degrees), fractional length tolerance.
STOL, ANGLE_TOL, LTOL = 0.5, 10.0, 0.3
#: CDVAE's structure validity: the shortest interatomic distance (Angstrom) ...
MIN_DISTANCE = 0.5
#: ... and the smallest cell volume (Angstrom^3).
MIN_VOLUME = 0.1
#: SMACT oxidation-state set that reproduces CDVAE's composition validity (SMACT 4
#: changed the default; FIELD-NOTES "Crystals").
SMACT_OXIDATION_STATES = "smact14"
#: spglib's symmetry tolerance (Angstrom) for :func:`space_group_numbers`.
SYMPREC = 0.1

#: COV thresholds on the structure- and composition-fingerprint distances, per data set,
#: as published with CDVAE (``COV_Cutoffs`` in ``scripts/compute_metrics.py``; Xie et
#: al. 2022, appendix) and reused by DiffCSP.
COVERAGE_CUTOFFS: dict[str, tuple[float, float]] = {
    "perov_5": (0.2, 4.0),
    "carbon_24": (0.2, 4.0),
    "mp_20": (0.4, 10.0),
}

# CDVAE's standardisation of the 132 Magpie features (``CompScalerMeans`` and
# ``CompScalerStds`` in cdvae/common/constants.py, commit 73874c4); NaN features become 0
# after standardising, as CDVAE's ``StandardScaler(replace_nan_token=0.)`` does.
_MAGPIE_MEANS = (
    21.194441759304013, 58.20212663122281, 37.0076848719188, 36.52738520455582,
    13.350626389725019, 29.468922184630255, 28.71735137747704, 78.8868535524408,
    50.16950217496375, 59.56764743604155, 19.020429484306277, 61.335572740454325,
    47.14515893344343, 141.75135923307818, 94.60620029962553, 85.95794070476977,
    34.07300576173523, 68.06189371516912, 637.9862061297893, 1817.2394155466848,
    1179.2532094169414, 1127.2743149568837, 431.51034284549826, 909.1060025135899,
    3.7744320927984534, 13.673707104881585, 9.899275012083132, 9.620186927095652,
    3.8426065581251856, 9.96950217496375, 3.305461575640406, 5.483035282745288,
    2.1775737071048815, 4.215114560306594, 0.8206087101824266, 3.732092798453359,
    109.16732721121315, 179.5570323827936, 70.38970517158047, 136.0978305229613,
    27.027545809538527, 119.16713388110198, 1.2721433060967857, 2.4614001837260617,
    1.1892568776289631, 1.9844483610247092, 0.4691462290494881, 2.100143582306204,
    1.4829869502174964, 1.9899951667472209, 0.5070082165297245, 1.7956250375970633,
    0.2056251946617602, 1.745867568873852, 0.05650072498791687, 2.3618656355727405,
    2.3053649105848235, 1.2829636137262992, 0.9995555685850794, 1.5150314161430642,
    0.7731271145480909, 7.4648139197680035, 6.691686805219913, 4.010677272036105,
    2.612307566507693, 3.303528274528758, 0.2739487675205413, 5.889753504108265,
    5.615804736587724, 2.3244356612494683, 2.1426251769710905, 1.4464475592073465,
    4.739246012566457, 14.578395360077332, 9.839149347510874, 9.413701584608935,
    3.537059747455868, 8.550410826486225, 0.008119864668922184, 0.43286611889801835,
    0.4247462542290962, 0.16687837041055423, 0.17139889490813626, 0.10898985016916385,
    0.06283228612856452, 2.6573707104881583, 2.594538424359594, 1.219602938224228,
    1.0596390454742999, 1.1120831319478008, 0.14842919284678588, 3.8473658772353794,
    3.6989366843885936, 1.4541605082183982, 1.3862277372859781, 0.8018849685838569,
    0.03542774287095215, 2.4474625422909617, 2.4120347994200095, 0.7745217539010397,
    0.9145812330586208, 0.3198646689221846, 1.552730787820203, 6.910681488641856,
    5.357950700821653, 3.615163570754227, 1.9072256165179793, 2.6702271628806185,
    14.608536589568727, 34.83222477045747, 20.223688180890715, 22.47901710732293,
    7.17674504190757, 18.641837024143584, 0.009066988883518605, 0.9185191396809959,
    0.9094521507974755, 0.4368550481994018, 0.38905942883427047, 0.48375558240695804,
    0.0012985909686158003, 0.21708593995837092, 0.21578734898975546, 0.08167977375391729,
    0.08155386250705281, 0.06036340747305611, 116.32010633156113, 217.5905751570807,
    101.27046882551957, 162.87154200548844, 41.920624308665566, 136.4664572257129,
)
_MAGPIE_STDS = (
    16.35781741152948, 20.189540126474725, 20.516298414514758, 16.816765336550194,
    7.966591328222124, 22.270791076753067, 21.802116630115243, 12.804546460581966,
    24.756629388687983, 13.930306216047477, 10.214535652334533, 27.801612936980938,
    39.74031558353379, 54.269739685575814, 53.70466607591569, 42.852342044453444,
    20.78341194242935, 56.28783510219931, 563.8004405882157, 732.0722574247563,
    736.2122907972664, 606.351603075103, 272.62646060896407, 810.6156779688841,
    3.0362262146833428, 3.2075174256751606, 4.0633818989245665, 2.9738244769894764,
    1.7805586029644034, 5.643243225066782, 1.1994336274579853, 0.8939013979423364,
    1.2297581799896975, 1.0066021334519983, 0.49129747526397105, 1.4159553146070951,
    31.754756468836774, 28.054241463256226, 38.16336054795611, 25.83485338379922,
    15.388376641904662, 39.67137484594156, 0.31988340032011076, 0.6833658037760536,
    0.7464197945553585, 0.4881349085029781, 0.3176591553643101, 0.8601748146737138,
    0.5864801661863596, 0.10048913710210677, 0.5836289120986499, 0.2811748167435902,
    0.2468696279341553, 0.5007375747433073, 0.37237566669029587, 1.7235989187720187,
    1.7058836077743305, 1.1558859351244697, 0.7677842566598179, 1.9203550253462733,
    2.1289400248865182, 3.5326064169848332, 3.708508303762512, 2.8709941136664567,
    1.6110681295257014, 4.310192504023775, 1.6644182118209292, 6.228287671164213,
    6.1200848808512305, 3.1986202996110302, 2.4492978142248867, 4.030497343977163,
    3.662028270049814, 6.8192125550358345, 6.614243783887738, 4.334987449618594,
    2.568319610320196, 5.9494890200106925, 0.08974370432893491, 0.4954725441517777,
    0.494304434278516, 0.2309340434963803, 0.2072873961103969, 0.31162647950590266,
    0.39805702757060923, 1.8111691089355726, 1.7973395144505941, 0.9486995373104102,
    0.7538753151875139, 1.5233177017753785, 0.7952606701778913, 3.711190225170556,
    3.638721437232604, 1.7171165424006831, 1.4307904413917036, 2.1047820817622904,
    0.49193748323158065, 4.064840532426175, 4.035286619587313, 1.4858577214526643,
    1.5799117659864677, 1.6130080156145745, 1.555249156140194, 4.776932951077492,
    4.569790780459629, 2.224617778217326, 1.7217507416156546, 2.5969733650703763,
    7.215001918238936, 19.252513469778584, 18.775394044177858, 9.447222764774764,
    6.7467931836261235, 11.106825644766616, 0.27206794253092115, 1.6449321034573106,
    1.6236282792648686, 0.8506917026741503, 0.7020945355184042, 1.2281895279350408,
    0.04134438177238229, 0.5508855867341717, 0.5486095551438679, 0.24239297524046477,
    0.2127779137935831, 0.3036750942874694, 80.06063945615361, 21.345794811194104,
    80.16475677581042, 52.58533928558554, 35.40836791039412, 85.980205895116,
)


# --------------------------------------------------------------------------- results


@dataclasses.dataclass(frozen=True)
class MatchResult:
    """CSP match rate and RMSE of predictions against their targets.

    Attributes:
        match_rate: fraction of the ``n`` targets matched, in [0, 1].
        rmse: mean over matched targets of the normalised RMS displacement (the first
            element of ``StructureMatcher.get_rms_dist``, divided by ``(V/N)^{1/3}``, so
            dimensionless); NaN when nothing matched.
        matched: ``[n]`` bool, target ``i`` matched (by any of its ``k`` samples).
        rms: ``[n]`` the RMS of target ``i`` (the smallest over its matching samples);
            NaN where unmatched.
        sample_rms: ``[n, k]`` the RMS of every sample; NaN where it did not match or
            was not compared.
        valid: ``[n, k]`` bool, sample passed the validity filter (all True when the
            filter is off).
        n: number of targets.
        k: samples per target (1 for :func:`match_rate`).
    """

    match_rate: float
    rmse: float
    matched: np.ndarray
    rms: np.ndarray
    sample_rms: np.ndarray
    valid: np.ndarray
    n: int
    k: int


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


# --------------------------------------------------------------------------- helpers


def _processes(processes: int | None) -> int:
    if processes is None:
        return os.cpu_count() or 1
    check_int("processes", processes)
    return processes


def _pmap(fn: Callable[[Any], Any], items: list, processes: int | None) -> list:
    """``[fn(x) for x in items]``, in a process pool when ``processes > 1``."""
    n = _processes(processes)
    if n == 1 or len(items) <= 1:
        return [fn(x) for x in items]
    from concurrent.futures import ProcessPoolExecutor

    workers = min(n, len(items))
    chunk = max(1, math.ceil(len(items) / (8 * workers)))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items, chunksize=chunk))


def _check_structures(name: str, structures: Sequence, *, allow_none: bool = False) -> None:
    from pymatgen.core import Structure

    if isinstance(structures, Structure) or not isinstance(structures, Sequence):
        raise DataError(f"{name} must be a list of pymatgen Structure, got "
                        f"{type(structures).__name__}")
    for i, s in enumerate(structures):
        if s is None and allow_none:
            continue
        if not isinstance(s, Structure):
            what = "a pymatgen Structure or None" if allow_none else "a pymatgen Structure"
            raise DataError(f"{name}[{i}] must be {what}, got {type(s).__name__}")


def _payload(structure) -> dict | None:
    """What travels to a worker process: the structure's dict (``None`` stays ``None``)."""
    return None if structure is None else structure.as_dict()


def _structure(payload: dict):
    from pymatgen.core import Structure

    return Structure.from_dict(payload)


@lru_cache(maxsize=8)
def _matcher(stol: float, ltol: float, angle_tol: float):
    from pymatgen.analysis.structure_matcher import StructureMatcher

    return StructureMatcher(stol=stol, ltol=ltol, angle_tol=angle_tol)


def _is_valid(structure) -> bool:
    return structure_valid(structure) and composition_valid(structure)


def _rms(pred, target, tolerances: tuple[float, float, float]) -> float:
    """Normalised RMS of a matching pair, NaN when StructureMatcher finds no match."""
    try:
        out = _matcher(*tolerances).get_rms_dist(pred, target)
    except Exception:  # CDVAE and DiffCSP count a matcher exception as "no match"
        return math.nan
    return math.nan if out is None else float(out[0])


def _match_task(task: tuple) -> tuple[bool, float]:
    """Worker: (is the prediction valid, its RMS or NaN)."""
    pred_d, target_d, check_pred, check_target, tolerances = task
    if pred_d is None:
        return False, math.nan
    pred, target = _structure(pred_d), _structure(target_d)
    if check_pred and not _is_valid(pred):
        return False, math.nan
    if check_target and not _is_valid(target):
        return True, math.nan
    return True, _rms(pred, target, tolerances)


def _tolerances(stol: float, ltol: float, angle_tol: float) -> tuple[float, float, float]:
    check_positive("stol", stol)
    check_positive("ltol", ltol)
    check_positive("angle_tol", angle_tol)
    return float(stol), float(ltol), float(angle_tol)


def _summarise(sample_rms: np.ndarray, valid: np.ndarray) -> MatchResult:
    n, k = sample_rms.shape
    matched = ~np.isnan(sample_rms).all(axis=1)
    rms = np.full(n, np.nan)
    if matched.any():
        rms[matched] = np.nanmin(sample_rms[matched], axis=1)
    rate = float(matched.mean()) if n else math.nan
    rmse = float(rms[matched].mean()) if matched.any() else math.nan
    return MatchResult(match_rate=rate, rmse=rmse, matched=matched, rms=rms,
                       sample_rms=sample_rms, valid=valid, n=n, k=k)


# --------------------------------------------------------------------------- matching


def match_rate(
    predictions: Sequence,
    targets: Sequence,
    *,
    require_valid: bool = True,
    processes: int | None = None,
    stol: float = STOL,
    ltol: float = LTOL,
    angle_tol: float = ANGLE_TOL,
) -> MatchResult:
    """CSP match rate and RMSE of one prediction per target (CDVAE; DiffCSP "one sample").

    Prediction ``i`` matches target ``i`` when it is valid and
    ``StructureMatcher(stol, ltol, angle_tol).get_rms_dist(pred, target)`` is not
    ``None``; the match rate is the fraction of matched targets and

    .. math:: \\mathrm{RMSE} = \\frac{1}{|M|}\\sum_{i\\in M} \\mathrm{rms}_i,

    the mean over matched pairs of the RMS displacement normalised by
    :math:`(V/N)^{1/3}` (dimensionless). With ``require_valid`` (the published
    protocol) a pair is compared only when the prediction *and* the target pass
    :func:`structure_valid` and :func:`composition_valid`, as in DiffCSP's ``RecEval``
    (CDVAE's checks the prediction only; in CSP the two agree, because a prediction
    carries its target's composition and real targets are structurally valid). This
    is why 20-sample match rates on perov-5 stop at 98.60%: compositions that fail
    SMACT can never match. A ``None`` prediction (a failed sample) counts as
    unmatched, and so does a StructureMatcher exception, as in both codes.

    Not reproduced: CDVAE also marks a crystal invalid when its CrystalNN fingerprint
    raises; that costs about 85 ms per 5-atom crystal and is left to :func:`coverage`.

    Args:
        predictions: ``n`` pymatgen ``Structure`` (or ``None``), one per target.
        targets: ``n`` pymatgen ``Structure``, the ground truth.
        require_valid: apply the validity filter above (``False``: raw matcher only).
        processes: worker processes (``None``: ``os.cpu_count()``; ``1``: inline).
            One comparison of 5-atom cells costs about 48 ms.
        stol, ltol, angle_tol: StructureMatcher tolerances (defaults 0.5, 0.3, 10
            degrees, those of CDVAE and DiffCSP).

    Returns:
        A :class:`MatchResult` with ``k = 1``.

    Raises:
        DataError: lists of different lengths, or an element that is not a Structure.
        ConfigError: a bad ``processes`` or tolerance.

    Example (``truth``: a list of Structure; see ``bench/crystal_metrics.py``)::

        >>> from labkit.atoms.baselines import perovskite_rule  # doctest: +SKIP
        >>> res = match_rate(perovskite_rule(truth), truth)  # doctest: +SKIP
        >>> round(res.match_rate, 4), round(res.rmse, 4)  # doctest: +SKIP
        (0.5009, 0.07)
    """
    _check_structures("predictions", predictions, allow_none=True)
    _check_structures("targets", targets)
    if len(predictions) != len(targets):
        raise DataError(f"predictions and targets must have the same length, got "
                        f"{len(predictions)} predictions and {len(targets)} targets")
    tol = _tolerances(stol, ltol, angle_tol)
    tasks = [(_payload(p), _payload(t), require_valid, require_valid, tol)
             for p, t in zip(predictions, targets, strict=True)]
    out = _pmap(_match_task, tasks, processes)
    valid = np.array([v for v, _ in out], dtype=bool).reshape(-1, 1)
    sample_rms = np.array([r for _, r in out], dtype=float).reshape(-1, 1)
    return _summarise(sample_rms, valid)


def match_rate_best_of_k(
    samples: Sequence[Sequence],
    targets: Sequence,
    *,
    k: int | None = None,
    require_valid: bool = True,
    processes: int | None = None,
    stol: float = STOL,
    ltol: float = LTOL,
    angle_tol: float = ANGLE_TOL,
) -> MatchResult:
    """Best-of-``k`` CSP match rate and RMSE (DiffCSP's "twenty samples" protocol).

    Target ``i`` is matched when any of its first ``k`` samples matches it (each
    sample judged as in :func:`match_rate`, the validity filter applied to the sample
    only, as in DiffCSP's ``RecEvalBatch``); its RMS is the smallest among its matching
    samples, and the RMSE is the mean of those over matched targets. DiffCSP reports
    perov-5 98.60% / 0.0128 at ``k = 20`` (Jiao et al. 2023, table 1).

    Args:
        samples: ``n`` sequences, ``samples[i]`` the samples (``Structure`` or
            ``None``) drawn for target ``i``; all of the same length ``K``.
        targets: ``n`` ground-truth ``Structure``.
        k: use the first ``k`` samples of each target (``None``: all ``K``), so that
            one set of samples gives the curve over ``k``.
        require_valid, processes, stol, ltol, angle_tol: as in :func:`match_rate`.

    Returns:
        A :class:`MatchResult` with ``sample_rms`` and ``valid`` of shape ``[n, k]``.

    Raises:
        ConfigError: ``k < 1`` or not an int; a bad ``processes`` or tolerance.
        DataError: ``samples`` and ``targets`` of different lengths, ragged samples,
            ``k`` larger than the samples given, or an element that is not a Structure.
    """
    _check_structures("targets", targets)
    if not isinstance(samples, Sequence) or len(samples) != len(targets):
        got = len(samples) if isinstance(samples, Sequence) else type(samples).__name__
        raise DataError(f"samples must hold one sequence per target ({len(targets)}), "
                        f"got {got}")
    sizes = {len(s) if isinstance(s, Sequence) else -1 for s in samples}
    if -1 in sizes or len(sizes) > 1:
        raise DataError(f"samples[i] must be sequences of one common length, got lengths "
                        f"{sorted(sizes)} (-1: not a sequence)")
    available = sizes.pop() if sizes else 0
    if k is None:
        k = available
        if k < 1:
            raise ConfigError(f"k must be an int >= 1, got {k!r} samples per target")
    check_int("k", k)
    if k > available:
        raise DataError(f"k = {k} exceeds the {available} samples given per target")
    for i, row in enumerate(samples):
        _check_structures(f"samples[{i}]", list(row[:k]), allow_none=True)
    tol = _tolerances(stol, ltol, angle_tol)
    tasks = [(_payload(row[j]), _payload(t), require_valid, False, tol)
             for row, t in zip(samples, targets, strict=True) for j in range(k)]
    out = _pmap(_match_task, tasks, processes)
    n = len(targets)
    valid = np.array([v for v, _ in out], dtype=bool).reshape(n, k)
    sample_rms = np.array([r for _, r in out], dtype=float).reshape(n, k)
    return _summarise(sample_rms, valid)


# --------------------------------------------------------------------------- validity


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


def _composition(obj):
    from pymatgen.core import Composition, Structure

    if isinstance(obj, Structure):
        return obj.composition
    if isinstance(obj, Composition):
        return obj
    if isinstance(obj, str):
        try:
            return Composition(obj)
        except Exception as exc:
            raise DataError(f"could not read the formula {obj!r}: {exc}") from exc
    raise DataError(f"expected a Structure, Composition or formula, got {type(obj).__name__}")


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


# --------------------------------------------------------------------------- coverage


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
    scaled = (raw - np.asarray(_MAGPIE_MEANS)) / np.asarray(_MAGPIE_STDS)
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
        processes: worker processes (fingerprints cost about 85 ms per 5-atom cell).

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


# --------------------------------------------------------------------------- properties


def space_group_numbers(structures: Sequence, *, symprec: float = SYMPREC) -> np.ndarray:
    """International space-group number (1-230) of each structure, found by spglib.

    Args:
        structures: pymatgen ``Structure`` list.
        symprec: spglib's distance tolerance in Angstrom (default 0.1, pymatgen's
            ``SpacegroupAnalyzer`` default and the usual choice for generated crystals).

    Returns:
        ``[n]`` int array; 0 where spglib finds no symmetry dataset.
    """
    import warnings

    import spglib

    check_positive("symprec", symprec)
    _check_structures("structures", structures)
    out = np.zeros(len(structures), dtype=int)
    for i, s in enumerate(structures):
        cell = (s.lattice.matrix, s.frac_coords, [site.specie.Z for site in s])
        try:
            with warnings.catch_warnings():  # spglib 2.5's notice on its error handling
                warnings.simplefilter("ignore", DeprecationWarning)
                data = spglib.get_symmetry_dataset(cell, symprec=symprec)
        except Exception:  # newer spglib raises where older versions returned None
            data = None
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
