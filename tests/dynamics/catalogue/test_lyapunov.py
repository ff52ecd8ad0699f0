"""Lyapunov spectra against exact values (linear flows), an exact identity (Lorenz's
constant divergence) and the literature (Lorenz-63)."""

from __future__ import annotations

import math
import re

import pytest
import torch

from labkit.dynamics import get_system, kaplan_yorke_dimension, lyapunov_spectrum
from labkit.errors import ConfigError, DivergenceError

#: Largest Lyapunov exponent of Lorenz-63 (sigma 10, rho 28, beta 8/3): J. C. Sprott,
#: Chaos and Time-Series Analysis (Oxford University Press, 2003), table A.1.
LORENZ_LAMBDA1 = 0.9056


def linear(a: torch.Tensor):
    return lambda t, y: y @ a.T


def test_linear_diagonal_flow_gives_its_eigenvalues():
    a = torch.diag(torch.tensor([0.5, -1.0, -2.0], dtype=torch.float64))
    y0 = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    res = lyapunov_spectrum(linear(a), y0, dt=0.01, time=4.0, bound=1e12)
    # RK4's growth factor per step is exp(h lambda) + O(h^5): exact to ~1e-9 here.
    torch.testing.assert_close(res.exponents, torch.tensor([[0.5, -1.0, -2.0]] * 4,
                               dtype=torch.float64), rtol=0, atol=1e-8)


def test_result_as_dict_and_summary():
    a = torch.diag(torch.tensor([0.5, -1.0], dtype=torch.float64))
    y0 = torch.tensor([[1.0, 1.0], [2.0, -1.0], [0.5, 3.0]], dtype=torch.float64)
    res = lyapunov_spectrum(linear(a), y0, dt=0.01, time=2.0, bound=1e12)
    d = res.as_dict()
    assert d["exponents"] == res.exponents.tolist() and d["n_ics"] == 3 and d["time"] == 2.0
    assert d["mean"] == pytest.approx([0.5, -1.0], abs=1e-8)
    assert d["stderr"] == pytest.approx([0.0, 0.0], abs=1e-8)
    assert d["kaplan_yorke"] == pytest.approx(1.5, abs=1e-8)  # 1 + 0.5 / |-1|
    lines = res.summary().splitlines()
    assert lines[0] == "Lyapunov spectrum over 3 initial condition(s), time 2"
    assert re.fullmatch(r"  0\.5 \+- \S+, -1 \+- \S+; Kaplan-Yorke 1\.5", lines[1]), lines[1]
    single = lyapunov_spectrum(linear(a), y0[0], dt=0.01, time=2.0, bound=1e12)
    assert single.n_ics == 1 and single.as_dict()["stderr"] is None
    assert single.summary().splitlines()[1] == "  0.5, -1; Kaplan-Yorke 1.5"


def test_rotation_with_growth_has_a_double_exponent():
    a = torch.tensor([[0.3, -2.0], [2.0, 0.3]], dtype=torch.float64)
    res = lyapunov_spectrum(linear(a), torch.tensor([[1.0, 0.0], [0.0, 2.0]],
                            dtype=torch.float64), dt=0.01, time=5.0, bound=1e12)
    torch.testing.assert_close(res.exponents, torch.full((2, 2), 0.3, dtype=torch.float64),
                               rtol=0, atol=1e-8)


@pytest.mark.slow
def test_lorenz_spectrum_matches_the_literature_and_the_exact_sum():
    lorenz = get_system("Lorenz")
    p = {"sigma": 10.0, "rho": 28.0, "beta": 8.0 / 3.0}
    gen = torch.Generator().manual_seed(0)
    y0 = lorenz.default_state() + 2 * torch.randn(32, 3, dtype=torch.float64, generator=gen)
    res = lyapunov_spectrum(lorenz.vector_field(**p), y0, dt=0.01, time=100.0,
                            transient=10.0, qr_every=5)
    lam, err = res.mean, res.stderr
    assert abs(lam[0] - LORENZ_LAMBDA1) / LORENZ_LAMBDA1 < 0.02
    assert abs(lam[0] - LORENZ_LAMBDA1) < 4 * err[0] + 0.005  # consistent with its error bar
    assert 0 < err[0] < 0.02
    assert abs(lam[1]) < 0.02  # the flow direction
    # The phase-space contraction of Lorenz is constant: sum = -(sigma + 1 + beta).
    exact_sum = -(p["sigma"] + 1 + p["beta"])
    assert abs(float(res.exponents.sum(-1).mean()) - exact_sum) < 1e-3
    assert float(res.kaplan_yorke.mean()) == pytest.approx(2.06, abs=0.01)


def test_exact_and_difference_tangents_agree():
    lorenz = get_system("Lorenz")
    y0 = lorenz.default_state().expand(2, 3).clone()
    y0[1] += 0.5
    kwargs = {"dt": 0.01, "time": 2.0, "transient": 0.5, "qr_every": 5}
    a = lyapunov_spectrum(lorenz.vector_field(), y0, tangent="difference", **kwargs)
    b = lyapunov_spectrum(lorenz.vector_field(), y0, tangent="jvp", **kwargs)
    torch.testing.assert_close(a.exponents, b.exponents, rtol=0, atol=1e-6)


def test_parameter_batch_and_leading_exponents_only():
    lorenz = get_system("Lorenz")
    rho = torch.tensor([[28.0], [0.5]], dtype=torch.float64)  # chaos, and a stable origin
    y0 = lorenz.default_state().expand(2, 3, 3).clone() * 0.1
    res = lyapunov_spectrum(lorenz.vector_field(rho=rho), y0, dt=0.01, time=20.0,
                            transient=5.0, n_exponents=1, ic_axis=1)
    assert res.exponents.shape == (2, 3, 1) and res.mean.shape == (2, 1)
    assert float(res.mean[0, 0]) > 0.5
    # rho < 1: the origin is a stable node; slowest rate (beta, 1 + sigma roots) < 0.
    assert float(res.mean[1, 0]) < -0.3


def test_diverging_trajectory_is_an_error_not_a_number():
    lorenz = get_system("Lorenz")
    with pytest.raises(DivergenceError, match="diverged"):
        lyapunov_spectrum(lorenz.vector_field(beta=-1.0), lorenz.default_state()[None],
                          dt=0.01, time=30.0)


@pytest.mark.parametrize(("spectrum", "expected"), [
    ([1.0, 0.0, -2.0], 2.5), ([-1.0, -2.0], 0.0), ([1.0, 2.0], 2.0),
    ([0.9056, 0.0, -14.5723], 2.0 + 0.9056 / 14.5723)])
def test_kaplan_yorke_dimension(spectrum, expected):
    value = kaplan_yorke_dimension(torch.tensor(spectrum, dtype=torch.float64))
    assert float(value) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"dt": 0.0}, "dt must be a finite number > 0, got 0.0"),
    ({"time": -1.0}, "time must be a finite number > 0"),
    ({"n_exponents": 4}, r"n_exponents must be an int in \[1, 3\], got 4"),
    ({"tangent": "exact"}, "tangent must be 'difference' or 'jvp', got 'exact'"),
])
def test_bad_arguments_are_named(kwargs, message):
    args = {"dt": 0.01, "time": 1.0} | kwargs
    with pytest.raises(ConfigError, match=message):
        lyapunov_spectrum(get_system("Lorenz").vector_field(),
                          get_system("Lorenz").default_state()[None], **args)


def test_error_bar_needs_two_initial_conditions():
    res = lyapunov_spectrum(get_system("Lorenz").vector_field(),
                            get_system("Lorenz").default_state()[None], dt=0.01, time=0.5)
    assert math.isfinite(float(res.mean[0]))
    with pytest.raises(ConfigError, match="at least 2 initial conditions"):
        res.stderr  # noqa: B018


@pytest.mark.parametrize("tangent", ["difference", "jvp"])
def test_observe_sees_the_measured_trajectory(tangent):
    """``observe`` gets every state of the averaging phase: the plain RK4 trajectory."""
    from labkit.core import rk4

    lorenz = get_system("Lorenz")
    y0 = lorenz.default_state().expand(2, 3).clone()
    seen = []
    lyapunov_spectrum(lorenz.vector_field(), y0, dt=0.01, time=0.5, tangent=tangent,
                      observe=lambda t, y: seen.append((float(t), y.clone())))
    traj = rk4(lorenz.vector_field(), y0, t_span=(0.0, 0.5), dt=0.01)
    assert len(seen) == 50 and seen[-1][0] == pytest.approx(0.5)
    torch.testing.assert_close(torch.stack([y for _, y in seen], dim=-2), traj.y[..., 1:, :],
                               rtol=1e-12, atol=1e-12)
