"""Adaptive Dormand-Prince 5(4): exact solutions, scipy, per-trajectory step control."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from labkit.core import dopri5
from labkit.dynamics import get_system
from labkit.errors import ConfigError, DivergenceError


def oscillator(omega):
    return lambda t, y: torch.stack((y[..., 1], -(omega**2) * y[..., 0]), dim=-1)


def grid(t1=10.0, n=101):
    return torch.linspace(0.0, t1, n, dtype=torch.float64)


def test_harmonic_oscillator_against_its_exact_solution():
    y0 = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    traj = dopri5(oscillator(1.0), y0, grid(), rtol=1e-10, atol=1e-12)
    exact = torch.stack([torch.cos(traj.t), 2 * torch.sin(traj.t)])
    assert traj.y.shape == (2, 101, 2) and traj.n_diverged == 0
    assert (traj.y[..., 0] - exact).abs().max() < 1e-9


def test_error_falls_with_the_tolerance():
    y0 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    errors = []
    for rtol in (1e-5, 1e-7, 1e-9):
        traj = dopri5(oscillator(1.0), y0, grid(), rtol=rtol, atol=rtol * 1e-2)
        errors.append(float((traj.y[:, 0] - torch.cos(traj.t)).abs().max()))
    assert errors[0] > 10 * errors[1] > 100 * errors[2]


def test_each_trajectory_has_its_own_steps_and_is_unaffected_by_the_others():
    omega = torch.tensor([1.0, 30.0], dtype=torch.float64)
    field = lambda t, y: torch.stack((y[..., 1], -(omega**2) * y[..., 0]), dim=-1)  # noqa: E731
    y0 = torch.tensor([[1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    both = dopri5(field, y0, grid(), rtol=1e-8, atol=1e-10)
    slow_alone = dopri5(oscillator(1.0), y0[0], grid(), rtol=1e-8, atol=1e-10)
    assert int(both.n_steps[1]) > 10 * int(both.n_steps[0])
    assert int(both.n_steps[0]) == int(slow_alone.n_steps)
    torch.testing.assert_close(both.y[0], slow_alone.y, rtol=0, atol=1e-14)


def test_lorenz_against_scipy_dop853():
    lorenz = get_system("Lorenz")
    p = lorenz.parameters
    y0 = np.asarray(lorenz.initial_condition)

    def f(t, y):
        return [p["sigma"] * (y[1] - y[0]), y[0] * (p["rho"] - y[2]) - y[1],
                y[0] * y[1] - p["beta"] * y[2]]

    t_eval = np.linspace(0.0, 2.0, 41)
    ref = solve_ivp(f, (0.0, 2.0), y0, method="DOP853", rtol=1e-13, atol=1e-13, t_eval=t_eval)
    traj = dopri5(lorenz.vector_field(), torch.tensor(y0), torch.tensor(t_eval),
                  rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(traj.y.numpy(), ref.y.T, rtol=0, atol=1e-5)


def test_time_is_per_trajectory_for_nonautonomous_fields():
    field = lambda t, y: torch.cos(t)[..., None] * torch.ones_like(y)  # noqa: E731
    y0 = torch.zeros(3, 1, dtype=torch.float64)
    traj = dopri5(field, y0, grid(6.0, 31), rtol=1e-10, atol=1e-12)
    assert (traj.y[..., 0] - torch.sin(traj.t)).abs().max() < 1e-9


def test_parameter_batch_broadcasts():
    lorenz = get_system("Lorenz")
    rho = torch.tensor([[20.0], [35.0]], dtype=torch.float64)
    y0 = lorenz.default_state().expand(2, 3, 3).clone()
    traj = dopri5(lorenz.vector_field(rho=rho), y0, grid(1.0, 11), rtol=1e-9, atol=1e-9)
    alone = dopri5(lorenz.vector_field(rho=35.0), y0[1, 0], grid(1.0, 11), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(traj.y[1, 0], alone.y, rtol=0, atol=1e-12)


def test_blow_up_is_flagged_per_trajectory_never_silent():
    blowup = lambda t, y: y**2  # noqa: E731 - y' = y^2 reaches infinity at t = 1 / y0
    y0 = torch.tensor([[0.5], [2.0], [-1.0]], dtype=torch.float64)
    traj = dopri5(blowup, y0, grid(3.0, 31), rtol=1e-8, atol=1e-10, bound=1e6)
    assert traj.diverged.tolist() == [True, True, False]
    assert 1.99 < float(traj.diverged_at[0]) <= 2.0 and 0.49 < float(traj.diverged_at[1]) <= 0.5
    assert torch.isnan(traj.y[0, -1]).all() and torch.isfinite(traj.y[2]).all()
    assert float(traj.y[2, -1, 0]) == pytest.approx(-1.0 / 4.0, rel=1e-7)  # y = -1 / (1 + t)
    # "raise" stops at the first divergence (y0 = 2 blows up first, at t = 0.5).
    with pytest.raises(DivergenceError, match=r"1 of 3 trajectories diverged; first at .*\[1\], 0\.49"):
        dopri5(blowup, y0, grid(3.0, 31), on_divergence="raise")


def test_float32_runs():
    traj = dopri5(oscillator(1.0), torch.tensor([1.0, 0.0]), torch.linspace(0, 5, 11),
                  rtol=1e-5, atol=1e-7)
    assert traj.y.dtype == torch.float32
    assert (traj.y[:, 0] - torch.cos(traj.t)).abs().max() < 1e-4


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"t_eval": [0.0]}, "t_eval must hold >= 2 increasing times"),
    ({"t_eval": [0.0, 2.0, 1.0]}, "t_eval must hold >= 2 increasing times"),
    ({"rtol": -1.0}, "rtol must be a finite number >= 0, got -1.0"),
    ({"rtol": 0.0, "atol": 0.0}, "cannot both be 0"),
    ({"on_divergence": "ignore"}, "on_divergence must be 'flag' or 'raise'"),
])
def test_bad_arguments_are_named(kwargs, message):
    args = {"t_eval": [0.0, 1.0]} | kwargs
    t_eval = args.pop("t_eval")
    with pytest.raises(ConfigError, match=message):
        dopri5(oscillator(1.0), torch.tensor([1.0, 0.0], dtype=torch.float64), t_eval, **args)


def test_non_finite_start_is_refused():
    with pytest.raises(ConfigError, match="non-finite"):
        dopri5(oscillator(1.0), torch.tensor([math.nan, 0.0]), [0.0, 1.0])
