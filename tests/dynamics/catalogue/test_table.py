"""The whole-catalogue invariants table: the shipped file, the computation, the comparison
with dysts, atomic and resumable writing, bad input."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

import labkit.dynamics.catalogue._table as table_module
import labkit.dynamics.catalogue._table_file as file_module
from labkit.core import Config
from labkit.dynamics import (
    InvariantsRow,
    InvariantsTable,
    TableSettings,
    build_invariants_table,
    compare_with_dysts,
    compute_invariants,
    get_system,
    invariants_table,
    list_systems,
)
from labkit.dynamics.catalogue._table import (
    DIVERGENCE_ATOL_MAP,
    DIVERGENCE_ATOL_PER_PERIOD,
    DIVERGENCE_RTOL,
    STATUSES,
    STIFFNESS_LIMIT,
    ZERO_SIGMAS,
)
from labkit.errors import ConfigError, DataError, DivergenceError
from labkit.reports.cli import main as labkit_main

#: Sprott, Chaos and Time-Series Analysis (2003), table A.1: Lorenz-63's largest exponent.
LORENZ_LAMBDA1 = 0.9056
#: The shipped Lorenz value must lie within this fraction of it (and so its error bar).
LORENZ_RTOL = 0.02
#: Lorenz-63's phase-space contraction -(sigma + 1 + beta) = -41/3, exact, at the
#: catalogue's parameters (Lorenz 1963's beta = 8/3, which labkit keeps where dysts
#: rounds it to 2.667).
LORENZ_SUM = -(10.0 + 1.0 + 8.0 / 3.0)
#: Henon map's exponents sum to log|det J| = log(b), b = 0.3, exactly at every point.
HENON_SUM = math.log(0.3)
#: A recomputation agrees with the shipped value within this many combined standard errors.
REPRODUCE_SIGMAS = 4.0
#: Rows of the shipped table whose divergence-sum check fails: BlinkingRotlet and
#: InteriorSquirmer switch in time, StickSlipOscillator (friction) is not smooth,
#: SwingingAtwood is volume-preserving with a singular potential. (FluidTrampoline, with
#: impacts, failed while the tangents were central differences across the impact; with
#: the exact tangent of the compiled kernels its sum is within 0.03%.)
KNOWN_DIVERGENCE_FAILURES = {"BlinkingRotlet", "InteriorSquirmer", "StickSlipOscillator",
                             "SwingingAtwood"}
#: Settings small enough for a test (seconds on 2 cores).
SMALL = TableSettings(n_ics=8, periods=30.0, max_steps=3000, map_transient=100,
                      map_iterations=1000)
TINY = TableSettings(n_ics=2, periods=2.0, max_steps=100, transient_periods=1.0,
                     map_transient=10, map_iterations=50)


@pytest.fixture(scope="module")
def shipped():
    return invariants_table()


def test_the_shipped_table_covers_every_flow_and_map(shipped):
    expected = set(list_systems("flow")) | set(list_systems("map"))
    assert set(shipped.rows) == expected
    for name, row in shipped.rows.items():
        assert row.name == name and row.status in STATUSES
        if row.status == "ok":
            assert len(row.exponents) == row.dim == len(row.exponents_stderr)
            assert all(math.isfinite(v) for v in row.exponents)
            assert row.max_lyapunov == pytest.approx(row.exponents[0], abs=5 * max(
                row.max_lyapunov_stderr, 1e-12))
        else:
            assert row.message and not row.exponents


def test_the_header_says_how_the_table_was_made(shipped):
    header = shipped.header
    for key in ("labkit_version", "commit", "created", "machine", "settings", "wall_seconds"):
        assert key in header
    assert header["wall_seconds"] > 0
    assert shipped.settings == TableSettings.from_dict(header["settings"])
    assert "CPU" in header["machine"]["description"]


def test_table_settings_are_a_config_whose_dict_the_headers_hold(shipped):
    assert isinstance(TableSettings(), Config)
    # the shipped header reads back into the same dict: fields, defaults and JSON unchanged
    assert shipped.settings.to_dict() == shipped.header["settings"]
    assert shipped.settings == TableSettings()  # the shipped table uses the defaults
    assert json.loads(json.dumps(TableSettings().to_dict())) == TableSettings().to_dict()
    small = TableSettings().replace(n_ics=4, periods=30)
    assert small.n_ics == 4 and small.periods == 30.0 and isinstance(small.periods, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        small.n_ics = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        TableSettings(16)  # type: ignore[misc]  # keyword-only
    with pytest.raises(ConfigError, match="n_ics must be an int >= 2, got 1"):
        small.replace(n_ics=1)


def test_lorenz_matches_the_literature(shipped):
    row = shipped["lorenz"]  # case-insensitive
    assert row.status == "ok"
    assert abs(row.max_lyapunov - LORENZ_LAMBDA1) <= LORENZ_RTOL * LORENZ_LAMBDA1
    assert row.max_lyapunov_stderr <= LORENZ_RTOL * LORENZ_LAMBDA1
    assert row.exponent_sum == pytest.approx(LORENZ_SUM, rel=1e-4)
    assert row.divergence == pytest.approx(LORENZ_SUM, rel=1e-9)
    assert row.zero_ok and row.divergence_ok


def test_exponent_sums_match_the_divergence_for_ok_rows(shipped):
    """The stored per-row flag, and the same check redone on the stored means, hold for
    every ok row but the few whose failure the table records (and the comparison
    reports): fields that switch in time, have friction or impacts, or are
    volume-preserving with singularities (whose stiffness |tr J| cannot see)."""
    failing = set()
    for row in shipped.rows.values():
        if row.status != "ok":
            continue
        period = get_system(row.name).period if row.kind == "flow" else None
        atol = DIVERGENCE_ATOL_PER_PERIOD / period if period else DIVERGENCE_ATOL_MAP
        allowed = DIVERGENCE_RTOL * sum(abs(v) for v in row.exponents) + atol
        if not row.divergence_ok:
            failing.add(row.name)
            continue
        assert abs(row.exponent_sum - row.divergence) <= allowed, row.name
    assert failing == KNOWN_DIVERGENCE_FAILURES
    comparison = compare_with_dysts(shipped)
    for name in failing:
        row = comparison[name]
        assert row.agree or "ours_divergence_check_failed" in row.reasons


def test_zero_exponent_check_applies_to_autonomous_flows_only(shipped):
    for row in shipped.rows.values():
        if row.status != "ok":
            continue
        applies = row.kind == "flow" and not row.nonautonomous
        assert (row.zero_ok is not None) == applies, row.name
        if applies:
            tolerance = ZERO_SIGMAS * row.zero_exponent_stderr + row.speed_log_ratio / row.time
            assert row.zero_tolerance == pytest.approx(tolerance)
            assert row.zero_ok == (abs(row.zero_exponent) <= row.zero_tolerance), row.name


def test_steps_are_accurate_for_ok_flows(shipped):
    """Every ok flow's step passed the step-halving and stiffness checks, unless it
    stopped at dysts' own step."""
    settings = shipped.settings
    for row in shipped.rows.values():
        if row.status == "ok" and row.kind == "flow":
            at_floor = row.dt / 2 < get_system(row.name).dt
            accurate = (row.step_error <= settings.step_rtol
                        and row.step_stiffness <= STIFFNESS_LIMIT)
            assert accurate or at_floor, row.name


def test_lorenz_at_small_settings_reproduces_the_shipped_value(shipped):
    row = compute_invariants("Lorenz", SMALL)
    ref = shipped["Lorenz"]
    assert row.status == "ok" and row.n_ics == SMALL.n_ics
    sigma = math.hypot(row.max_lyapunov_stderr, ref.max_lyapunov_stderr)
    assert abs(row.max_lyapunov - ref.max_lyapunov) <= REPRODUCE_SIGMAS * sigma
    assert row.exponent_sum == pytest.approx(LORENZ_SUM, rel=1e-4)
    assert row.divergence == pytest.approx(LORENZ_SUM, rel=1e-9)  # constant divergence
    assert row.settings == SMALL.to_dict()


def test_henon_map_sum_is_log_det():
    row = compute_invariants("Henon", SMALL)
    assert row.status == "ok" and row.kind == "map" and row.zero_ok is None
    assert row.exponent_sum == pytest.approx(HENON_SUM, abs=1e-9)
    assert row.divergence == pytest.approx(HENON_SUM, abs=1e-9)
    assert row.max_lyapunov == pytest.approx(0.419, abs=0.02)  # Sprott (2003): 0.41922


def _row(name, **changes):
    values = {"name": name, "kind": "flow", "dim": 3, "nonautonomous": False, "status": "ok",
              "exponents": (0.9, 0.0, -14.5), "exponents_stderr": (0.004, 0.004, 0.004),
              "max_lyapunov": 0.9, "max_lyapunov_stderr": 0.004, "kaplan_yorke": 2.06,
              "kaplan_yorke_stderr": 0.001, "divergence_ok": True, "zero_ok": True}
    return InvariantsRow(**(values | changes))


def _made_up():
    rows = {
        "Agrees": _row("Agrees"),
        "DystsSplit": _row("DystsSplit"),
        "Blurry": _row("Blurry", max_lyapunov_stderr=0.3),
        "Forced": _row("Forced", nonautonomous=True, zero_ok=None),
        "Blown": InvariantsRow(name="Blown", kind="flow", dim=3, nonautonomous=False,
                               status="diverged", message="16 trajectories diverged"),
        "NoDysts": _row("NoDysts", kind="map", zero_ok=None),
    }
    reference = {
        "Agrees": {"maximum_lyapunov_estimated": 0.95, "lyapunov_spectrum_estimated": [0.93],
                   "kaplan_yorke_dimension": 2.05},
        # dysts' two values disagree with each other; ours matches its spectrum.
        "DystsSplit": {"maximum_lyapunov_estimated": 0.5, "lyapunov_spectrum_estimated": [0.91],
                       "kaplan_yorke_dimension": 2.06},
        "Blurry": {"maximum_lyapunov_estimated": 2.0, "lyapunov_spectrum_estimated": [2.0]},
        "Forced": {"maximum_lyapunov_estimated": 2.0, "lyapunov_spectrum_estimated": [2.1]},
        "Blown": {"maximum_lyapunov_estimated": 0.9},
        "NoDysts": {"maximum_lyapunov_estimated": None},
    }
    return InvariantsTable(header={}, rows=rows), reference


def test_the_comparison_gives_checked_reasons():
    table, reference = _made_up()
    comparison = compare_with_dysts(table, tolerance=0.2, reference=reference)
    assert comparison["Agrees"].agree and comparison["Agrees"].reasons == ()
    split = comparison["DystsSplit"]
    assert not split.agree and split.agree_spectrum and split.agree_kaplan_yorke
    assert split.rel_diff_max == pytest.approx(0.8)
    assert split.reasons == ("dysts_self_inconsistent", "matches_dysts_spectrum", "ours_verified")
    assert comparison["Blurry"].reasons == ("ours_large_error_bar",)
    assert "nonautonomous" in comparison["Forced"].reasons
    assert "ours_verified" in comparison["Forced"].reasons
    assert comparison["Blown"].reasons == ("ours_diverged",)
    assert comparison["NoDysts"].reasons[0] == "dysts_missing"
    assert comparison.n_agree == 1 and comparison.n_compared == 4
    assert comparison.reason_counts()["ours_verified"] == 3
    assert "dysts' own" in split.explain()
    assert comparison.to_xarray().sizes["system"] == 6
    records = comparison.records()
    assert [r["name"] for r in records] == list(table.rows)
    assert records[1]["reasons"] == "dysts_self_inconsistent,matches_dysts_spectrum,ours_verified"
    text = comparison.summary()
    assert text.startswith("1 of 4 systems with both values agree within 0.2\n\n| system |")
    assert len(text.splitlines()) == 2 + 2 + 6  # the count, a blank, heading, rule, rows
    assert "| Blown | diverged | - |" in text  # no number where the run diverged


def test_the_shipped_comparison_has_a_reason_for_every_disagreement(shipped):
    comparison = compare_with_dysts(shipped)
    assert len(comparison) == len(shipped)
    assert comparison["Lorenz"].agree  # dysts' 0.89 is within 20% of ours
    for row in comparison.disagreements():
        assert row.reasons, row.name


def test_interrupted_runs_keep_their_rows_and_resume(tmp_path, monkeypatch):
    path = tmp_path / "table.json"
    real = file_module.compute_invariants
    calls = []

    def interrupted(name, settings=None):
        calls.append(name)
        if name == "Logistic":
            raise KeyboardInterrupt
        return real(name, settings)

    monkeypatch.setattr(file_module, "compute_invariants", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_invariants_table(["Henon", "Logistic", "Tent"], path=path, settings=TINY,
                               progress=None)
    partial = invariants_table(path)
    assert list(partial.rows) == ["Henon"]  # the finished row survived, whole
    assert [p.name for p in tmp_path.iterdir()] == ["table.json"]  # no temporary left
    monkeypatch.setattr(file_module, "compute_invariants", real)
    lines = []
    done = build_invariants_table(["Henon", "Logistic", "Tent"], path=path, resume=True,
                                  progress=lines.append)
    assert set(done.rows) == {"Henon", "Logistic", "Tent"}
    assert done["Henon"] == partial["Henon"]  # skipped, not recomputed
    assert lines[0].startswith("1 of 3 systems already")
    assert "total wall time" in lines[-1]
    reread = invariants_table(path)
    assert reread.header["sessions"] == 2 and set(reread.rows) == set(done.rows)
    assert reread.header["wall_seconds"] >= partial.header["wall_seconds"]


def test_resuming_with_other_settings_is_an_error(tmp_path):
    path = tmp_path / "table.json"
    build_invariants_table(["Tent"], path=path, settings=TINY, progress=None)
    other = TableSettings(n_ics=3, periods=2.0, max_steps=100, transient_periods=1.0,
                          map_transient=10, map_iterations=50)
    with pytest.raises(ConfigError, match=r"other settings.*'n_ics': \(2, 3\)"):
        build_invariants_table(["Tent"], path=path, settings=other, resume=True)


def test_a_failing_system_becomes_a_row(monkeypatch):
    def boom(system, settings):
        raise DivergenceError("went to infinity at t = 3")

    monkeypatch.setattr(table_module, "_flow_row", boom)
    row = compute_invariants("Lorenz", TINY)
    assert row.status == "diverged" and "t = 3" in row.message
    assert math.isnan(row.max_lyapunov)

    def bug(system, settings):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(table_module, "_flow_row", bug)
    row = compute_invariants("Lorenz", TINY)
    assert row.status == "failed" and row.message == "RuntimeError: shape mismatch"


def test_rows_round_trip_through_json():
    row = compute_invariants("Tent", TINY)
    text = json.dumps(row.to_json(), allow_nan=False)
    assert InvariantsRow.from_json(json.loads(text)) == row


def test_to_xarray(shipped):
    ds = shipped.to_xarray()
    assert ds.sizes["system"] == len(shipped)
    assert ds.sizes["exponent"] == max(r.dim for r in shipped.rows.values())
    assert float(ds["max_lyapunov"].sel(system="Lorenz")) == shipped["Lorenz"].max_lyapunov


def test_records_and_summary(shipped):
    records = shipped.records()
    assert len(records) == len(shipped) and records[0] == next(iter(shipped.rows.values())).to_json()
    json.dumps(records, allow_nan=False)  # plain JSON values
    lines = shipped.summary().splitlines()
    assert lines[0].startswith("| system | kind | status | lambda_1 |")
    assert lines[1].startswith("|:---|:---|:---|---:|")
    assert len(lines) == 2 + len(shipped)
    lorenz = next(line for line in lines if line.startswith("| Lorenz |"))
    assert f"| {shipped['Lorenz'].max_lyapunov:.4g} |" in lorenz and "| yes | yes |" in lorenz


def test_the_cli_writes_a_table(tmp_path, capsys):
    out = tmp_path / "cli.json"
    code = labkit_main(["table", "--systems", "tent", "--out", str(out), "--n-ics", "2",
                 "--map-transient", "10", "--map-iterations", "50"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "[1/1] Tent" in printed and "total wall time" in printed
    assert invariants_table(out)["Tent"].status == "ok"
    assert labkit_main(["table", "--systems", "tent", "--out", str(out), "--n-ics", "1"]) == 2
    assert "n_ics must be an int >= 2, got 1" in capsys.readouterr().err


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n_ics": 1}, "TableSettings.n_ics must be an int >= 2, got 1"),
    ({"periods": -1.0}, "TableSettings.periods must be a finite number >= 0, got -1.0"),
    ({"step_rtol": float("nan")}, "step_rtol must be a finite number >= 0, got nan"),
    ({"max_steps": 2.5}, "TableSettings.max_steps must be int, got 2.5 (float)"),
    ({"periods": 0}, "periods=0"),
])
def test_bad_settings_quote_the_value(kwargs, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        TableSettings(**kwargs)


def test_bad_input_quotes_the_value(tmp_path, shipped):
    with pytest.raises(ConfigError, match="unknown system 'Lorenzz'"):
        compute_invariants("Lorenzz", TINY)
    with pytest.raises(ConfigError, match="settings must be a TableSettings, got {'n_ics': 4}"):
        compute_invariants("Lorenz", {"n_ics": 4})
    with pytest.raises(ConfigError, match=r"unknown field\(s\) \['n_ic'\] for TableSettings"):
        TableSettings.from_dict({"n_ic": 4})
    with pytest.raises(ConfigError, match="tolerance must be a finite number > 0, got 0"):
        compare_with_dysts(shipped, tolerance=0)
    with pytest.raises(ConfigError, match="no row 'nope'"):
        shipped["nope"]
    missing = tmp_path / "missing.json"
    with pytest.raises(DataError, match="no invariants table at .*missing.json"):
        invariants_table(missing)
    bad = tmp_path / "bad.json"
    bad.write_text('{"header": {"format_version": 99}, "rows": []}')
    with pytest.raises(DataError, match="format_version 99"):
        invariants_table(bad)
    with pytest.raises(DataError, match="status must be one of .* got 'fine'"):
        InvariantsRow(name="X", kind="flow", dim=3, nonautonomous=False, status="fine")


def test_two_workers_give_the_rows_of_one(tmp_path):
    names = ["Henon", "Lorenz", "Logistic"]
    one = build_invariants_table(names, path=tmp_path / "one.json", settings=TINY,
                                 progress=None)
    two = build_invariants_table(names, path=tmp_path / "two.json", settings=TINY,
                                 progress=None, workers=2)
    assert list(two.rows) == list(one.rows)  # written in catalogue order whatever finished first
    for name in names:
        assert two[name].exponents == one[name].exponents
    assert invariants_table(tmp_path / "two.json").header["workers"] == 2
    with pytest.raises(ConfigError, match="workers must be an int >= 1, got 0"):
        build_invariants_table(names, path=tmp_path / "x.json", settings=TINY, workers=0)
