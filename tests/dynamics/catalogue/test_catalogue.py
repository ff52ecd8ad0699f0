"""The catalogue: every dysts flow on batched torch tensors, against dysts, scipy and
finite differences; parameter batches; bad input."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

import labkit.dynamics
from labkit.core import rk4
from labkit.dynamics import get_system, integrate_delay, invariants_table, list_systems, lorenz
from labkit.dynamics.catalogue._catalogue import (
    OVERRIDES_FILE,
    UNSUPPORTED,
    _dysts_data,
    _overridden,
)
from labkit.errors import ConfigError, DataError

REPO = Path(__file__).resolve().parents[3]

FLOWS = list_systems("flow")
MAPS = [m for m in list_systems("map") if m not in UNSUPPORTED]
#: Steps of the scipy comparison are capped so the whole catalogue runs in about a minute.
MAX_STEPS = 2000


def dysts_model(name):
    """dysts' model of the flow ``name`` at the catalogue's parameters (labkit's own where
    it overrides dysts': Lorenz's beta = 8/3)."""
    import dysts.flows

    return getattr(dysts.flows, name)(parameters=dict(get_system(name).parameters))


def test_the_whole_catalogue_is_there():
    assert len(FLOWS) == 129 and len(list_systems("delay")) == 6
    assert len(list_systems("map")) == 23 and len(MAPS) == 23 and not UNSUPPORTED
    assert get_system("Duffing").kind == "flow" and get_system("DuffingMap").kind == "map"
    assert {"Lorenz", "Rossler", "Lorenz96", "MackeyGlass", "Henon"} <= set(
        FLOWS + list_systems("delay") + list_systems("map"))


def test_unsupported_systems_say_why(monkeypatch):
    # None is unsupported now; the mechanism stays for the next system that needs it.
    monkeypatch.setitem(UNSUPPORTED, "Henon", "it needs a feature labkit lacks")
    with pytest.raises(ConfigError, match="Henon is not available on torch yet: it needs a"):
        get_system("henon")


def _dysts_map(name):
    import inspect

    import dysts.maps

    model = getattr(dysts.maps, name.removesuffix("Map") if name == "DuffingMap" else name)()
    if len(model.ic) > 1:
        return lambda v: np.asarray(model.rhs(v), float).ravel()
    # dysts' DynMap.rhs does not accept one-dimensional states; call its _rhs directly.
    names = [k for k in inspect.signature(model._rhs).parameters if k in model.parameters]
    return lambda v: np.atleast_1d(model._rhs(*v, *[model.parameters[k] for k in names]))


@pytest.mark.parametrize("name", MAPS)
def test_map_matches_dysts_on_a_batch(name):
    system, step = get_system(name), _dysts_map(name)
    assert system.kind == "map"
    rng = np.random.default_rng(0)
    states = np.asarray(system.initial_condition) * (1 + 0.01 * rng.standard_normal((3, 4, system.dim)))
    expected = np.array([[step(s) for s in row] for row in states])
    np.testing.assert_allclose(system.rhs(0.0, torch.tensor(states)).numpy(), expected,
                               rtol=1e-10, atol=1e-12)


def test_blinking_vortex_iterations_match_dysts_fsolve():
    """labkit's batched safeguarded Newton against dysts' point-by-point scipy fsolve, for
    eight iterations from twelve states; measured worst relative difference 3e-13 (fsolve
    stops within ~1e-14 of the root, and the map stretches differences by ~3 a step)."""
    import dysts.maps

    model, vortex = dysts.maps.BlinkingVortexMap(), get_system("BlinkingVortexMap")
    rng = np.random.default_rng(0)
    states = np.asarray(vortex.initial_condition) * (1 + 0.3 * rng.standard_normal((12, 2)))
    traj = vortex.iterate(torch.tensor(states).reshape(3, 4, 2), 8)
    assert traj.y.shape == (3, 4, 9, 2) and not traj.diverged.any()
    expected = [states]
    for _ in range(8):
        expected.append(np.array([model.rhs(s.copy()).ravel() for s in expected[-1]]))
    expected = np.stack(expected, axis=1).reshape(3, 4, 9, 2)
    np.testing.assert_allclose(traj.y.numpy(), expected, rtol=1e-10, atol=1e-12)


def test_blinking_vortex_parameter_batch_equals_one_call_per_value():
    vortex = get_system("BlinkingVortexMap")
    duration = torch.tensor([0.5, 1.5, 4.0], dtype=torch.float64)[:, None]  # parameter "t"
    y = vortex.default_state() * torch.tensor([[1.0, 1.0], [1.2, 0.8]], dtype=torch.float64)
    batched = vortex.rhs(0.0, y.expand(3, 2, 2), t=duration)
    assert batched.shape == (3, 2, 2)
    for i in range(3):
        single = vortex.rhs(0.0, y, t=float(duration[i]))
        torch.testing.assert_close(batched[i], single, rtol=0, atol=1e-14)
    assert not torch.allclose(batched[0], batched[2])


def test_henon_iteration_equals_a_plain_loop():
    henon = get_system("Henon")
    # 20 iterations: rounding differences grow like exp(0.42 n), still ~1e-12 here.
    traj = henon.iterate(henon.default_state().expand(2, 2).clone(), 20)
    x, y = henon.initial_condition
    for _ in range(20):
        x, y = 1 - 1.4 * x**2 + y, 0.3 * x
    assert traj.y.shape == (2, 21, 2) and traj.t[-1] == 20
    np.testing.assert_allclose(traj.y[0, -1].numpy(), [x, y], rtol=0, atol=1e-9)


def test_escaping_map_orbits_are_flagged_with_the_iteration():
    henon = get_system("Henon")
    start = torch.tensor([[0.1, 0.1], [3.0, 3.0]], dtype=torch.float64)
    traj = henon.iterate(start, 50)
    assert traj.diverged.tolist() == [False, True]
    assert 1 <= float(traj.diverged_at[1]) <= 10 and torch.isnan(traj.y[1, -1]).all()
    with pytest.raises(ConfigError, match="Lorenz is a flow"):
        get_system("Lorenz").iterate(torch.zeros(3), 10)


def test_logistic_map_parameter_batch_is_one_dimensional():
    logistic = get_system("Logistic")
    r = torch.tensor([2.5, 3.2, 4.0], dtype=torch.float64)[:, None]
    traj = logistic.iterate(torch.full((3, 1, 1), 0.2, dtype=torch.float64), 500, r=r)
    assert traj.y.shape == (3, 1, 501, 1)
    assert float(traj.y[0, 0, -1, 0]) == pytest.approx(1 - 1 / 2.5, abs=1e-9)  # fixed point
    cycle = traj.y[1, 0, -2:, 0].sort().values  # period-2 orbit of r = 3.2
    np.testing.assert_allclose(cycle.numpy(), [0.5130445, 0.7994555], atol=1e-6)


@pytest.mark.parametrize("name", FLOWS)
def test_rhs_matches_dysts_on_a_batch(name):
    system, model = get_system(name), dysts_model(name)
    rng = np.random.default_rng(0)
    states = np.asarray(system.initial_condition) * (1 + 0.01 * rng.standard_normal((3, 4, system.dim)))
    expected = np.array([[np.asarray(model.rhs(s, 0.3), float).ravel() for s in row]
                         for row in states])
    got = system.rhs(0.3, torch.tensor(states))
    assert got.shape == (3, 4, system.dim)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-12)


def _horizon(system):
    """Steps of dysts' dt covering about one Lyapunov time (dysts' estimate), capped at
    MAX_STEPS (then the horizon is shorter: 2000 steps of dysts' dt)."""
    lam = system.reference["maximum_lyapunov_estimated"] or 0.0
    t_end = 1.0 / lam if lam > 0 else (system.period or 1.0)
    return min(MAX_STEPS, max(1, math.ceil(t_end / system.dt)))


#: Relative to the trajectory's largest coordinate. Measured worst case over the whole
#: catalogue at a full Lyapunov time: 4.8e-6 (AtmosphericRegime); median 7e-11.
RK4_TOLERANCE = 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("name", FLOWS)
def test_trajectory_matches_scipy_dop853_over_one_lyapunov_time(name):
    system, model = get_system(name), dysts_model(name)
    steps = _horizon(system)
    t_end = steps * system.dt
    y0 = np.asarray(system.initial_condition)
    ref = solve_ivp(lambda t, y: np.asarray(model.rhs(y, t), float).ravel(), (0, t_end), y0,
                    method="DOP853", rtol=1e-10, atol=1e-10, dense_output=True)
    traj = rk4(system.vector_field(), torch.tensor(y0), (0.0, t_end), system.dt,
               save_every=max(1, steps // 10))
    expected = ref.sol(traj.t.numpy()).T
    scale = np.abs(ref.y).max()
    np.testing.assert_allclose(traj.y.numpy(), expected, rtol=0, atol=RK4_TOLERANCE * scale)


def test_baker_map_jacobian_falls_back_to_differences_and_is_exact():
    baker = get_system("Baker")
    y = torch.tensor([[0.3, 0.6], [0.8, 0.1]], dtype=torch.float64)
    expected = torch.diag(torch.tensor([2.0 - 1e-10, baker.parameters["a"] / 2],
                                       dtype=torch.float64)).expand(2, 2, 2)
    torch.testing.assert_close(baker.jacobian(0.0, y), expected, rtol=0, atol=1e-8)
    with pytest.raises(NotImplementedError):
        baker.jacobian(0.0, y, method="autograd")


@pytest.mark.parametrize("name", FLOWS + [m for m in MAPS if m != "Baker"])
def test_jacobian_matches_central_differences(name):
    system = get_system(name)
    rng = np.random.default_rng(1)
    y = torch.tensor(np.asarray(system.initial_condition)
                     * (1 + 0.01 * rng.standard_normal((2, system.dim))))
    jac = system.jacobian(0.2, y, method="autograd")
    assert jac.shape == (2, system.dim, system.dim)
    h = 1e-6 * (1 + y.abs())
    cols = []
    for j in range(system.dim):
        step = torch.zeros_like(y)
        step[..., j] = h[..., j]
        cols.append((system.rhs(0.2, y + step) - system.rhs(0.2, y - step)) / (2 * h[..., j:j + 1]))
    fd = torch.stack(cols, dim=-1)
    scale = fd.abs().amax(dim=(-1, -2), keepdim=True) + 1e-12
    assert ((jac - fd).abs() / scale).max() < 1e-5


def test_parameter_batch_equals_one_call_per_value():
    lorenz = get_system("lorenz")
    rho = torch.linspace(10.0, 99.0, 512, dtype=torch.float64)
    y = lorenz.default_state().expand(512, 3)
    batched = lorenz.rhs(0.0, y, rho=rho)
    for i in (0, 100, 511):
        single = lorenz.rhs(0.0, y[i], rho=float(rho[i]))
        torch.testing.assert_close(batched[i], single, rtol=0, atol=1e-12)


def test_parameter_batch_times_initial_conditions_in_one_integration():
    lorenz = get_system("Lorenz")
    rho = torch.tensor([20.0, 28.0, 35.0], dtype=torch.float64)[:, None]  # [param, 1]
    y0 = lorenz.default_state() + 0.1 * torch.randn(
        3, 5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    traj = rk4(lorenz.vector_field(rho=rho), y0, (0.0, 0.5), 0.01)
    assert traj.y.shape == (3, 5, 51, 3)
    alone = rk4(lorenz.vector_field(rho=35.0), y0[2, 4], (0.0, 0.5), 0.01)
    torch.testing.assert_close(traj.y[2, 4], alone.y, rtol=0, atol=1e-12)


def test_a_diverging_parameter_value_is_flagged():
    lorenz = get_system("Lorenz")
    beta = torch.tensor([8.0 / 3.0, -1.0], dtype=torch.float64)  # beta < 0: z grows without bound
    traj = rk4(lorenz.vector_field(beta=beta), lorenz.default_state().expand(2, 3),
               (0.0, 20.0), 0.001)
    assert traj.diverged.tolist() == [False, True]
    assert 0 < float(traj.diverged_at[1]) < 20.0
    assert torch.isfinite(traj.y[0]).all()


def test_unknown_name_lists_the_closest_names():
    with pytest.raises(ConfigError, match=r"unknown system 'Lorenz63'; closest names: .*Lorenz"):
        get_system("Lorenz63")
    with pytest.raises(ConfigError, match="closest names: .*Rossler"):
        get_system("rosler")


def test_names_ignore_case_and_delay_equations_say_so():
    assert get_system("lorenz") is get_system("LORENZ") is get_system("Lorenz")
    assert get_system("henon") is get_system("Henon")
    assert integrate_delay("mackeyglass", 0.5, (0.0, 4.0), 0.5).y.shape == (9, 1)
    table = invariants_table()
    assert table["lorenz"] is table["Lorenz"]
    with pytest.raises(ConfigError, match="MackeyGlass is a delay equation: integrate it with"):
        get_system("mackeyglass")


def test_wrong_shaped_state_names_the_expected_shape(unchecked_shapes):
    # rhs's own errors (what users get); under the test run the shape check would come first
    with pytest.raises(ConfigError, match=r"Lorenz: the state must have shape \[\*batch, 3\], "
                                          r"got \(4, 2\)"):
        get_system("Lorenz").rhs(0.0, torch.zeros(4, 2))
    with pytest.raises(ConfigError, match="must be a torch tensor"):
        get_system("Lorenz").rhs(0.0, [1.0, 2.0, 3.0])


def test_unknown_parameter_lists_the_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown parameter\(s\) \['r'\] for Lorenz; "
                                          r"parameters: \{'beta'"):
        get_system("Lorenz").vector_field(r=28.0)


def test_metadata_is_dysts_and_cited():
    rossler = get_system("Rossler")
    assert rossler.parameters == {"a": 0.2, "b": 0.2, "c": 5.7}
    assert "Rossler" in rossler.citation and rossler.dt > 0 and rossler.period > 0
    assert rossler.override == "" and rossler.variables == ("x0", "x1", "x2")
    assert rossler.reference["maximum_lyapunov_published"] is None
    lorenz = get_system("Lorenz")
    assert lorenz.initial_condition == (-9.7869288, -15.03852, 20.533978)
    assert lorenz.dt > 0 and lorenz.period > 0 and lorenz.variables == ("x", "y", "z")
    # dysts' own estimate, made at its beta = 2.667
    assert lorenz.reference["maximum_lyapunov_estimated"] == pytest.approx(0.8917, abs=1e-4)


def test_lorenz_is_lorenz_1963_exactly_and_says_it_overrides_dysts():
    lorenz = get_system("Lorenz")
    assert lorenz.parameters["beta"] == 8 / 3  # exactly: the double nearest 8/3
    assert lorenz.parameters == {"beta": 8 / 3, "rho": 28.0, "sigma": 10.0}
    assert list(lorenz.parameters) == ["beta", "rho", "sigma"]  # dysts' order (kernel slots)
    assert "overrides dysts" in lorenz.override and "2.667" in lorenz.override
    assert "8/3" in lorenz.override
    assert "Lorenz" in lorenz.citation and "1963" in lorenz.citation
    assert "Sprott" in lorenz.citation and "2003" in lorenz.citation
    assert lorenz.reference["maximum_lyapunov_published"] == 0.9056
    # The override is live: dysts still rounds beta. When it stops, drop the override.
    dysts = json.loads((_dysts_data() / "chaotic_attractors.json").read_text())["Lorenz"]
    assert dysts["parameters"]["beta"] == 2.667
    # Every override says why and cites its values.
    assert OVERRIDES_FILE.parent.name == "data"
    for name in json.loads(OVERRIDES_FILE.read_text())["systems"]:
        system = get_system(name)
        assert system.override and system.citation, name


def test_a_bad_override_is_refused():
    meta = {"parameters": {"a": 1.0}}
    good = {"override": "why", "citation": "who", "parameters": {"a": 2.0}}
    assert _overridden("X", meta, good)["parameters"] == {"a": 2.0}
    with pytest.raises(DataError, match=r"X has no parameter\(s\) \['b'\]"):
        _overridden("X", meta, good | {"parameters": {"b": 2.0}})
    with pytest.raises(DataError, match="must say why"):
        _overridden("X", meta, {"citation": "who"})
    with pytest.raises(DataError, match="which dysts does not list"):
        _overridden("X", None, good)


def test_lorenz_function_is_the_catalogue_field():
    lorenz63 = get_system("Lorenz")
    gen = torch.Generator().manual_seed(0)
    y = lorenz63.default_state() + torch.randn(16, 3, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(lorenz(0.0, y), lorenz63.rhs(0.0, y), rtol=1e-15, atol=1e-13)
    rho = torch.linspace(20.0, 40.0, 16, dtype=torch.float64)
    torch.testing.assert_close(lorenz(0.0, y, rho=rho), lorenz63.rhs(0.0, y, rho=rho),
                               rtol=1e-15, atol=1e-13)


def test_there_is_one_catalogue():
    """The old second registry (labkit/dynamics/_systems.py, data/systems.json, whose
    Lorenz disagreed with the catalogue's) is gone, and nothing refers to it."""
    assert importlib.util.find_spec("labkit.dynamics._systems") is None
    assert not (REPO / "labkit" / "dynamics" / "data" / "systems.json").exists()
    public = set(labkit.dynamics.__all__)
    assert "get_system" in public and "lorenz" in public
    assert not {"system_info", "list_delay_systems"} & public
    gone = ["dynamics." + "_systems", "system" + "_info", "systems" + ".json",
            "list_delay" + "_systems"]
    sources = [p for folder in ("labkit", "tests", "notebooks", "bench")
               for p in (REPO / folder).rglob("*")
               if p.suffix in (".py", ".ipynb") and "gpu-check-work" not in p.parts
               and p != Path(__file__).resolve()]
    for path in [*sources, REPO / "README.md"]:
        text = path.read_text(encoding="utf-8", errors="replace")
        assert not [g for g in gone if g in text], path
