"""Reconstruction figures: what they draw is the input (samples, codes, history), the
metric readouts are written out, and bad input names the problem."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from labkit.core.train import History
from labkit.dynamics import DSRMetrics
from labkit.errors import ConfigError, DataError
from labkit.widgets import reconstruction_figure, symbolic_code_figure, training_monitor_figure
from labkit.widgets._reconstruction_plots import CODE_COLOURS, _metric_readouts


def _helix(n: int = 300, dim: int = 3, phase: float = 0.0) -> np.ndarray:
    t = np.linspace(0, 6 * np.pi, n) + phase
    cols = [np.cos(t), np.sin(t), t / 10, np.cos(2 * t), np.sin(3 * t)]
    return np.stack(cols[:dim], 1)


METRICS = DSRMetrics(d_stsp=1.234, d_h=0.0876, floor_d_stsp=0.21, floor_d_h=0.031,
                     prediction_error=None, lyapunov_model=0.8, lyapunov_true=0.9056,
                     method="binned", bins=30, smoothing=20.0, n_steps=20)


def _texts(fig) -> str:
    return " ".join(a.text for a in fig.layout.annotations)


def test_reconstruction_figure_draws_both_series_on_shared_axes():
    truth, model = _helix(), _helix(200, phase=0.5) * 1.5
    fig = reconstruction_figure(truth, torch.as_tensor(model), metrics=METRICS)
    assert len(fig.data) == 2 and [t.type for t in fig.data] == ["scatter3d", "scatter3d"]
    np.testing.assert_array_equal(fig.data[0].x, truth[:, 0])
    np.testing.assert_array_equal(fig.data[1].z, model[:, 2])
    assert fig.data[0].scene == "scene" and fig.data[1].scene == "scene2"
    # both scenes share the range spanning both series
    r1, r2 = fig.layout.scene.xaxis.range, fig.layout.scene2.xaxis.range
    assert tuple(r1) == tuple(r2) and r1[0] < -1.5 and r1[1] > 1.5
    text = _texts(fig)
    for part in ("D_stsp 1.23 (floor 0.21)", "D_H 0.0876 (floor 0.031)",
                 "λ_max 0.8 vs true 0.906 (12% off)"):
        assert part in text


def test_readouts_from_a_mapping_and_without_floor():
    lines = _metric_readouts({"d_stsp": 2.0, "d_h": 0.5})
    assert lines == ["D_stsp 2", "D_H 0.5"]
    assert _metric_readouts(None) == []
    with pytest.raises(ConfigError, match="metrics must be a DSRMetrics or a mapping"):
        _metric_readouts(3.0)


def test_reconstruction_figure_planar_higher_dim_and_colouring():
    fig = reconstruction_figure(_helix(dim=2), _helix(dim=2, phase=1.0), colour_by="time")
    assert [t.type for t in fig.data] == ["scattergl", "scattergl"]
    assert fig.data[1].mode == "markers"
    np.testing.assert_array_equal(fig.data[0].marker.color, np.arange(300))
    fig5 = reconstruction_figure(_helix(dim=5), _helix(dim=5), colour_by="speed")
    assert len(fig5.data) == 2 and "first 3 of 5 dimensions" in _texts(fig5)
    speed = np.linalg.norm(np.diff(_helix(dim=5), axis=0), axis=1)
    np.testing.assert_allclose(fig5.data[0].line.color[:-1], speed)


def test_reconstruction_figure_thins_long_series_by_stride():
    truth = _helix(1000)
    fig = reconstruction_figure(truth, truth, max_points=100)
    np.testing.assert_array_equal(fig.data[0].x, truth[::10, 0])


def test_a_diverged_model_is_drawn_up_to_its_first_bad_sample():
    model = _helix()
    model[120, 1] = np.nan
    fig = reconstruction_figure(_helix(), model)
    assert len(fig.data[1].x) == 120
    assert "non-finite from sample 120 on (diverged)" in _texts(fig)


def test_reconstruction_figure_errors():
    with pytest.raises(DataError, match=r"truth has 3 dimensions but model_series has 2: "
                                        r"shapes \(300, 3\) and \(300, 2\)"):
        reconstruction_figure(_helix(), _helix(dim=2))
    with pytest.raises(DataError, match=r"needs at least 2 \(shape \(300, 1\)\)"):
        reconstruction_figure(_helix(dim=1), _helix(dim=1))
    with pytest.raises(DataError, match=r"shape \[time, dim\], got \(300,\)"):
        reconstruction_figure(_helix()[:, 0], _helix())
    with pytest.raises(ConfigError, match=r"colour_by must be one of \[None, 'time', 'speed'\], got 'x'"):
        reconstruction_figure(_helix(), _helix(), colour_by="x")
    with pytest.raises(ConfigError, match="names must be two titles"):
        reconstruction_figure(_helix(), _helix(), names=("a",))


def test_symbolic_code_figure_one_trace_and_colour_per_code():
    x = _helix(400)
    codes = np.array([0, 1, 3] * 133 + [3])
    fig = symbolic_code_figure(x, torch.as_tensor(codes))
    assert len(fig.data) == 3
    for trace, k in zip(fig.data, (0, 1, 3), strict=True):
        np.testing.assert_array_equal(trace.x, x[codes == k, 0])
        assert trace.marker.color == CODE_COLOURS[k] and trace.mode == "markers"
        assert trace.name.startswith(f"code {k} ")
    assert fig.data[0].name == "code 0 [00] 33.2%" and fig.data[2].name == "code 3 [11] 33.5%"
    assert fig.data[1].name.startswith("code 1 [10]")  # unit 1 on, unit 2 off
    assert len({t.marker.color for t in fig.data}) == 3
    assert "3 regions visited" in fig.layout.title.text
    # The whole orbit is in frame: every drawn point lies inside the scene's ranges.
    for axis, column in (("xaxis", 0), ("yaxis", 1), ("zaxis", 2)):
        lo, hi = fig.layout.scene[axis].range
        assert lo < x[:, column].min() and x[:, column].max() < hi


def test_symbolic_code_figure_errors():
    x = _helix(100)
    with pytest.raises(DataError, match=r"codes must have shape \[time\] = \(100,\) like the "
                                        r"series, got \(99,\)"):
        symbolic_code_figure(x, np.zeros(99, dtype=int))
    with pytest.raises(DataError, match="codes must be integers, got dtype float64"):
        symbolic_code_figure(x, np.full(100, 0.5))
    with pytest.raises(DataError, match="codes must be >= 0, got -1"):
        symbolic_code_figure(x, -np.ones(100, dtype=int))


def _history(n: int = 120, alpha: bool = True) -> History:
    h = History()
    for i in range(n):
        h.append(i, {"loss": 1.0 / (1 + i), **({"alpha": 1.0 - i / n} if alpha else {})}, wall=0.0)
    return h


def test_training_monitor_curves_beside_the_free_run():
    truth, run = _helix(), _helix(150, phase=0.3)
    fig = training_monitor_figure(_history(), run, truth, smooth=10)
    names = [t.name for t in fig.data]
    assert names == ["loss (raw)", "loss", "α", "truth", "free run"]
    np.testing.assert_allclose(fig.data[0].y, [1.0 / (1 + i) for i in range(120)])
    np.testing.assert_allclose(fig.data[2].y, [1.0 - i / 120 for i in range(120)])
    np.testing.assert_array_equal(fig.data[4].x, run[:, 0])
    np.testing.assert_array_equal(fig.data[3].z, truth[:, 2])
    assert fig.layout.yaxis.type == "log" and "(step 119)" in fig.layout.title.text
    assert fig.data[4].type == "scatter3d"


def test_training_monitor_before_a_free_run_and_without_alpha():
    fig = training_monitor_figure(_history(alpha=False), None, _helix())
    assert [t.name for t in fig.data] == ["loss (raw)", "loss", "truth"]


def test_training_monitor_errors():
    with pytest.raises(ConfigError, match=r"history has no metric 'lost'; it has \['alpha', 'loss'\]"):
        training_monitor_figure(_history(), None, _helix(), keys=("lost",))
    with pytest.raises(DataError, match="truth has 3 dimensions but free_run has 2"):
        training_monitor_figure(_history(), _helix(dim=2), _helix())
    with pytest.raises(ConfigError, match="smooth must be an int >= 1, got 0"):
        training_monitor_figure(_history(), None, _helix(), smooth=0)
