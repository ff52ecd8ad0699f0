"""Static discovery figures show what the result holds."""

from __future__ import annotations

import pytest
import torch

from labkit.symmetry import LieGANConfig, liegan, so2_invariant
from labkit.widgets import discovery_figure, discovery_table_figure


@pytest.fixture(scope="module")
def result():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield liegan(so2_invariant(1000, seed=0), LieGANConfig(steps=1500), seed=0, device="cpu")
    finally:
        torch.set_num_threads(n)


def test_discovery_figure_shows_generator_truth_and_trace(result):
    fig = discovery_figure(result, title="so2")
    kinds = [t.type for t in fig.data]
    assert kinds.count("heatmap") == 2 and "scatter" in kinds
    learned, truth = (t.z for t in fig.data if t.type == "heatmap")
    # aligned: the learned generator, scaled to max 1 and signed like the truth, is so(2)
    assert abs(learned[0][1] - truth[0][1]) < 0.1 and abs(learned[0][0]) < 0.1
    trace = next(t for t in fig.data if t.type == "scatter")
    assert len(trace.x) == len(trace.y) > 0 and max(trace.y) >= 0.99
    assert result.verdict.label in fig.layout.title.text
    assert any(s.y0 == 0.99 for s in fig.layout.shapes)  # the threshold line
    # Matrix axes carry integer indices only (no 0.5 ticks between rows).
    for i in (1, 2):
        for axis in (fig.layout[f"xaxis{'' if i == 1 else i}"], fig.layout[f"yaxis{'' if i == 1 else i}"]):
            assert (axis.tickmode, axis.tick0, axis.dtick) == ("linear", 0, 1)


def test_table_figure_has_one_row_per_run(result):
    rows = [{"data": "so2", "cosine": result.scores["cosine"]}, {"data": "x", "cosine": 0.5}]
    fig = discovery_table_figure(rows)
    assert list(fig.data[0].header.values) == ["data", "cosine"]
    assert list(fig.data[0].cells.values[0]) == ["so2", "x"]
