"""Reconstruction data from the catalogue: the LSODA series equals an independent tight
scipy solution and labkit's own RK4 (to the integrators' error, before chaos separates
them), the NumPy right-hand side equals the torch field it stands in for, and a long
series takes seconds, not minutes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from labkit.core.integrate import rk4
from labkit.dynamics import get_system, reconstruction_data
from labkit.dynamics.reconstruction._data import _integrate, _numpy_field
from labkit.errors import DivergenceError

#: Agreement with a DOP853 solution at rtol = atol = 1e-13 over the first 3 time units of
#: Lorenz-63 (measured: 5e-8; LSODA at 1e-10, growing at the Lyapunov rate).
REF_ATOL = 1e-6


def _lorenz_reference(dt: float, n: int) -> np.ndarray:
    """Lorenz-63 written out by hand, integrated by DOP853 at 1e-13, sampled at k dt."""
    s = get_system("Lorenz")
    p = s.parameters

    def f(t, y):
        return [p["sigma"] * (y[1] - y[0]), y[0] * (p["rho"] - y[2]) - y[1],
                y[0] * y[1] - p["beta"] * y[2]]

    grid = np.arange(n + 1) * dt
    sol = solve_ivp(f, (0.0, grid[-1]), s.default_state().numpy(), method="DOP853",
                    rtol=1e-13, atol=1e-13, t_eval=grid)
    return sol.y.T


def test_series_equals_a_tight_independent_solution():
    dt, n = 0.01, 300
    y = _integrate(get_system("Lorenz"), {}, dt, n).numpy()
    np.testing.assert_allclose(y, _lorenz_reference(dt, n), rtol=0, atol=REF_ATOL)


def test_series_equals_labkits_rk4_before_chaos_separates_them():
    s = get_system("Lorenz")
    dt, n = 0.01, 200
    y = _integrate(s, {}, dt, n)
    ref = rk4(s.vector_field(), s.default_state(), (0.0, n * dt), dt / 10, save_every=10).y
    torch.testing.assert_close(y, ref, rtol=0, atol=1e-6)


def test_splits_and_transient_on_the_sample_grid():
    d = reconstruction_data("Lorenz", n_steps=100, dt=0.01, transient=50, n_test=30,
                            standardise=False)
    full = _integrate(get_system("Lorenz"), {}, 0.01, 180)
    torch.testing.assert_close(d.train, full[51:151], rtol=0, atol=0)
    torch.testing.assert_close(d.test, full[151:181], rtol=0, atol=0)


@pytest.mark.parametrize("name", ["Lorenz", "Rossler", "Lorenz96", "Duffing", "ForcedVanDerPol",
                                  "CircadianRhythm"])
def test_numpy_field_equals_the_torch_field(name):
    """Static dysts right-hand sides, method ones (Lorenz96, CircadianRhythm) and
    non-autonomous ones (Duffing, ForcedVanDerPol, CircadianRhythm)."""
    s = get_system(name)
    f = _numpy_field(s, {})
    assert f.__name__ == "field"  # dysts' NumPy code, not the torch fallback
    y0 = s.default_state()
    gen = torch.Generator().manual_seed(0)
    for k in range(5):
        y = y0 * (1 + 0.1 * torch.randn(y0.shape, generator=gen, dtype=torch.float64))
        t = 0.37 * k
        want = s.rhs(torch.tensor(t, dtype=torch.float64), y).numpy()
        np.testing.assert_allclose(f(t, y.numpy()), want, rtol=1e-12, atol=1e-12)


def test_parameter_overrides_reach_the_numpy_field():
    s = get_system("Lorenz")
    y = s.default_state().numpy()
    f = _numpy_field(s, {"rho": 10.0})
    np.testing.assert_allclose(f(0.0, y), s.rhs(0.0, s.default_state(), rho=10.0).numpy(),
                               rtol=1e-14)


def test_hand_ported_systems_use_the_torch_field():
    s = get_system("MacArthur")
    f = _numpy_field(s, {})
    assert f.__name__ == "slow"
    y0 = s.default_state()
    np.testing.assert_allclose(f(0.0, y0.numpy()), s.rhs(0.0, y0).numpy(), rtol=1e-14)


def test_divergence_is_an_error_not_nans():
    with pytest.raises(DivergenceError, match=r"integrating Lorenz failed between t = 0.9 and 1 \(LSODA: Excess work done on this call \(perhaps wrong Dfun type\); at most"):
        reconstruction_data("Lorenz", n_steps=100, dt=0.1, transient=0, sigma=-10.0)


def test_lorenz_uses_the_fast_numpy_field():
    """The speed itself is measured outside the tests (the reconstruction_data docstring:
    about 10 s for 201k samples); here only that Lorenz takes the NumPy path."""
    s = get_system("Lorenz")
    f = _numpy_field(s, {})
    assert f.__name__ != "slow"
    y0 = s.default_state()
    np.testing.assert_allclose(f(0.0, y0.numpy()), s.rhs(0.0, y0).numpy(), rtol=1e-12)
    d = reconstruction_data("Lorenz", n_steps=2_000, n_test=2_000)
    assert d.train.shape == (2_000, 3) and d.test.shape == (2_000, 3)
