"""Every notebook under notebooks/ runs with its small defaults (papermill, via labkit.reports),
has a parameters cell, is committed without outputs and imports only public labkit names;
and the values it records (``labkit.reports.record``) agree with references: published or
exact values, the shipped invariants table, or trivial baselines (table ``EXPECTED``)."""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import nbformat
import pytest

from labkit.reports import notebook_parameters, run_notebook

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (REPO / "notebooks").rglob("*.ipynb")
                   if ".ipynb_checkpoints" not in p.parts)
IDS = [p.relative_to(REPO / "notebooks").as_posix() for p in NOTEBOOKS]


# --- references ---------------------------------------------------------------------------

#: Lorenz-63 (sigma = 10, rho = 28, beta = 8/3): largest Lyapunov exponent, 1/time unit.
#: J. C. Sprott, Chaos and Time-Series Analysis, Oxford University Press (2003), table A.1.
LORENZ_LAMBDA1 = 0.9056
#: Exact: the exponents of a flow add up to the mean divergence, -(sigma + 1 + beta) =
#: -41/3 for Lorenz-63 (constant divergence), 1/time unit.
LORENZ_SUM = -(10.0 + 1.0 + 8.0 / 3.0)
#: Exact: one exponent of a bounded, non-stationary flow is 0 (along the flow).
#: Kaplan-Yorke dimension from the two: 2 + lambda1 / |lambda3| = 2.0621 (Sprott 2003: 2.0621).
LORENZ_KAPLAN_YORKE = 2.0 + LORENZ_LAMBDA1 / (LORENZ_LAMBDA1 - LORENZ_SUM)

#: Relative tolerance on a largest exponent from the small defaults (tour: 8 ICs, T = 20;
#: zoo: 4 ICs, 10 periods; a separation fit over t in [2, 16]).
LYAPUNOV_REL = 0.10
#: Absolute tolerance on the zero exponent at those averaging times (it converges like 1/T),
#: 1/time unit.
ZERO_EXPONENT_ABS = 0.15
#: Absolute tolerance on the spectrum's sum, 1/time unit: RK4 at dt = 0.01 keeps it to 1e-4;
#: dysts' rounded beta = 2.667 moves the exact value by 3.3e-4.
SPECTRUM_SUM_ABS = 2e-3
#: Absolute tolerance on the Kaplan-Yorke dimension: 10% on lambda1 and 0.15 on lambda2
#: move it by at most about 0.02 at |lambda3| = 14.6.
KAPLAN_YORKE_ABS = 0.02

#: CSP baselines on the perov-5 official validation split (3,787 crystals; measured by
#: bench/crystal_metrics.py, recorded in bench/RESULTS.md and docs/crystals.md):
#: StructureMatcher match rate of the perovskite rule and of random coordinates in the
#: true cell.
PEROVSKITE_RULE_RATE = 0.5009
RANDOM_COORDS_RATE = 0.3222
#: Held-out crystals the tour scores: benchmark_splits("perov_5", "sample") keeps 40 of the
#: 400 shipped crystals for testing.
TOUR_HELD_OUT = 40

#: LieGAN's verdict threshold on the cosine to the true generators (exact reference: 1);
#: LieGANConfig.threshold.
COSINE_THRESHOLD = 0.99
#: Float64 rounding for an exactly equivariant layer or frame average (reference: 0).
FLOAT64_EXACT = 1e-10


def binomial_3sigma(p: float, n: int) -> float:
    """Three standard errors of a rate ``p`` measured on ``n`` targets."""
    return 3.0 * math.sqrt(p * (1.0 - p) / n)


# --- checks on recorded values ------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Recorded:
    """A reference that is another value recorded by the same run, times ``factor``."""

    name: str
    factor: float = 1.0


@dataclasses.dataclass(frozen=True)
class Derived:
    """A reference computed at check time from the run's parameters (``what`` says how)."""

    what: str
    compute: Callable[[Mapping[str, Any]], Any]


Reference = float | int | str | bool | Recorded | Derived


@dataclasses.dataclass(frozen=True)
class Check:
    """``record`` (its ``pick``-th element, or the sum of its elements with ``pick="sum"``)
    compared with ``ref`` by ``op``: ``"=="`` (same type and value), ``"<"``, ``"<="``,
    ``">"``, ``"abs"`` (within ``tol``) or ``"rel"`` (within ``tol`` times ``|ref|``)."""

    record: str
    op: str
    ref: Reference
    tol: float = 0.0
    pick: int | str | None = None

    def __post_init__(self):
        assert self.op in ("==", "<", "<=", ">", "abs", "rel"), self.op

    @property
    def label(self) -> str:
        name = {None: self.record, "sum": f"sum({self.record})"}.get(self.pick, f"{self.record}[{self.pick}]")
        if isinstance(self.ref, Derived):
            ref = self.ref.what
        elif isinstance(self.ref, Recorded):
            ref = f"{self.ref.factor:g} * {self.ref.name}" if self.ref.factor != 1 else self.ref.name
        else:
            ref = f"{self.ref:.6g}" if isinstance(self.ref, float) else repr(self.ref)
        tol = {"abs": f" +- {self.tol:.3g}", "rel": f" +- {self.tol:.0%}"}.get(self.op, "")
        op = {"abs": "==", "rel": "=="}.get(self.op, self.op)
        return f"{name} {op} {ref}{tol}"

    def reference(self, records: Mapping[str, Any], parameters: Mapping[str, Any]) -> Any:
        if isinstance(self.ref, Recorded):
            return records[self.ref.name] * self.ref.factor
        if isinstance(self.ref, Derived):
            return self.ref.compute(parameters)
        return self.ref

    def problem(self, records: Mapping[str, Any], parameters: Mapping[str, Any]) -> str | None:
        """None when the check holds, else a message with the value and the reference."""
        if self.record not in records:
            return f"{self.label}: {self.record!r} was not recorded"
        value = records[self.record]
        if self.pick == "sum":
            value = math.fsum(value)
        elif self.pick is not None:
            value = value[self.pick]
        try:
            ref = self.reference(records, parameters)
        except KeyError as missing:
            return f"{self.label}: the reference {missing} was not recorded"
        if self.op == "==":
            ok = type(value) is type(ref) and value == ref
        elif self.op == "<":
            ok = value < ref
        elif self.op == "<=":
            ok = value <= ref
        elif self.op == ">":
            ok = value > ref
        else:
            tol = self.tol * abs(ref) if self.op == "rel" else self.tol
            ok = abs(value - ref) <= tol
        return None if ok else f"{self.label}: got {value!r} (reference {ref!r})"

    def wrong(self, ref: Any) -> Any:
        """A value this check must reject, given its reference's value."""
        if self.op == "==":
            return (not ref) if isinstance(ref, bool) else f"not {ref}" if isinstance(ref, str) else ref + 1
        if self.op in ("<", "<="):
            return ref + abs(ref) + 1
        if self.op == ">":
            return ref - abs(ref) - 1
        return ref + 2 * (self.tol * abs(ref) if self.op == "rel" else self.tol)


def near(record: str, ref: Reference, *, abs: float | None = None, rel: float | None = None,
         pick: int | str | None = None) -> Check:
    assert (abs is None) != (rel is None)
    return Check(record, "abs" if rel is None else "rel", ref, abs if rel is None else rel, pick)


def equal(record: str, ref: Reference) -> Check:
    return Check(record, "==", ref)


def below(record: str, bound: Reference, *, pick: int | str | None = None) -> Check:
    return Check(record, "<", bound, pick=pick)


def at_most(record: str, bound: Reference) -> Check:
    return Check(record, "<=", bound)


def above(record: str, bound: Reference, *, pick: int | str | None = None) -> Check:
    return Check(record, ">", bound, pick=pick)


@functools.cache
def _shipped_invariants(tolerance: float) -> dict[str, Any]:
    """What notebooks/dynamics/05 must find in the table shipped with labkit."""
    from labkit.dynamics import compare_with_dysts, invariants_table

    table = invariants_table()
    comparison = compare_with_dysts(table, tolerance=tolerance)
    return {"n_agree": comparison.n_agree, "n_compared": comparison.n_compared,
            "n_ok": table.status_counts()["ok"], "lorenz_lambda1": table["Lorenz"].max_lyapunov}


def shipped(key: str) -> Derived:
    return Derived(f"the shipped invariants table's {key}",
                   lambda params: _shipped_invariants(float(params["tolerance"]))[key])


def _lorenz_spectrum(record: str = "lyapunov_spectrum", kaplan_yorke: str = "kaplan_yorke") -> list[Check]:
    """The Lorenz-63 spectrum against Sprott (2003) and the exact zero exponent and sum."""
    return [
        near(record, LORENZ_LAMBDA1, rel=LYAPUNOV_REL, pick=0),
        near(record, 0.0, abs=ZERO_EXPONENT_ABS, pick=1),
        near(record, LORENZ_SUM, abs=SPECTRUM_SUM_ABS, pick="sum"),
        near(kaplan_yorke, LORENZ_KAPLAN_YORKE, abs=KAPLAN_YORKE_ABS),
    ]


#: What each notebook's small-defaults run must record. Keys are paths under notebooks/.
EXPECTED: dict[str, list[Check]] = {
    "00_tour.ipynb": [
        # The ensemble's separation grows at the largest exponent (Sprott 2003, 0.9056),
        # whichever beta (8/3 or dysts' 2.667) the catalogue's Lorenz has.
        near("separation_rate", LORENZ_LAMBDA1, rel=LYAPUNOV_REL),
        equal("lyapunov_reference", LORENZ_LAMBDA1),  # the catalogue's cited value
        below("relative_error", LYAPUNOV_REL),
        *_lorenz_spectrum(),
        # so(2) is the symmetry of 2-body orbits (exact): found, cosine at the threshold.
        equal("liegan_two_body_verdict", "symmetry found"),
        above("liegan_two_body_cosine", COSINE_THRESHOLD),
        # perov-5 baselines (bench/RESULTS.md, official validation split), 3 binomial
        # standard errors for 40 held-out crystals; the rule places atoms on ideal sites,
        # so its matches are much tighter than random coordinates' (0.070 against 0.445).
        near("perovskite_baseline_k1_match_rate", PEROVSKITE_RULE_RATE,
             abs=binomial_3sigma(PEROVSKITE_RULE_RATE, TOUR_HELD_OUT)),
        near("random_baseline_k1_match_rate", RANDOM_COORDS_RATE,
             abs=binomial_3sigma(RANDOM_COORDS_RATE, TOUR_HELD_OUT)),
        below("perovskite_baseline_k1_rmse", Recorded("random_baseline_k1_rmse", 0.5)),
    ],
    "atoms/03_crystal_diffusion.ipynb": [
        # Predicting zero noise scores cost_lattice + cost_coord = 2: eps_L ~ N(0, I) and the
        # coordinate score target is normalised to unit second moment (DiffCSP, Jiao et al. 2023).
        below("final_loss", 2.0),
        # The same baselines as the tour, on the n_targets = 24 first held-out crystals.
        near("perovskite_baseline_k1_match_rate", PEROVSKITE_RULE_RATE,
             abs=binomial_3sigma(PEROVSKITE_RULE_RATE, 24)),
        near("random_baseline_k1_match_rate", RANDOM_COORDS_RATE,
             abs=binomial_3sigma(RANDOM_COORDS_RATE, 24)),
        below("perovskite_baseline_k1_rmse", Recorded("random_baseline_k1_rmse", 0.5)),
    ],
    "dynamics/01_attractor_zoo.ipynb": [
        *_lorenz_spectrum(),  # system = "Lorenz"
        # Henon at a = 2.5 (b = 0.3) has no attractor: all 16 starts of that cell escape.
        equal("henon_diverged", 16),
    ],
    "dynamics/04_reconstruction.ipynb": [
        # The clipped shPLRNN's free run is bounded by construction (Hess et al. 2023).
        equal("bounded", True),
        near("lyapunov_true", LORENZ_LAMBDA1, rel=LYAPUNOV_REL),
        # Trivial baselines: a model stuck at a fixed point has D_H = 1 exactly; predicting
        # the mean of the standardised series has a 20-step MSE of its variance, 1. D_stsp
        # is a KL divergence (>= 0), infinite only when the free run leaves the data's grid.
        below("d_h", 1.0),
        below("alrnn_d_h", 1.0),
        below("prediction_error", 1.0),
        above("d_stsp", 0.0),
        below("d_stsp", math.inf),
        # SINDy recovers Lorenz-63's equations from 5%-noise data (Brunton et al. 2016) and
        # an ESN its climate (Pathak et al. 2017): within twice the finite-sample floor
        # measured between two true stretches of the same run.
        below("sindy_d_stsp", Recorded("floor_d_stsp", 2.0)),
        below("sindy_d_h", Recorded("floor_d_h", 2.0)),
        below("echo_state_network_d_stsp", Recorded("floor_d_stsp", 2.0)),
        below("echo_state_network_d_h", Recorded("floor_d_h", 2.0)),
        # An AL-RNN with P ReLUs has 2^P linear subregions, each with at most one fixed point.
        at_most("alrnn_fixed_points", Derived("2^alrnn_relu", lambda p: 2 ** p["alrnn_relu"])),
        at_most("alrnn_regions_visited", Derived("2^alrnn_relu", lambda p: 2 ** p["alrnn_relu"])),
    ],
    "dynamics/05_catalogue_invariants.ipynb": [
        # The notebook reads the table shipped with labkit and compares it with dysts.
        equal("n_ok", shipped("n_ok")),
        equal("n_compared", shipped("n_compared")),
        equal("n_agree", shipped("n_agree")),
        equal("lorenz_lambda1", shipped("lorenz_lambda1")),
        # The table's Lorenz row (16 starts, long averaging; stderr ~0.004) against Sprott 2003.
        near("lorenz_lambda1", LORENZ_LAMBDA1, rel=0.02),
    ],
    "symmetry/02_symmetry_discovery.ipynb": [
        # Exact equivariance / invariance: zero up to float64 rounding.
        below("egnn_equivariance_error", FLOAT64_EXACT),
        below("frame_averaging_error", FLOAT64_EXACT),
        # Known symmetries (so(2), so(2) of 2-body orbits, so(5), SO(3) of a molecule):
        # found, at LieGAN's threshold cosine to the true generators.
        *[c for name in ("so2_invariant", "two_body", "o5_invariant", "g2")
          for c in (equal(f"verdict_{name}", "symmetry found"),
                    above(f"cosine_{name}", COSINE_THRESHOLD))],
        # so(1,3) is learned, but no probability law of momenta is boost-invariant, so the
        # two-sample test must reject (bench/RESULTS.md); the invariant metric is the
        # Minkowski metric diag(1, -1, -1, -1) (cosine 1 exactly).
        above("cosine_lorentz_invariant", COSINE_THRESHOLD),
        equal("verdict_lorentz_invariant", "no symmetry"),
        above("lorentz_metric_cosine", COSINE_THRESHOLD),
        # The anisotropic control has no continuous symmetry.
        equal("control_verdict", "no symmetry"),
        above("liegg_cosine", COSINE_THRESHOLD),
        # Lorenz-63 is invariant under (x, y, z) -> (-x, -y, z) (exact).
        equal("lorenz_z2_found", True),
        # spglib is the reference for crystal point groups: every crystal agrees.
        equal("crystal_agreement", 1.0),
    ],
}


def problems(notebook: str, records: Mapping[str, Any], parameters: Mapping[str, Any]) -> list[str]:
    """Every check of ``EXPECTED[notebook]`` that ``records`` fail, as messages."""
    return [msg for check in EXPECTED[notebook] if (msg := check.problem(records, parameters))]


def _defaults(notebook: str) -> dict[str, Any]:
    return {name: p.default for name, p in notebook_parameters(REPO / "notebooks" / notebook).items()}


# --- tests --------------------------------------------------------------------------------

def test_there_are_notebooks():
    assert NOTEBOOKS and (REPO / "notebooks" / "00_tour.ipynb") in NOTEBOOKS


def test_every_notebook_has_expectations():
    assert sorted(EXPECTED) == IDS, "add the new notebook's recorded values to EXPECTED"
    for notebook, checks in EXPECTED.items():
        assert checks, notebook


@pytest.mark.parametrize("notebook", sorted(EXPECTED))
def test_every_expectation_can_fail(notebook):
    """Each check rejects a wrong value, a NaN and a missing record (every reference that is
    another record set to 1; parameters at the notebook's defaults)."""
    params = _defaults(notebook)
    others = {c.ref.name: 1.0 for c in EXPECTED[notebook] if isinstance(c.ref, Recorded)}
    for check in EXPECTED[notebook]:
        ref = check.reference(others, params)
        bad = [check.wrong(ref)] + ([] if isinstance(ref, str | bool) else [math.nan])
        for value in bad:
            if check.pick == "sum":
                value = [value]
            elif check.pick is not None:
                value = [value] * (check.pick + 1)
            assert check.problem({**others, check.record: value}, params), (check.label, value)
        assert check.problem({k: v for k, v in others.items() if k != check.record}, params)
        if isinstance(check.ref, Recorded):
            assert "was not recorded" in check.problem({check.record: ref}, params)


def test_the_tour_checks_name_the_wrong_value():
    records = {"separation_rate": 1.2, "liegan_two_body_verdict": "no symmetry"}
    found = problems("00_tour.ipynb", records, _defaults("00_tour.ipynb"))
    assert "separation_rate == 0.9056 +- 10%: got 1.2 (reference 0.9056)" in found
    assert ("liegan_two_body_verdict == 'symmetry found': got 'no symmetry' "
            "(reference 'symmetry found')") in found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_has_parameters_and_no_outputs(path):
    assert notebook_parameters(path)  # raises if the tagged cell is missing or not literal
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"cell {i} has outputs"


def _labkit_imports(source: str) -> list[tuple[str, str]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("labkit"):
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(a.name, "") for a in node.names if a.name.startswith("labkit")]
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_imports_only_public_labkit_names(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for module, name in _labkit_imports(cell.source):
            assert not any(part.startswith("_") for part in module.split(".")), module
            if name:
                public = getattr(importlib.import_module(module), "__all__", [])
                assert name in public, f"{module}.{name} is not in {module}.__all__"


def test_a_private_import_would_be_caught():
    assert _labkit_imports("from labkit.core.integrate import _rk4_step") == [
        ("labkit.core.integrate", "_rk4_step")]


#: A cell that runs longer than this at the small defaults must show progress as it goes.
SLOW_CELL_S = 20.0


def stated_seconds(nb: Any) -> float:
    """The run time a notebook states for its small defaults on 2 CPU cores: the metadata
    ``labkit.stated_seconds``, which its first markdown cell must say in words too."""
    stated = nb.metadata.get("labkit", {}).get("stated_seconds")
    assert isinstance(stated, int | float) and stated > 0, "no labkit.stated_seconds metadata"
    return float(stated)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_states_its_run_time_where_a_reader_sees_it(path):
    nb = nbformat.read(path, as_version=4)
    stated = stated_seconds(nb)
    intro = next(c for c in nb.cells if c.cell_type == "markdown").source
    words = (f"about {stated / 60:g} min" if stated >= 120 else f"about {stated:g} s")
    assert f"{words} on 2 CPU cores" in intro, f"the first markdown cell must say '{words} on 2 CPU cores'"


def silent_slow_cells(nb: Any) -> list[str]:
    """Cells of an executed notebook that ran over :data:`SLOW_CELL_S` without showing
    progress: a progress bar (tqdm's, as labkit's ``progress=True`` draws it) or at least
    two lines printed while they ran."""
    found = []
    for index, cell in enumerate(nb.cells):
        duration = cell.get("metadata", {}).get("papermill", {}).get("duration") or 0.0
        if cell.cell_type != "code" or duration <= SLOW_CELL_S:
            continue
        outputs = cell.get("outputs", [])
        lines = sum(o.get("text", "").count("\n") for o in outputs
                    if o.get("output_type") == "stream")
        bar = any("it/s]" in str(o.get("data", {}).get("text/plain", "")) for o in outputs)
        if lines < 2 and not bar:
            found.append(f"cell {index} ran {duration:.0f} s without progress: {cell.source[:60]!r}")
    return found


def test_a_silent_slow_cell_is_caught():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("train()")])
    nb.cells[0].metadata["papermill"] = {"duration": 45.0}
    assert silent_slow_cells(nb) and "ran 45 s without progress" in silent_slow_cells(nb)[0]
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="1/2\n2/2\n")]
    assert silent_slow_cells(nb) == []
    nb.cells[0].outputs = [nbformat.v4.new_output(
        "display_data", data={"text/plain": "  0%|          | 0/300 [00:00<?, ?it/s]"})]
    assert silent_slow_cells(nb) == []


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_runs_with_small_defaults(path, tmp_path):
    notebook = path.relative_to(REPO / "notebooks").as_posix()
    result = run_notebook(path, out_dir=tmp_path / path.stem, timeout=300)
    assert result.status == "completed"
    assert result.report.stat().st_size > 0
    found = problems(notebook, result.records, result.parameters)
    assert not found, f"{notebook}: recorded values off their references:\n" + "\n".join(found)
    # The time it states holds on 2 cores, and a long cell shows progress.
    stated = stated_seconds(nbformat.read(path, as_version=4))
    assert result.duration_s <= stated, (f"{notebook} ran {result.duration_s:.0f} s; it states "
                                         f"{stated:g} s")
    assert not silent_slow_cells(nbformat.read(result.notebook, as_version=4))
