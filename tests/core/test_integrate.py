"""RK4 against exact solutions, its measured order, and scipy at tight tolerance."""

import math

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from labkit.core import euler, rk4
from labkit.dynamics import get_system, lorenz
from labkit.errors import ConfigError, DivergenceError


def oscillator(t, y):
    return torch.stack((y[..., 1], -y[..., 0]), dim=-1)


def test_harmonic_oscillator_exact_solution_batched():
    y0 = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, -1.0]], dtype=torch.float64)
    traj = rk4(oscillator, y0, (0.0, 2 * math.pi), 2 * math.pi / 2000)
    t = traj.t
    exact_x = y0[:, :1] * torch.cos(t) + y0[:, 1:] * torch.sin(t)
    assert traj.y.shape == (3, 2001, 2)
    # RK4's global error on this oscillator is about T h^4 / 120 |y0| = 1.6e-11 here.
    torch.testing.assert_close(traj.y[..., 0], exact_x, atol=2e-11, rtol=0)
    assert traj.n_diverged == 0


def test_measured_order_is_four():
    y0 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    errors = []
    for n in (50, 100, 200, 400):
        y = rk4(oscillator, y0, (0.0, 5.0), 5.0 / n).y[-1]
        exact = torch.tensor([math.cos(5.0), -math.sin(5.0)], dtype=torch.float64)
        errors.append(float((y - exact).norm()))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(np.abs(orders - 4.0) < 0.1), orders


def test_euler_is_first_order_and_exact_for_linear_decay():
    # y' = -y: one Euler step multiplies by (1 - h) exactly, so y_n = (1 - h)^n y0
    y0 = torch.tensor([[2.0], [-1.0]], dtype=torch.float64)
    traj = euler(lambda t, y: -y, y0, (0.0, 1.0), 0.125)
    powers = (1 - 0.125) ** torch.arange(9, dtype=torch.float64)
    torch.testing.assert_close(traj.y[..., 0], y0 * powers, rtol=1e-15, atol=0)
    errors = []
    for n in (100, 200, 400, 800):
        y = euler(oscillator, torch.tensor([1.0, 0.0], dtype=torch.float64), (0.0, 2.0),
                  2.0 / n).y[-1]
        errors.append(float((y - torch.tensor([math.cos(2.0), -math.sin(2.0)],
                                              dtype=torch.float64)).norm()))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(np.abs(orders - 1.0) < 0.05), orders


def test_lorenz_matches_scipy_at_tight_tolerance():
    system = get_system("Lorenz")
    p = dict(system.parameters)
    y0 = np.array(system.initial_condition)

    def f(t, y):
        return [p["sigma"] * (y[1] - y[0]), y[0] * (p["rho"] - y[2]) - y[1],
                y[0] * y[1] - p["beta"] * y[2]]

    ref = solve_ivp(f, (0, 2.0), y0, method="DOP853", rtol=1e-13, atol=1e-13,
                    t_eval=np.linspace(0, 2.0, 11))
    traj = rk4(lambda t, y: lorenz(t, y, **p), torch.tensor(y0), (0.0, 2.0), 1e-4,
               save_every=2000)
    np.testing.assert_allclose(traj.y.numpy(), ref.y.T, rtol=0, atol=1e-8)


def test_parameter_batch_broadcasts():
    rho = torch.tensor([10.0, 28.0, 99.0], dtype=torch.float64)
    y0 = torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64).expand(3, 3)
    batch = rk4(lambda t, y: lorenz(t, y, rho=rho), y0, (0.0, 1.0), 0.01).y
    for i, r in enumerate(rho.tolist()):
        single = rk4(lambda t, y, r=r: lorenz(t, y, rho=r), y0[i], (0.0, 1.0), 0.01).y
        torch.testing.assert_close(batch[i], single, rtol=0, atol=1e-12)


def test_divergence_is_flagged_with_time_and_not_silent():
    blowup = lambda t, y: y**2  # noqa: E731 - y' = y^2 blows up at t = 1/y0
    y0 = torch.tensor([[0.5], [2.0], [-1.0]], dtype=torch.float64)
    traj = rk4(blowup, y0, (0.0, 3.0), 1e-3, bound=1e6)
    assert traj.diverged.tolist() == [True, True, False]
    # Exact blow-up times 2.0 and 0.5. Near the singularity RK4 lags the true solution,
    # so the bound 1e6 is crossed within a step or two after it: flagged in [t*, t* + 2 dt].
    assert 2.0 <= float(traj.diverged_at[0]) <= 2.002
    assert 0.5 <= float(traj.diverged_at[1]) <= 0.502
    assert math.isnan(float(traj.diverged_at[2]))
    assert torch.isnan(traj.y[0, -1]).all() and torch.isfinite(traj.y[2]).all()
    with pytest.raises(DivergenceError, match="2 of 3 trajectories diverged"):
        traj.raise_if_diverged()
    with pytest.raises(DivergenceError):
        rk4(blowup, y0, (0.0, 3.0), 1e-3, on_divergence="raise")


def test_to_xarray_named_dims():
    y0 = torch.zeros(4, 2, dtype=torch.float64) + 1
    ds = rk4(oscillator, y0, (0.0, 1.0), 0.1).to_xarray(var_names=["x", "v"])
    assert ds["y"].dims == ("ic", "time", "var")
    assert list(ds["var"].values) == ["x", "v"]
    assert ds.sizes == {"ic": 4, "time": 11, "var": 2}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dt": 0.0}, "dt must be a finite number > 0, got 0.0"),
        ({"dt": 0.3}, "whole number of steps"),
        ({"t_span": (1.0, 0.0)}, "t_span must be increasing"),
        ({"save_every": 0}, "save_every must be an int >= 1, got 0"),
        ({"on_divergence": "ignore"}, "on_divergence must be 'flag' or 'raise', got 'ignore'"),
        ({"fast": "jit"}, "fast must be 'auto', 'compiled', 'eager' or 'graph', got 'jit'"),
        ({"fast": "graph"}, "fast='graph' needs a CUDA tensor, got y0 on cpu"),
    ],
)
def test_bad_arguments(kwargs, message):
    args = {"dt": 0.1, "t_span": (0.0, 1.0)} | kwargs
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        rk4(oscillator, torch.ones(2, dtype=torch.float64), **args)


def test_non_finite_initial_state():
    with pytest.raises(ConfigError, match="non-finite"):
        rk4(oscillator, torch.tensor([float("nan"), 0.0]), (0.0, 1.0), 0.1)


def test_saved_samples_do_not_depend_on_save_every():
    # The steps between two saved samples run as one segment; a last, shorter segment
    # (10 steps saved every 3) must land on the same states as saving every step.
    y0 = torch.tensor([[1.0, 1.0, 1.0], [-3.0, 2.0, 20.0]], dtype=torch.float64)
    every = rk4(lorenz, y0, (0.0, 0.1), 0.01)
    coarse = rk4(lorenz, y0, (0.0, 0.1), 0.01, save_every=3)
    torch.testing.assert_close(coarse.t, every.t[[0, 3, 6, 9, 10]], rtol=0, atol=1e-15)
    torch.testing.assert_close(coarse.y, every.y[:, [0, 3, 6, 9, 10]], rtol=0, atol=1e-13)


def _lorenz_ensemble(n: int, device: str, dtype=torch.float32) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return (torch.tensor([1.0, 1.0, 20.0]) + torch.randn(n, 3, generator=gen)).to(device, dtype)


@pytest.mark.gpu
def test_cuda_graph_path_matches_eager():
    y0 = _lorenz_ensemble(1000, "cuda")
    eager = rk4(lorenz, y0, (0.0, 5.0), 0.01, save_every=10, fast="eager")
    graph = rk4(lorenz, y0, (0.0, 5.0), 0.01, save_every=10, fast="graph")
    auto = rk4(lorenz, y0, (0.0, 5.0), 0.01, save_every=10)
    # The same kernels in the same order: equal up to float32 reassociation noise,
    # far below Lorenz's growth over 5 time units.
    torch.testing.assert_close(graph.y, eager.y, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(auto.y, eager.y, rtol=1e-4, atol=1e-4)


@pytest.mark.gpu
def test_cuda_graph_path_flags_divergence():
    blowup = lambda t, y: y**2  # noqa: E731
    y0 = torch.tensor([[0.5], [2.0], [-1.0]], dtype=torch.float64, device="cuda")
    traj = rk4(blowup, y0, (0.0, 3.0), 1e-3, save_every=5, fast="graph")
    assert traj.diverged.tolist() == [True, True, False]
    assert 2.0 <= float(traj.diverged_at[0]) <= 2.006
    assert torch.isnan(traj.y[0, -1]).all() and torch.isfinite(traj.y[2]).all()


@pytest.mark.gpu
def test_uncapturable_field_falls_back_with_a_warning():
    def syncing(t, y):  # reads a value back to the host: not capturable
        return -y * float(y.abs().max().item() > -1.0)

    y0 = _lorenz_ensemble(8, "cuda")
    with pytest.warns(RuntimeWarning, match="could not be captured"):
        auto = rk4(syncing, y0, (0.0, 1.0), 0.01, save_every=2)
    exact = y0[:, None, :] * torch.exp(-auto.t)[:, None]
    torch.testing.assert_close(auto.y, exact, rtol=1e-5, atol=1e-5)
    with pytest.raises(ConfigError, match="could not be captured"), pytest.warns(RuntimeWarning):
        rk4(syncing, y0, (0.0, 1.0), 0.01, save_every=2, fast="graph")
