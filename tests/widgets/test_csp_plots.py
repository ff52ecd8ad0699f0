"""Training curves and the CSP table figure: what they draw comes from the inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from labkit.atoms import CSPBenchmark, CSPRow
from labkit.core.train import History
from labkit.errors import ConfigError
from labkit.widgets import csp_benchmark_figure, training_figure
from labkit.widgets._crystal_plots import LINE_HEIGHT, TITLE_CHARS, TITLE_SIZE


def _history(n: int = 200) -> History:
    h = History()
    for i in range(n):
        h.append(i, {"loss": 2.0 / (1 + i), "loss_coord": 1.0 / (1 + i)}, wall=0.01 * i)
    return h


def test_training_figure_raw_and_smoothed():
    fig = training_figure(_history(), smooth=10)
    names = [t.name for t in fig.data]
    assert names == ["loss (raw)", "loss", "loss_coord (raw)", "loss_coord"]
    raw, smooth = np.asarray(fig.data[0].y), np.asarray(fig.data[1].y)
    np.testing.assert_allclose(raw[:3], [2.0, 1.0, 2.0 / 3])
    assert smooth[9] == pytest.approx(np.mean(raw[:10])) and smooth[50] == pytest.approx(np.mean(raw[41:51]))
    assert fig.layout.yaxis.type == "log"
    with pytest.raises(ConfigError, match=r"history has no metric 'loss_x'; it has \['loss', 'loss_coord'\]"):
        training_figure(_history(), ["loss_x"])
    with pytest.raises(ConfigError, match="smooth must be an int >= 1, got 0"):
        training_figure(_history(), smooth=0)


def test_smoothing_skips_nan():
    h = History()
    for i, v in enumerate([1.0, math.nan, 3.0]):
        h.append(i, {"loss": v}, wall=0.0)
    y = training_figure(h, smooth=3).data[1].y
    np.testing.assert_allclose(y, [1.0, 1.0, 2.0])


def test_csp_benchmark_figure_bars_and_reference_lines():
    rows = (CSPRow("random baseline", 1, 0.3222, 0.4452, 100, 1.0),
            CSPRow("perovskite baseline", 1, 0.5009, 0.0700, 100, 1.0),
            CSPRow("model", 1, 0.25, math.nan, 100, 2.0), CSPRow("model", 20, 0.6, 0.05, 100, 9.0))
    bench = CSPBenchmark(split="perov_5/labkit-test (seed 0) of val (100 structures, NOT an official split)", rows=rows)
    fig = csp_benchmark_figure(bench)
    bar = fig.data[0]
    assert list(bar.x) == ["random baseline", "perovskite baseline", "model", "model (best of 20)"]
    np.testing.assert_allclose(bar.y, [32.22, 50.09, 25.0, 60.0])
    assert "RMSE 0.070" in bar.text[1] and "RMSE" not in bar.text[2]
    assert len(fig.layout.shapes) == 2  # DiffCSP's 52.02% and 98.60%
    assert {round(s.y0, 2) for s in fig.layout.shapes} == {52.02, 98.6}
    carbon = CSPBenchmark(split="carbon_24/val", rows=rows[:1])
    assert len(csp_benchmark_figure(carbon).layout.shapes) == 0
    with pytest.raises(ConfigError, match="no rows"):
        csp_benchmark_figure(CSPBenchmark(split="x", rows=()))


def test_titles_naming_a_long_split_wrap_and_fit():
    """A re-split's label runs past 100 characters: the title wraps, the top margin grows
    to hold every line, and the plot keeps its height."""
    split = ("perov_5/subset of labkit-test (seed 0) of first 400 of val (shipped sample) "
             "(24 structures, NOT an official split)")
    rows = (CSPRow("model", 1, 0.25, 0.1, 24, 2.0),)
    short = csp_benchmark_figure(CSPBenchmark(split="perov_5/val", rows=rows))
    for fig in (csp_benchmark_figure(CSPBenchmark(split=split, rows=rows)),
                training_figure(_history(), title=f"DiffCSP-style training on {split}")):
        lines = fig.layout.title.text.split("<br>")
        assert len(lines) == 2 and all(len(line) <= TITLE_CHARS for line in lines)
        assert " ".join(lines).endswith(split)  # nothing dropped
        assert fig.layout.margin.t >= 2 * TITLE_SIZE * LINE_HEIGHT
    long = csp_benchmark_figure(CSPBenchmark(split=split, rows=rows))
    assert long.layout.height - long.layout.margin.t == short.layout.height - short.layout.margin.t
