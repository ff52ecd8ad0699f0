"""The catalogue-invariants figures draw the comparison they are given."""

from __future__ import annotations

import numpy as np
import pytest

from labkit.dynamics import InvariantsRow, InvariantsTable, compare_with_dysts
from labkit.errors import ConfigError
from labkit.widgets import disagreement_table_figure, invariants_scatter_figure


def _comparison():
    def row(name, lam, se):
        return InvariantsRow(name=name, kind="flow", dim=3, nonautonomous=False, status="ok",
                             exponents=(lam, 0.0, -10.0), exponents_stderr=(se, se, se),
                             max_lyapunov=lam, max_lyapunov_stderr=se, kaplan_yorke=2.1,
                             kaplan_yorke_stderr=0.01, divergence_ok=True, zero_ok=True)

    table = InvariantsTable(header={}, rows={"A": row("A", 0.9, 0.01), "B": row("B", 0.3, 0.02),
                                             "C": row("C", 2.0, 0.05)})
    reference = {"A": {"maximum_lyapunov_estimated": 0.89}, "B": {"maximum_lyapunov_estimated":
                 0.6, "lyapunov_spectrum_estimated": [0.31]}, "C": {}}
    return compare_with_dysts(table, tolerance=0.2, reference=reference)


def test_scatter_draws_ours_against_dysts_with_error_bars():
    fig = invariants_scatter_figure(_comparison(), title="t")
    agree, disagree = fig.data[0], fig.data[1]
    np.testing.assert_allclose(agree.x, [0.89])
    np.testing.assert_allclose(agree.y, [0.9])
    np.testing.assert_allclose(agree.error_y.array, [0.01])
    np.testing.assert_allclose(disagree.x, [0.6])  # C has no dysts value: not drawn
    assert "dysts_self_inconsistent" in disagree.text[0]
    # The legend counts what the table counts (B and C), and says C is not drawn.
    assert agree.name == "agrees (1)" and disagree.name == "disagrees (2; 1 not drawn)"
    table = disagreement_table_figure(_comparison())
    assert table.layout.title.text.startswith("2 disagreements")
    assert fig.layout.xaxis.type == "log" and fig.layout.title.text == "t"
    diagonal = fig.data[2]
    np.testing.assert_allclose(diagonal.y, diagonal.x)
    with pytest.raises(ConfigError, match="quantity must be one of .* got 'lyap'"):
        invariants_scatter_figure(_comparison(), quantity="lyap")


def test_disagreement_table_lists_each_disagreement_with_reasons():
    fig = disagreement_table_figure(_comparison())
    cells = fig.data[0].cells.values
    assert list(cells[0]) == ["B", "C"]
    assert "matches_dysts_spectrum" in cells[-1][0] and cells[-1][1].startswith("dysts_missing")
    with pytest.raises(ConfigError, match="max_rows must be an int >= 1, got 0"):
        disagreement_table_figure(_comparison(), max_rows=0)
