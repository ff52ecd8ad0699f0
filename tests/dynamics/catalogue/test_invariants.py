"""Power spectra, correlation dimension and Poincare sections on cases with known answers."""

from __future__ import annotations

import math

import pytest
import torch

from labkit.core import rk4
from labkit.dynamics import (
    correlation_dimension,
    get_system,
    local_maxima,
    orbit_diagram,
    poincare_section,
    power_spectrum,
)
from labkit.errors import ConfigError, DataError

G = torch.Generator().manual_seed(0)


def test_power_spectrum_peaks_at_the_frequency_and_keeps_the_variance():
    t = torch.arange(2000, dtype=torch.float64) * 0.01
    y = torch.stack([torch.sin(2 * math.pi * 2.0 * t), 0.5 * torch.cos(2 * math.pi * 7.5 * t)],
                    dim=-1)[None].expand(3, -1, -1)
    freqs, psd = power_spectrum(y, 0.01)
    assert psd.shape == (3, 1001, 2)
    assert float(freqs[psd[0, :, 0].argmax()]) == pytest.approx(2.0)
    assert float(freqs[psd[0, :, 1].argmax()]) == pytest.approx(7.5)
    # Parseval: with a boxcar window, sum(psd) df is the variance exactly.
    freqs, psd = power_spectrum(y, 0.01, window="boxcar")
    df = float(freqs[1] - freqs[0])
    torch.testing.assert_close((psd[0].sum(0) * df), y[0].var(0, correction=0), rtol=1e-10,
                               atol=0)


def test_correlation_dimension_of_a_line_and_a_square():
    u = torch.rand(1500, generator=G, dtype=torch.float64)
    line = torch.stack([u, 2 * u, -u], dim=-1)
    square = torch.cat([torch.rand(1500, 2, generator=G, dtype=torch.float64),
                        torch.zeros(1500, 1, dtype=torch.float64)], dim=-1)
    both = torch.stack([line, square])
    dims = correlation_dimension(both, r_min=0.02, r_max=0.2)
    assert dims.shape == (2,)
    assert float(dims[0]) == pytest.approx(1.0, abs=0.05)
    assert float(dims[1]) == pytest.approx(2.0, abs=0.1)


def test_lorenz_correlation_dimension_near_grassberger_procaccia():
    lorenz = get_system("Lorenz")
    traj = rk4(lorenz.vector_field(beta=8.0 / 3.0), lorenz.default_state(), (0.0, 220.0), 0.01,
               save_every=10)
    dim = correlation_dimension(traj.y[200:], r_min=0.3, r_max=3.0, theiler=10)
    assert float(dim) == pytest.approx(2.05, abs=0.05)  # 2.05 +- 0.01 (PRL 50, 346, 1983)


def test_poincare_section_of_a_circle():
    t = torch.linspace(0, 6 * math.pi, 3001, dtype=torch.float64)
    y = torch.stack([torch.cos(t), torch.sin(t)], dim=-1)
    section = poincare_section(y[None], t, normal=[0.0, 1.0], direction=1)
    pts, times = section.points[0], section.times[0]
    assert pts.shape == (2, 2)  # upward crossings of y = 0 at t = 2 pi and 4 pi
    torch.testing.assert_close(pts[:, 0], torch.ones(2, dtype=torch.float64), rtol=0, atol=1e-5)
    torch.testing.assert_close(times, torch.tensor([2 * math.pi, 4 * math.pi],
                                                   dtype=torch.float64), rtol=0, atol=1e-5)
    both = poincare_section(y[None], t, normal=[0.0, 1.0], direction=0)
    assert both.points[0].shape[0] == 5  # pi, 2 pi, ..., 5 pi (t = 0 and 6 pi are ends)
    d = section.as_dict()
    assert d["counts"] == [2] and d["times"] == [times.tolist()] and d["points"] == [pts.tolist()]
    assert section.summary() == "Poincare section: 2 crossings of 1 trajectories (2 to 2 each)"


def test_lorenz_section_lies_on_the_plane():
    lorenz = get_system("Lorenz")
    traj = rk4(lorenz.vector_field(), lorenz.default_state().expand(2, 3).clone(), (0.0, 30.0),
               0.005)
    section = poincare_section(traj.y, traj.t, normal=[0.0, 0.0, 1.0], offset=27.0)
    assert len(section.points) == 2 and section.points[0].shape[0] > 10
    torch.testing.assert_close(section.points[0][:, 2],
                               torch.full_like(section.points[0][:, 2], 27.0), rtol=0, atol=1e-9)


def test_bad_series_are_reported():
    with pytest.raises(DataError, match="non-finite"):
        power_spectrum(torch.tensor([[0.0], [math.nan], [1.0], [2.0]]), 0.1)
    with pytest.raises(DataError, match="at least 4 are needed"):
        power_spectrum(torch.zeros(3, 1), 0.1)
    with pytest.raises(ConfigError, match="window must be 'hann' or 'boxcar'"):
        power_spectrum(torch.zeros(8, 1), 0.1, window="kaiser")
    with pytest.raises(ConfigError, match="normal must be a non-zero vector of length 2"):
        poincare_section(torch.zeros(5, 2), torch.arange(5.0), normal=[0.0, 0.0, 1.0])
    with pytest.raises(DataError, match="no pairs closer than r_min"):
        correlation_dimension(torch.rand(50, 2, generator=G) * 100, r_min=1e-6, r_max=1e-5)


def test_local_maxima_are_refined_between_samples():
    t = torch.linspace(0, 4 * math.pi, 60, dtype=torch.float64)  # coarse: ~0.2 per sample
    peaks = local_maxima(torch.sin(t)[None])[0]
    assert peaks.shape == (2,)
    torch.testing.assert_close(peaks, torch.ones(2, dtype=torch.float64), rtol=0, atol=2e-3)


def test_rossler_orbit_diagram_shows_period_doubling():
    rossler = get_system("Rossler")
    values = torch.tensor([2.5, 3.5, 4.0, 5.7], dtype=torch.float64)
    diagram = orbit_diagram(rossler, "c", values, n_ics=2, t_transient=300.0, t_record=100.0,
                            dt=0.02, variable=0)
    distinct = [len(torch.unique((m * 100).round())) for m in diagram.maxima]
    assert distinct[:3] == [1, 2, 4]  # period 1, 2, 4 (maxima of x, to 0.01)
    assert distinct[3] > 10  # c = 5.7: chaos
    d = diagram.as_dict()
    assert d["parameter"] == "c" and d["values"] == values.tolist() and d["variable"] == 0
    assert d["n_maxima"] == [len(m) for m in diagram.maxima]
    assert d["maxima"][1] == diagram.maxima[1].tolist()
    assert diagram.summary().startswith("orbit diagram: maxima of variable 0 for 4 values "
                                        "of c in [2.5, 5.7]:")
    with pytest.raises(ConfigError, match="Rossler has no parameter 'rho'"):
        orbit_diagram(rossler, "rho", values, t_transient=1.0, t_record=1.0, dt=0.1)
