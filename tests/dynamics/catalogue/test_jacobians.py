"""Jacobians: dysts' hand-written ones against autograd and finite differences across the
catalogue, the choice ``method="auto"`` makes, and the Kepler solve behind
BlinkingVortexMap (value and derivatives)."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import torch

from labkit.core import rk4
from labkit.dynamics import get_system, list_systems
from labkit.dynamics.catalogue._catalogue import (
    ANALYTIC_JACOBIAN_EXCLUDED,
    _as_matrix,
    _build,
    _dysts_jacobian,
)
from labkit.dynamics.catalogue._ports import solve_kepler
from labkit.dynamics.catalogue._torchnp import torch_numpy
from labkit.errors import ConfigError

#: The flows for which dysts writes a Jacobian (``_jac``), right or wrong.
WITH_DYSTS_JACOBIAN = [n for n in list_systems("flow") if _dysts_jacobian(n) is not None]
#: Relative to the largest entry of each Jacobian. Autograd and a correct analytic
#: Jacobian do the same arithmetic up to rounding (measured worst: 2e-16, JerkCircuit);
#: central differences with steps 1e-6 (1 + |y|) err by ~h^2 and rounding/h (measured
#: worst: 7e-10, JerkCircuit). A wrong entry is off by O(1) of its own terms.
AUTOGRAD_TOLERANCE = 1e-12
DIFFERENCE_TOLERANCE = 1e-7
#: States along the attractor: RK4 with dysts' dt from the default initial condition.
TRAJECTORY_STEPS, SAVE_EVERY = 200, 25


def test_the_flows_with_a_dysts_jacobian_and_the_ones_labkit_uses():
    assert len(WITH_DYSTS_JACOBIAN) == 60 and {"Lorenz", "Rossler", "Chua"} <= set(WITH_DYSTS_JACOBIAN)
    assert set(ANALYTIC_JACOBIAN_EXCLUDED) <= set(WITH_DYSTS_JACOBIAN)
    for name in list_systems("flow") + list_systems("map"):
        usable = name in WITH_DYSTS_JACOBIAN and name not in ANALYTIC_JACOBIAN_EXCLUDED
        assert get_system(name).has_analytic_jacobian == usable, name


def _attractor_states(system):
    """``[8, dim]`` states along a short RK4 trajectory from dysts' initial condition."""
    traj = rk4(system.vector_field(), system.default_state(),
               (0.0, TRAJECTORY_STEPS * system.dt), system.dt, save_every=SAVE_EVERY)
    assert torch.isfinite(traj.y).all()
    return traj.y[1:]


@pytest.mark.parametrize("name", WITH_DYSTS_JACOBIAN)
def test_dysts_jacobian_is_right_exactly_where_labkit_uses_it(name):
    """dysts' Jacobian against autograd and central differences at attractor states, for
    the default parameters and a perturbed set in one parameter batch; the failures must
    be exactly ANALYTIC_JACOBIAN_EXCLUDED."""
    system = get_system(name)
    states = _attractor_states(system)
    y = states.expand(2, *states.shape).clone()  # [parameter set, state, dim]
    params = {k: torch.tensor([v, 1.1 * v + 0.05], dtype=torch.float64)[:, None]
              for k, v in system.parameters.items()}
    analytic = _dysts_jacobian(name)(torch.tensor(0.3, dtype=torch.float64), y,
                                     system.params(params, like=y))
    autograd = system.jacobian(0.3, y, method="autograd", **params)
    difference = system.jacobian(0.3, y, method="difference", **params)
    assert analytic.shape == autograd.shape == (2, len(states), system.dim, system.dim)
    scale = autograd.abs().amax(dim=(-1, -2), keepdim=True)
    off_autograd = float(((analytic - autograd).abs() / scale).max())
    off_difference = float(((analytic - difference).abs() / scale).max())
    agrees = off_autograd <= AUTOGRAD_TOLERANCE and off_difference <= DIFFERENCE_TOLERANCE
    if name in ANALYTIC_JACOBIAN_EXCLUDED:
        assert not agrees, (f"dysts' Jacobian of {name} now agrees ({off_autograd:.1e} from "
                            "autograd): remove it from ANALYTIC_JACOBIAN_EXCLUDED")
        return
    assert agrees, (f"dysts' Jacobian of {name} is off by {off_autograd:.1e} (autograd) and "
                    f"{off_difference:.1e} (differences) relative to its largest entry: "
                    "add it to ANALYTIC_JACOBIAN_EXCLUDED")
    torch.testing.assert_close(system.jacobian(0.3, y, method="analytic", **params), analytic,
                               rtol=0, atol=0)
    # The shim runs dysts' own code: its NumPy Jacobian at one state, at the catalogue's
    # default parameters (labkit's own where it overrides dysts': Lorenz's beta = 8/3).
    import dysts.flows

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Numba not installed")
        model = getattr(dysts.flows, name)(parameters=dict(system.parameters))
    expected = np.array(model.jac(states[0].numpy(), 0.3), dtype=float)
    np.testing.assert_allclose(analytic[0, 0].numpy(), expected, rtol=1e-13,
                               atol=1e-13 * float(scale[0, 0]))


def test_auto_prefers_the_analytic_jacobian():
    lorenz = get_system("Lorenz")
    marked = dataclasses.replace(
        lorenz, _jacobian=lambda t, y, p: torch.full((*y.shape, 3), 7.0, dtype=y.dtype))
    y = lorenz.default_state().expand(4, 3)
    assert marked.jacobian(0.0, y).eq(7.0).all()
    assert marked.jacobian(0.0, y, method="autograd")[0, 0, 1] == 10.0  # sigma


def test_an_excluded_dysts_jacobian_is_not_used(monkeypatch):
    monkeypatch.setitem(ANALYTIC_JACOBIAN_EXCLUDED, "Lorenz", "row 2 off by 1.0 (made up)")
    lorenz = _build("Lorenz")
    y = lorenz.default_state()
    assert not lorenz.has_analytic_jacobian
    torch.testing.assert_close(lorenz.jacobian(0.0, y), lorenz.jacobian(0.0, y, method="autograd"))
    with pytest.raises(ConfigError, match=r"Lorenz has no usable analytic Jacobian \(dysts' "
                                          r"is wrong: row 2 off by 1.0 \(made up\)\)"):
        lorenz.jacobian(0.0, y, method="analytic")


def test_jacobian_method_errors_quote_the_value():
    with pytest.raises(ConfigError, match=r"method must be one of .*'analytic'.*, got 'exact'"):
        get_system("Lorenz").jacobian(0.0, torch.zeros(3), method="exact")
    with pytest.raises(ConfigError, match=r"Henon has no usable analytic Jacobian \(dysts does "
                                          "not write one\\)"):
        get_system("Henon").jacobian(0.0, torch.zeros(2), method="analytic")


def test_analytic_jacobian_of_a_parameter_batch_equals_one_call_per_value():
    lorenz = get_system("Lorenz")
    rho = torch.linspace(10.0, 99.0, 64, dtype=torch.float64)
    y = lorenz.default_state() + torch.randn(64, 3, dtype=torch.float64,
                                             generator=torch.Generator().manual_seed(0))
    batched = lorenz.jacobian(0.0, y, method="analytic", rho=rho)
    assert batched.shape == (64, 3, 3)
    for i in (0, 17, 63):
        x, _, z = y[i].tolist()
        torch.testing.assert_close(batched[i, 1], torch.tensor([float(rho[i]) - z, -1.0, -x],
                                                               dtype=torch.float64))
        torch.testing.assert_close(batched[i], lorenz.jacobian(0.0, y[i], method="analytic",
                                                               rho=float(rho[i])))


def test_shim_array_puts_constant_and_batched_rows_on_the_component_axes():
    # A batch of two: plain broadcasting would pair the constant row with the batch axis.
    x = torch.tensor([1.0, 2.0], dtype=torch.float64)
    rows = torch_numpy.array([[0, 1], [x, 3 * x]])
    assert rows.shape == (2, 2, 2)
    expected = torch.tensor([[[0.0, 1.0], [1.0, 3.0]], [[0.0, 1.0], [2.0, 6.0]]],
                            dtype=torch.float64)
    torch.testing.assert_close(_as_matrix(rows, torch.zeros(2, 2, dtype=torch.float64)), expected)
    torch.testing.assert_close(_as_matrix(([0, 1], [x, 3 * x]), torch.zeros(2, 2,
                                                                         dtype=torch.float64)),
                               expected)


def test_kepler_solve_is_exact_to_rounding_up_to_eccentricity_near_one():
    gen = torch.Generator().manual_seed(0)
    c = 20 * torch.rand(2000, dtype=torch.float64, generator=gen) - 10
    e = torch.rand(2000, dtype=torch.float64, generator=gen)
    e[:200] = 1 - 10.0 ** -torch.linspace(1, 12, 200, dtype=torch.float64)  # nearly parabolic
    c[:100] = 1e-9 * c[:100]  # where Newton's derivative 1 - e cos q nearly vanishes
    q = solve_kepler(c, e)
    residual = q - e * torch.sin(q) - c
    assert residual.abs().max() <= 8 * torch.finfo(torch.float64).eps * (1 + c.abs().max())
    assert ((q - c).abs() <= e + 1e-15).all()


def test_kepler_solve_derivatives_are_the_implicit_ones():
    c = torch.tensor([0.3, 2.0, -4.0], dtype=torch.float64, requires_grad=True)
    e = torch.tensor([0.1, 0.7, 0.95], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(solve_kepler, (c, e), eps=1e-6, atol=1e-8)
    q = solve_kepler(c, e).detach()
    dq_dc = torch.func.jvp(lambda cc: solve_kepler(cc, e.detach()), (c.detach(),),
                           (torch.ones(3, dtype=torch.float64),))[1]
    torch.testing.assert_close(dq_dc, 1 / (1 - e.detach() * torch.cos(q)))


def test_blinking_vortex_jacobian_differentiates_through_the_solve():
    vortex = get_system("BlinkingVortexMap")
    y = vortex.default_state() * torch.tensor([[1.0, 1.0], [1.3, 0.7], [0.6, 2.0]],
                                              dtype=torch.float64)
    autograd = vortex.jacobian(0.0, y, method="autograd")
    torch.testing.assert_close(vortex.jacobian(0.0, y), autograd, rtol=0, atol=0)
    difference = vortex.jacobian(0.0, y, method="difference")
    assert ((autograd - difference).abs().amax(dim=(-1, -2))
            / autograd.abs().amax(dim=(-1, -2))).max() < 1e-8
