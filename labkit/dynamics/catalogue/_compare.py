"""labkit's recomputed invariants against the values dysts stores, with reasons.

dysts stores, per system, ``maximum_lyapunov_estimated`` and a spectrum
``lyapunov_spectrum_estimated`` whose first entry is often far from it (more than 20%
in most systems), and a ``kaplan_yorke_dimension``. :func:`compare_with_dysts` puts
each row of an :class:`~labkit.dynamics.InvariantsTable` beside them and, for every
disagreement, lists reasons that are *checked*, never guessed (see :data:`REASONS`).
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from labkit.dynamics._tables import markdown_table
from labkit.dynamics.catalogue._table import InvariantsRow
from labkit.dynamics.catalogue._table_file import InvariantsTable, invariants_table
from labkit.errors import ConfigError

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["DEFAULT_TOLERANCE", "REASONS", "STDERR_RTOL", "Comparison", "ComparisonRow",
           "compare_with_dysts"]

#: Agreement: relative difference ``|ours - dysts| / |dysts|`` at most this (dimensionless).
DEFAULT_TOLERANCE = 0.2
#: Our largest exponent counts as sharp when its standard error is at most this fraction
#: of its magnitude (dimensionless).
STDERR_RTOL = 0.05
#: A largest exponent within this many standard errors of zero is consistent with zero.
ZERO_SIGMAS = 3.0

#: Reason codes of a disagreement and what each one has checked.
REASONS = {
    "ours_diverged": "our run diverged (no exponents)",
    "ours_failed": "our run failed (no exponents)",
    "dysts_missing": "dysts stores no maximum_lyapunov_estimated for this system",
    "dysts_self_inconsistent": "dysts' own maximum_lyapunov_estimated and first entry of "
                               "lyapunov_spectrum_estimated differ by more than the tolerance",
    "matches_dysts_spectrum": "ours agrees within the tolerance with the first entry of "
                              "dysts' lyapunov_spectrum_estimated",
    "ours_verified": "our value has a small error bar and passes the divergence-sum check "
                     "and (autonomous flows) the zero-exponent check",
    "ours_large_error_bar": "our standard error exceeds STDERR_RTOL of our value",
    "ours_divergence_check_failed": "our exponents' sum misses the time-averaged divergence",
    "ours_zero_exponent_failed": "our exponent closest to zero is not zero within its error "
                                 "bar and finite-time bias (autonomous flow)",
    "nonautonomous": "the field depends on time, so no zero exponent is expected (the "
                     "zero-exponent check does not apply)",
    "ours_consistent_with_zero": "our largest exponent is within ZERO_SIGMAS standard "
                                 "errors of zero (not chaotic from these initial conditions)",
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class ComparisonRow:
    """One system: our largest exponent and Kaplan-Yorke dimension beside dysts'.

    Relative differences are ``|ours - dysts| / |dysts|`` (NaN when either is missing).

    Attributes:
        name, kind, status, nonautonomous: from the table row.
        ours, ours_stderr: our largest exponent and its standard error.
        dysts_max: dysts' ``maximum_lyapunov_estimated``.
        dysts_spectrum_first: the first entry of dysts' ``lyapunov_spectrum_estimated``.
        rel_diff_max, rel_diff_spectrum: ours against each of them.
        dysts_self_rel_diff: dysts' two values against each other (relative to the first).
        ours_kaplan_yorke, ours_kaplan_yorke_stderr, dysts_kaplan_yorke,
        rel_diff_kaplan_yorke: the same for the Kaplan-Yorke dimension.
        agree: ``rel_diff_max <= tolerance`` (dysts' headline value).
        agree_spectrum, agree_kaplan_yorke: the same against the other two values.
        reasons: codes of :data:`REASONS`, for a disagreement (empty when ``agree``).
    """

    name: str
    kind: str
    status: str
    nonautonomous: bool
    ours: float
    ours_stderr: float
    dysts_max: float
    dysts_spectrum_first: float
    rel_diff_max: float
    rel_diff_spectrum: float
    dysts_self_rel_diff: float
    ours_kaplan_yorke: float
    ours_kaplan_yorke_stderr: float
    dysts_kaplan_yorke: float
    rel_diff_kaplan_yorke: float
    agree: bool
    agree_spectrum: bool
    agree_kaplan_yorke: bool
    reasons: tuple[str, ...]

    def explain(self) -> str:
        """The reasons in words, joined by semicolons."""
        return "; ".join(REASONS[r] for r in self.reasons)


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Every row of :func:`compare_with_dysts`, with the tolerance used."""

    rows: tuple[ComparisonRow, ...]
    tolerance: float

    def __getitem__(self, name: str) -> ComparisonRow:
        for row in self.rows:
            if row.name.lower() == str(name).lower():
                return row
        raise ConfigError(f"no system {name!r} in the comparison ({len(self.rows)} rows)")

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def n_agree(self) -> int:
        """Systems whose largest exponent agrees with dysts' ``maximum_lyapunov_estimated``."""
        return sum(r.agree for r in self.rows)

    @property
    def n_compared(self) -> int:
        """Systems with both our value and dysts' (the possible agreements)."""
        return sum(math.isfinite(r.ours) and math.isfinite(r.dysts_max) for r in self.rows)

    def disagreements(self) -> tuple[ComparisonRow, ...]:
        """The rows that do not agree."""
        return tuple(r for r in self.rows if not r.agree)

    def reason_counts(self) -> dict[str, int]:
        """How many disagreements carry each reason, most frequent first."""
        return dict(Counter(code for r in self.disagreements() for code in r.reasons)
                    .most_common())

    def records(self) -> list[dict[str, Any]]:
        """The rows as plain dicts (``reasons`` joined by commas)."""
        return [dataclasses.asdict(r) | {"reasons": ",".join(r.reasons)} for r in self.rows]

    def summary(self) -> str:
        """How many systems agree, then a Markdown table: ours (with its standard error)
        beside dysts' two stored values, the relative difference, and the reasons of each
        disagreement."""
        head = (f"{self.n_agree} of {self.n_compared} systems with both values agree "
                f"within {self.tolerance:g}")
        return head + "\n\n" + markdown_table(self.records(), (
            ("name", "system", ""), ("status", "status", ""), ("ours", "labkit", ".4g"),
            ("ours_stderr", "stderr", ".2g"), ("dysts_max", "dysts max", ".4g"),
            ("dysts_spectrum_first", "dysts spectrum[0]", ".4g"),
            ("rel_diff_max", "rel. diff", ".2g"), ("agree", "agree", ""),
            ("reasons", "reasons", "")))

    def to_xarray(self) -> xr.Dataset:
        """The rows as an :class:`xarray.Dataset` on a ``system`` axis."""
        import numpy as np
        import xarray as xr

        records = self.records()
        data = {k: ("system", np.asarray([r[k] for r in records]))
                for k in records[0] if k != "name"} if records else {}
        return xr.Dataset(data, coords={"system": [r["name"] for r in records]},
                          attrs={"tolerance": self.tolerance})


def _number(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return math.nan


def _rel(ours: float, ref: float) -> float:
    if not (math.isfinite(ours) and math.isfinite(ref)) or ref == 0:
        return math.nan
    return abs(ours - ref) / abs(ref)


def _within(rel: float, tolerance: float) -> bool:
    return math.isfinite(rel) and rel <= tolerance


def _reasons(row: InvariantsRow, ours: float, self_rel: float, rel_spec: float,
             dysts_max: float, tolerance: float) -> tuple[str, ...]:
    if row.status != "ok":
        return ("ours_diverged" if row.status == "diverged" else "ours_failed",)
    found = []
    if not math.isfinite(dysts_max):
        found.append("dysts_missing")
    if math.isfinite(self_rel) and self_rel > tolerance:
        found.append("dysts_self_inconsistent")
    if _within(rel_spec, tolerance):
        found.append("matches_dysts_spectrum")
    se = row.max_lyapunov_stderr
    sharp = math.isfinite(se) and se <= STDERR_RTOL * abs(ours)
    if not sharp:
        found.append("ours_large_error_bar")
    if row.divergence_ok is False:
        found.append("ours_divergence_check_failed")
    if row.zero_ok is False:
        found.append("ours_zero_exponent_failed")
    if row.kind == "flow" and row.nonautonomous:
        found.append("nonautonomous")
    if sharp and row.divergence_ok and row.zero_ok is not False:
        found.append("ours_verified")
    if math.isfinite(se) and abs(ours) <= ZERO_SIGMAS * se:
        found.append("ours_consistent_with_zero")
    return tuple(found)


def compare_with_dysts(
    table: InvariantsTable | None = None,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    reference: Mapping[str, Mapping[str, Any]] | None = None,
) -> Comparison:
    """Compare a table's largest exponents and Kaplan-Yorke dimensions with dysts'.

    Args:
        table: defaults to the shipped :func:`~labkit.dynamics.invariants_table`.
        tolerance: largest relative difference that counts as agreement.
        reference: system name -> dysts-style values (``maximum_lyapunov_estimated``,
            ``lyapunov_spectrum_estimated``, ``kaplan_yorke_dimension``); default each
            system's :attr:`System.reference <labkit.dynamics.System.reference>`.

    Returns:
        A :class:`Comparison`, one row per table row in table order.

    Raises:
        ConfigError: for a tolerance that is not a finite number > 0.

    Example::

        comparison = compare_with_dysts(tolerance=0.2)
        comparison.n_agree, comparison.reason_counts()
    """
    if not (isinstance(tolerance, int | float) and not isinstance(tolerance, bool)
            and math.isfinite(tolerance) and tolerance > 0):
        raise ConfigError(f"tolerance must be a finite number > 0, got {tolerance!r}")
    table = invariants_table() if table is None else table
    if not isinstance(table, InvariantsTable):
        raise ConfigError(f"table must be an InvariantsTable, got {type(table).__name__}")
    rows = []
    for name, row in table.rows.items():
        ref = _reference(name) if reference is None else reference.get(name, {})
        spectrum = ref.get("lyapunov_spectrum_estimated") or []
        dysts_max = _number(ref.get("maximum_lyapunov_estimated"))
        dysts_first = _number(spectrum[0]) if spectrum else math.nan
        dysts_ky = _number(ref.get("kaplan_yorke_dimension"))
        ours = row.max_lyapunov if row.status == "ok" else math.nan
        ours_ky = row.kaplan_yorke if row.status == "ok" else math.nan
        rel_max, rel_spec = _rel(ours, dysts_max), _rel(ours, dysts_first)
        self_rel = _rel(dysts_first, dysts_max)
        agree = _within(rel_max, tolerance)
        reasons = () if agree else _reasons(row, ours, self_rel, rel_spec, dysts_max, tolerance)
        rows.append(ComparisonRow(
            name=name, kind=row.kind, status=row.status, nonautonomous=row.nonautonomous,
            ours=ours, ours_stderr=row.max_lyapunov_stderr if row.status == "ok" else math.nan,
            dysts_max=dysts_max, dysts_spectrum_first=dysts_first, rel_diff_max=rel_max,
            rel_diff_spectrum=rel_spec, dysts_self_rel_diff=self_rel,
            ours_kaplan_yorke=ours_ky,
            ours_kaplan_yorke_stderr=row.kaplan_yorke_stderr if row.status == "ok" else math.nan,
            dysts_kaplan_yorke=dysts_ky, rel_diff_kaplan_yorke=_rel(ours_ky, dysts_ky),
            agree=agree, agree_spectrum=_within(rel_spec, tolerance),
            agree_kaplan_yorke=_within(_rel(ours_ky, dysts_ky), tolerance), reasons=reasons,
        ))
    return Comparison(rows=tuple(rows), tolerance=float(tolerance))


def _reference(name: str) -> Mapping[str, Any]:
    """dysts' stored values for ``name`` (empty for a system labkit cannot load)."""
    from labkit.dynamics.catalogue._catalogue import get_system

    try:
        return get_system(name).reference
    except ConfigError:
        return {}
