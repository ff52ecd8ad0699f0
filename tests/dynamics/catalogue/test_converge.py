"""The converged spectra: doubling averages from decorrelated starts."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from labkit.core import Config
from labkit.dynamics import (
    ConvergedRow,
    ConvergedTable,
    ConvergenceSettings,
    build_converged_table,
    converge_spectrum,
    converged_table,
    get_system,
)
from labkit.dynamics.catalogue._converge import _starts
from labkit.errors import ConfigError
from labkit.reports.cli import main as labkit_main

pytestmark = pytest.mark.usefixtures("one_thread")
SMALL = ConvergenceSettings(n_ics=8, periods=20.0, transient_periods=20.0, max_doublings=5)


def test_lorenz_converges_to_the_literature_within_its_error_bar():
    # With 8 starts the zero exponent's finite-time bias (about -1.4 / T) moves by more than
    # its error bar between doublings until T ~ 2,400, so whether a short run stops early
    # depends on the realisation (measured at beta = 8/3, seeds 0-9: 6 converge within 5
    # doublings, 7 within 8). 8 doublings reach T = 7,684; seed 0 converges there.
    row = converge_spectrum("Lorenz", dataclasses.replace(SMALL, max_doublings=8))
    assert row.status == "ok" and row.converged and row.halves_ok
    lam, se = row.exponents[0], row.exponents_stderr[0]
    # Sprott (2003): 0.9056. The error bar is two standard errors; allow 4 plus the
    # discretization (dt = period / 100 shifts the exponent by about 1e-3).
    assert abs(lam - 0.9056) <= 4 * se + 2e-3
    assert abs(sum(row.exponents) - (-(10 + 1 + 8 / 3))) < 0.01  # the trace of J
    assert len(row.history) >= 2
    assert row.history[-1][0] == pytest.approx(row.time)
    assert [h[0] for h in row.history] == pytest.approx(
        [row.history[0][0] * 2**i for i in range(len(row.history))], rel=1e-6)


def test_the_starts_are_separate_trajectories():
    # starts taken along one trajectory would retrace it bit for bit; these must not
    starts, dt, _ = _starts(get_system("Lorenz"), SMALL)
    assert starts.shape == (8, 3)
    distance = torch.cdist(starts, starts) + torch.eye(8) * 1e9
    assert float(distance.min()) > 0.1  # spread over the attractor


def test_a_map_converges():
    row = converge_spectrum("Henon", SMALL)
    assert row.status == "ok" and row.converged
    assert row.exponents[0] == pytest.approx(0.4192, abs=4 * row.exponents_stderr[0] + 2e-3)
    assert sum(row.exponents) == pytest.approx(math.log(0.3), abs=1e-6)  # |det J| = b


def test_a_system_that_is_not_converged_says_so():
    row = converge_spectrum("Lorenz", ConvergenceSettings(n_ics=4, periods=1.0,
                                                          max_doublings=1))
    assert row.status == "ok"
    assert len(row.history) <= 2
    if not row.converged:
        assert row.time == pytest.approx(row.history[-1][0])


def test_a_diverging_system_is_a_row():
    row = converge_spectrum("BelousovZhabotinsky", SMALL)
    assert row.status == "diverged" and "diverged" in row.message
    assert not row.converged and row.exponents == ()


def test_bad_settings_name_the_value():
    with pytest.raises(ConfigError, match="n_ics must be an even int >= 4, got 5"):
        ConvergenceSettings(n_ics=5)
    with pytest.raises(ConfigError, match="periods must be a finite number > 0, got -1"):
        ConvergenceSettings(periods=-1)
    with pytest.raises(ConfigError, match=r"ConvergenceSettings.max_steps must be int, got 2.5"):
        ConvergenceSettings(max_steps=2.5)
    with pytest.raises(ConfigError, match="seed must be an int >= 0, got -1"):
        ConvergenceSettings(seed=-1)
    assert isinstance(ConvergenceSettings(), Config)
    assert ConvergenceSettings().replace(n_ics=8).n_ics == 8
    with pytest.raises(ConfigError, match="settings must be a ConvergenceSettings"):
        converge_spectrum("Lorenz", {"n_ics": 4})


def test_table_file_round_trip_and_cli(tmp_path, capsys):
    path = tmp_path / "conv.json"
    table = build_converged_table(["Henon", "Lorenz"], path=path, settings=SMALL,
                                  progress=None)
    assert isinstance(table, ConvergedTable) and list(table) == ["Henon", "Lorenz"]
    rows = converged_table(path)
    assert isinstance(rows["Lorenz"], ConvergedRow) and rows["lorenz"] is rows["Lorenz"]
    assert rows["Lorenz"].exponents == pytest.approx(table["Lorenz"].exponents)
    assert rows.records() == json.loads(path.read_text())["rows"]
    header = json.loads(path.read_text())["header"]
    assert header["settings"]["n_ics"] == 8 and header["wall_seconds"] >= 0
    assert rows.header == header and rows.settings == SMALL
    out = tmp_path / "cli.json"
    assert labkit_main(["table", "--converge", "--systems", "Henon", "--out", str(out)]) == 0
    assert "Henon" in capsys.readouterr().out
    assert converged_table(out)["Henon"].status == "ok"


def test_the_shipped_converged_table_covers_the_catalogue():
    from labkit.dynamics import list_systems

    rows = converged_table()
    assert set(rows) == set(list_systems("flow") + list_systems("map"))
    ok = [r for r in rows.values() if r.status == "ok"]
    assert len(ok) >= 145
    lorenz = rows["Lorenz"]
    assert abs(lorenz.exponents[0] - 0.9056) <= 4 * lorenz.exponents_stderr[0] + 2e-3
    for row in ok:  # every row says whether it converged, with the times it tried
        assert isinstance(row.converged, bool) and row.history
    assert rows.settings == ConvergenceSettings()  # the header's settings read back
    lines = rows.summary().splitlines()
    assert lines[0].startswith("| system | kind | status | converged | lambda_1 |")
    assert len(lines) == 2 + len(rows)
    ds = rows.to_xarray()
    assert ds.sizes["system"] == len(rows)
    assert float(ds["exponents"].sel(system="Lorenz", exponent=0)) == lorenz.exponents[0]


def test_resume_keeps_rows_and_computes_the_missing_ones(tmp_path, capsys):
    path = tmp_path / "conv.json"
    quick = ConvergenceSettings(n_ics=4, periods=1.0, transient_periods=1.0, max_doublings=1)
    first = build_converged_table(["Henon"], path=path, settings=quick, progress=None)
    # Lorenz is computed, Henon kept as it was; rows in catalogue order (flows, then maps)
    table = build_converged_table(["lorenz", "Henon"], path=path, resume=True, progress=None)
    assert list(table) == ["Lorenz", "Henon"]
    assert table["Henon"] == first["Henon"]  # read back, not redone
    header = json.loads(path.read_text())["header"]
    assert header["sessions"] == 2 and header["created"] == first.header["created"]
    assert header["settings"] == quick.to_dict() and "updated" in header
    with pytest.raises(ConfigError, match="cannot resume .* other settings"):
        build_converged_table(["Lorenz"], path=path, settings=SMALL, resume=True, progress=None)
    assert labkit_main(["table", "--converge", "--systems", "Henon", "Lorenz", "--resume",
                       "--out", str(path)]) == 0
    assert "2 of 2 systems already in" in capsys.readouterr().out
