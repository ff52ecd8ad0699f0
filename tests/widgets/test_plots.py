"""The static plotly figures: the data they draw is the data they were given."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from labkit.core import rk4
from labkit.errors import ConfigError
from labkit.widgets import growth_figure, spectrum_figure, trajectories_figure


def test_trajectories_figure_draws_each_member_up_to_the_limit():
    y0 = torch.randn(12, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    traj = rk4(lambda t, y: -y, y0, (0.0, 1.0), 0.1)
    fig = trajectories_figure(traj, max_lines=5, title="decay")
    assert len(fig.data) == 5 and fig.layout.title.text == "decay"
    np.testing.assert_allclose(fig.data[2].x, traj.y[2, :, 0].numpy())
    np.testing.assert_allclose(fig.data[2].z, traj.y[2, :, 2].numpy())
    with pytest.raises(ConfigError, match="need y of shape"):
        trajectories_figure(rk4(lambda t, y: -y, torch.ones(2, 2), (0.0, 1.0), 0.5))


def test_growth_figure_fit_line_has_the_given_slope():
    t = np.linspace(0, 10, 101)
    fig = growth_figure(t, 0.9 * t - 20, rate=0.9, window=(2.0, 8.0), reference=0.9056)
    fit = fig.data[1]
    slope = (fit.y[-1] - fit.y[0]) / (fit.x[-1] - fit.x[0])
    assert slope == pytest.approx(0.9) and fit.x[0] >= 2.0 and fit.x[-1] <= 8.0
    assert "0.9056" in fig.data[2].name


def test_spectrum_figure_shows_values_error_bars_and_reference():
    fig = spectrum_figure([0.9, 0.0, -14.5], [0.01, 0.02, 0.03], reference=[0.9056])
    bars, ref = fig.data
    assert list(bars.x) == ["λ1", "λ2", "λ3"]
    np.testing.assert_allclose(bars.y, [0.9, 0.0, -14.5])
    np.testing.assert_allclose(bars.error_y.array, [0.01, 0.02, 0.03])
    assert list(ref.y) == [0.9056] and list(ref.x) == ["λ1"]
    with pytest.raises(ConfigError, match="non-empty 1-D spectrum"):
        spectrum_figure([[1.0, 2.0]])
