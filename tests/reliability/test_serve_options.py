"""``labkit serve`` with a target that does not exist stops before the server starts, with
a named error and exit status 2 (it used to serve a blank page)."""

from __future__ import annotations

import re

import pytest

from labkit.reports.cli import main


@pytest.mark.parametrize(("app", "first", "named"), [
    ("attractors", "Lornez", r"unknown system 'Lornez'; closest names: Lorenz"),
    ("symmetry", "nope", r"unknown data set 'nope'; choose one of \['so2_invariant'"),
    ("crystals", "perov5", r"name must be one of \['perov_5', 'carbon_24'\], got 'perov5'"),
])
def test_an_unknown_first_target_is_an_error_before_serving(app, first, named, capsys):
    assert main(["serve", app, "--first", first, "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("labkit: error: ") and "Traceback" not in err
    assert re.search(named, err)
