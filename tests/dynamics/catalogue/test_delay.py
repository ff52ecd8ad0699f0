"""Delay equations by the method of steps: measured order, a two-interval scipy reference
for every delay system of the catalogue, batches and bad input."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from labkit.dynamics import integrate_delay, list_systems
from labkit.errors import ConfigError

DELAYS = list_systems("delay")


def two_interval_reference(name: str, history: float, n_eval: int = 5):
    """x on [0, 2 tau] by scipy: on [0, tau] the delayed value is the constant history, an
    ODE; on [tau, 2 tau] it is the dense solution of the first interval."""
    import dysts.flows

    model = getattr(dysts.flows, name)()
    names = list(inspect.signature(model._rhs).parameters)
    args = [model.parameters[p] for p in names[names.index("t") + 1:]]
    tau = float(model.parameters["tau"])
    kw = {"method": "DOP853", "rtol": 1e-12, "atol": 1e-13, "dense_output": True}
    first = solve_ivp(lambda t, x: [model._rhs(x[0], history, t, *args)], (0, tau), [history], **kw)
    second = solve_ivp(lambda t, x: [model._rhs(x[0], first.sol(t - tau)[0], t, *args)],
                       (tau, 2 * tau), first.y[:, -1], **kw)
    return tau, lambda t: np.where(t <= tau, first.sol(np.minimum(t, tau))[0],
                                   second.sol(np.maximum(t, tau))[0])


def test_catalogue_has_dysts_six_delay_systems():
    assert DELAYS == sorted(["IkedaDelay", "MackeyGlass", "PiecewiseCircuit", "ScrollDelay",
                             "SprottDelay", "VossDelay"])


def test_mackey_glass_converges_at_fourth_order():
    tau, ref = two_interval_reference("MackeyGlass", 0.5)
    errors = [abs(float(integrate_delay("MackeyGlass", 0.5, (0.0, 2 * tau), dt).y[-1, 0])
                  - float(ref(np.array(2 * tau)))) for dt in (1.0, 0.5, 0.25)]
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(np.abs(orders - 4) < 0.2), orders


@pytest.mark.parametrize("name", DELAYS)
def test_every_delay_system_matches_scipy_over_two_delays(name):
    history = 0.3
    tau, ref = two_interval_reference(name, history)
    dt = tau / 400
    traj = integrate_delay(name, history, (0.0, 2 * tau), dt, save_every=40)
    expected = ref(traj.t.numpy())
    scale = max(1.0, np.abs(expected).max())
    np.testing.assert_allclose(traj.y[:, 0].numpy(), expected, rtol=0, atol=1e-6 * scale)


def test_batches_of_histories_and_parameters_equal_single_runs():
    history = torch.tensor([[0.2], [0.5], [1.1]], dtype=torch.float64)  # [3, 1]
    beta = torch.tensor([0.2, 0.25], dtype=torch.float64)  # broadcasts to [3, 2]
    batch = integrate_delay("MackeyGlass", history, (0.0, 32.0), 0.5, beta=beta)
    assert batch.y.shape == (3, 2, 65, 1)
    alone = integrate_delay("MackeyGlass", 0.5, (0.0, 32.0), 0.5, beta=0.25)
    torch.testing.assert_close(batch.y[1, 1], alone.y, rtol=0, atol=1e-14)


def test_the_history_ends_at_t0():
    """MackeyGlass is autonomous: starting at t0 shifts the times and nothing else."""
    at_zero = integrate_delay("MackeyGlass", 0.5, (0.0, 32.0), 0.5, save_every=4)
    later = integrate_delay("MackeyGlass", 0.5, (5.0, 37.0), 0.5, save_every=4)
    torch.testing.assert_close(later.t, at_zero.t + 5.0, rtol=0, atol=1e-12)
    torch.testing.assert_close(later.y, at_zero.y, rtol=0, atol=1e-14)


def test_diverging_delay_run_is_flagged():
    traj = integrate_delay("VossDelay", torch.tensor([0.2, 5.0], dtype=torch.float64),
                           (0.0, 26.56), 0.0332, bound=1e6)
    assert traj.diverged.tolist() == [False, True]
    assert 0 < float(traj.diverged_at[1]) <= 26.56 and torch.isnan(traj.y[1, -1]).all()


@pytest.mark.parametrize(("call", "message"), [
    (lambda: integrate_delay("MackeyGlass", 0.5, (0.0, 10.0), 0.3), "dt must divide tau = 16"),
    (lambda: integrate_delay("MackeyGlass", 0.5, (0.0, 10.0), 0.5, gamma2=1.0),
     r"unknown parameter\(s\) \['gamma2'\] for MackeyGlass"),
    (lambda: integrate_delay("MackeyGlas", 0.5, (0.0, 10.0), 0.5), "closest names: MackeyGlass"),
    (lambda: integrate_delay("MackeyGlass", float("nan"), (0.0, 10.0), 0.5), "non-finite"),
    (lambda: integrate_delay("MackeyGlass", 0.5, 10.0, 0.5),
     r"t_span must be a pair \(t0, t1\) .* got 10.0"),
    (lambda: integrate_delay("MackeyGlass", 0.5, (4.0, 4.0), 0.5), r"t1 > t0, got \(4.0, 4.0\)"),
    (lambda: integrate_delay("MackeyGlass", 0.5, (0.0, 10.0), -0.5), "dt must be a finite number > 0"),
])
def test_bad_input_is_named(call, message):
    with pytest.raises(ConfigError, match=message):
        call()
