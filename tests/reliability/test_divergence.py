"""Divergence follows the system's scale, and running out of steps is not divergence.

Two reproduced problems (issue 15, item 8): Lorenz at ``rho = 1e6`` is bounded (``|z|``
up to 2.0e6 by LSODA) but was flagged by the fixed bound 1e6; and dopri5 reported a
trajectory that used its ``max_steps`` as "diverged". The default bound is now
``max(1e6, 1e4 * max(|y0|, extent))`` per trajectory (labkit.core.integrate.default_bound,
the extent from System.extent at the run's parameters), and dopri5 reports
``status == "max_steps"`` with a StepLimitError of its own.

Reference: scipy's LSODA and DOP853 at rtol 1e-12. RK4 needs ``dt = 1e-5`` at
``rho = 1e6`` (the Jacobian's eigenvalues reach 6e3: ``dt = 4e-4`` is at RK4's stability
edge and wrong by 100% after t = 0.005; ``1e-5`` is within 2.5e-5 of the z scale up to
t = 0.05, and halving it gains the fourth order's factor 16-30).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from labkit.core import BOUND_FACTOR, DEFAULT_BOUND, default_bound, dopri5, rk4
from labkit.dynamics import get_system, lyapunov_spectrum, reconstruction_data
from labkit.errors import ConfigError, DivergenceError, StepLimitError

F64 = torch.float64


@pytest.fixture(scope="module")
def lorenz():
    return get_system("Lorenz")


def _lorenz_numpy(system, **params):
    p = system.params(params)
    s, r, b = p["sigma"], p["rho"], p["beta"]
    return lambda t, y: [s * (y[1] - y[0]), y[0] * (r - y[2]) - y[1], y[0] * y[1] - b * y[2]]


@pytest.fixture(scope="module")
def reference(lorenz):
    """Lorenz at rho = 1e6 from dysts' initial condition over t <= 1, DOP853 at rtol 1e-12."""
    return solve_ivp(_lorenz_numpy(lorenz, rho=1e6), (0.0, 1.0), np.array(lorenz.initial_condition),
                     method="DOP853", rtol=1e-12, atol=1e-9, dense_output=True)


# --- the bound follows the system's scale ------------------------------------------------


def test_the_default_bound_is_the_stated_rule(lorenz):
    field = lorenz.vector_field(rho=1e6)
    assert field.attractor_scale == pytest.approx(lorenz.base_extent * 1e6 / 28.0, rel=1e-12)
    assert lorenz.base_extent == pytest.approx(49.284, abs=1e-3)  # |mean z| + 3 std z, dysts
    y0 = lorenz.default_state()
    assert float(default_bound(field, y0)) == pytest.approx(BOUND_FACTOR * field.attractor_scale)
    # at the defaults Lorenz's 1e4 * 49 is below the floor: the bound stays 1e6, as before
    assert float(default_bound(lorenz.vector_field(), y0)) == DEFAULT_BOUND == 1e6
    # a plain function: 1e6, or 1e4 times the largest start component beyond 100
    starts = torch.tensor([[1.0, -2.0], [0.0, -300.0]], dtype=F64)
    assert default_bound(lambda t, y: y, starts).tolist() == [1e6, 3e6]
    # one bound per trajectory of a parameter batch
    rho = torch.tensor([28.0, 1e6], dtype=F64)
    bounds = default_bound(lorenz.vector_field(rho=rho), y0.expand(2, 3))
    assert bounds[0] == 1e6 and float(bounds[1]) == pytest.approx(1.76e10, rel=1e-3)


def test_lorenz_at_rho_1e6_is_bounded_and_matches_the_reference(lorenz, reference):
    t_end, dt = 1.0, 1e-5
    traj = rk4(lorenz.vector_field(rho=1e6), lorenz.default_state(), (0.0, t_end), dt,
               save_every=10)
    assert not bool(traj.diverged) and torch.isfinite(traj.y).all()
    t = traj.t.numpy()
    want = reference.sol(t).T
    got = traj.y.numpy()
    # the first peak: max |z| = 1.996e6 (LSODA and DOP853 agree to 1e-7 of it)
    first = t <= 0.05
    assert np.abs(got[first, 2]).max() == pytest.approx(1.9960055e6, rel=1e-6)
    assert np.abs(want[first, 2]).max() == pytest.approx(1.9960055e6, rel=1e-6)
    # short time: pointwise, relative to the z scale 2e6
    assert np.abs(got[first] - want[first]).max() / 2e6 < 1e-4
    # the whole run, statistically: mean z and the spread of x over the second half
    late = t >= 0.5
    assert got[late, 2].mean() == pytest.approx(want[late, 2].mean(), rel=1e-6)
    assert got[late, 0].std() == pytest.approx(want[late, 0].std(), rel=1e-5)
    assert np.abs(got[late, 2]).max() == pytest.approx(np.abs(want[late, 2]).max(), rel=1e-4)
    # the same run under the old fixed bound 1e6 is flagged (the reproduced problem), when
    # z first crosses 1e6 (DOP853's crossing, within a saved segment of 10 steps)
    crossing = _crossing(reference, 1e6)
    old = rk4(lorenz.vector_field(rho=1e6), lorenz.default_state(), (0.0, 0.01), dt,
              save_every=10, bound=1e6)
    assert bool(old.diverged)
    assert crossing <= float(old.diverged_at) <= crossing + 10 * dt + 1e-12


def _crossing(solution, level: float) -> float:
    """The first time ``max |y_i|`` reaches ``level`` on a dense scipy solution."""
    t = np.linspace(0.0, float(solution.t[-1]), 200_001)
    y = np.abs(solution.sol(t)).max(axis=0)
    k = int(np.argmax(y >= level))
    assert k > 0 and y[k] >= level
    lo, hi = t[k - 1], t[k]
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if np.abs(solution.sol(mid)).max() < level else (lo, mid)
    return float(hi)


def test_the_other_integrators_take_lorenz_at_rho_1e6_too(lorenz, reference):
    field, y0 = lorenz.vector_field(rho=1e6), lorenz.default_state()
    for fast, t_end in (("compiled", 0.05), ("eager", 0.005)):  # eager: ~500 of its steps
        times = torch.linspace(0.0, t_end, 11, dtype=F64)
        traj = dopri5(field, y0, times, rtol=1e-10, atol=1e-6, fast=fast)
        assert traj.status.tolist() == "ok", fast
        np.testing.assert_allclose(traj.y.numpy(), reference.sol(times.numpy()).T, rtol=0,
                                   atol=1e-4 * 2e6)
    for fast in ("compiled", "eager"):  # the tangent QR: finite exponents, no error
        res = lyapunov_spectrum(field, y0, dt=1e-5, time=0.001, fast=fast)
        assert torch.isfinite(res.exponents).all(), fast
    # LSODA data for the reconstruction baselines (used to stop at 1e6 as well)
    data = reconstruction_data("Lorenz", n_steps=100, dt=1e-4, transient=0, n_test=0,
                               standardise=False, rho=1e6)
    want = reference.sol(np.arange(1, 101) * 1e-4).T
    np.testing.assert_allclose(data.train.numpy(), want, rtol=0, atol=1e-6 * 2e6)


# --- what truly diverges is still flagged, with its time ----------------------------------


def test_a_linear_unstable_flow_is_flagged_when_it_crosses_the_bound():
    grow = lambda t, y: y  # noqa: E731 - y = y0 exp(t)
    y0 = torch.tensor([[1.0], [200.0], [-3.0]], dtype=F64)
    traj = rk4(grow, y0, (0.0, 20.0), 0.01)
    assert traj.diverged.tolist() == [True, True, True]
    # bounds 1e6, 1e4 * 200 = 2e6, 1e6: crossed at ln(1e6) = 13.8155, ln(1e4) = 9.2103 and
    # ln(1e6 / 3) = 12.7169; flagged at the end of that step
    expected = [math.ceil(math.log(b / abs(v)) / 0.01) * 0.01
                for b, v in ((1e6, 1.0), (2e6, 200.0), (1e6, -3.0))]
    assert expected == pytest.approx([13.82, 9.22, 12.72])
    torch.testing.assert_close(traj.diverged_at, torch.tensor(expected, dtype=F64),
                               rtol=0, atol=1e-9)
    assert torch.isnan(traj.y[:, -1]).all()
    # "raise" stops at the first divergence: y0 = 200, at t = 9.22
    with pytest.raises(DivergenceError, match=r"1 of 3 trajectories diverged; first at batch "
                                              r"index/time \[\(\[1\], 9\.22\)\]"):
        rk4(grow, y0, (0.0, 20.0), 0.01, on_divergence="raise")


def test_a_catalogue_system_that_blows_up_is_flagged_at_the_reference_time(lorenz):
    # beta = -1: z' = xy + z escapes. Its default bound is 1e4 * extent(beta=-1) =
    # 1e4 * 49.28 * (8/3) = 1.314e6; DOP853 crosses it at t = 10.4228.
    field = lorenz.vector_field(beta=-1.0)
    y0 = lorenz.default_state()
    bound = float(default_bound(field, y0))
    assert bound == pytest.approx(1e4 * lorenz.base_extent * 8 / 3, rel=1e-12)
    ref = solve_ivp(_lorenz_numpy(lorenz, beta=-1.0), (0.0, 12.0), y0.numpy(), method="DOP853",
                    rtol=1e-12, atol=1e-9, dense_output=True)
    crossing = _crossing(ref, bound)
    assert crossing == pytest.approx(10.4228, abs=1e-3)
    dt = 1e-3
    traj = rk4(field, y0, (0.0, 12.0), dt)
    assert bool(traj.diverged)
    assert crossing <= float(traj.diverged_at) <= crossing + 2 * dt
    fine = dopri5(field, y0, torch.linspace(0.0, 12.0, 121, dtype=F64), rtol=1e-10, atol=1e-8)
    assert fine.status.tolist() == "diverged"
    assert float(fine.diverged_at) == pytest.approx(crossing, abs=1e-2)  # an accepted step's end


# --- the bound can be overridden -----------------------------------------------------------


def test_an_explicit_bound_takes_precedence(lorenz):
    rho = torch.tensor([28.0, 1e6], dtype=F64)
    field, y0 = lorenz.vector_field(rho=rho), lorenz.default_state().expand(2, 3)
    kw = dict(save_every=10)
    assert not rk4(field, y0, (0.0, 0.003), 1e-5, **kw).diverged.any()
    flagged = rk4(field, y0, (0.0, 0.003), 1e-5, bound=1e6, **kw)  # one number for both
    assert flagged.diverged.tolist() == [False, True]
    grow = lambda t, y: y  # noqa: E731
    one = torch.ones(1, dtype=F64)
    assert not bool(rk4(grow, one, (0.0, 20.0), 0.01, bound=math.inf).diverged)
    assert bool(rk4(grow, one, (0.0, 20.0), 0.01, bound=1e3).diverged)
    for bad in (0.0, -1.0, math.nan, True, "1e6"):
        with pytest.raises(ConfigError, match="bound must be a number > 0"):
            rk4(grow, one, (0.0, 1.0), 0.01, bound=bad)
        with pytest.raises(ConfigError, match="bound must be a number > 0"):
            dopri5(grow, one, [0.0, 1.0], bound=bad)


# --- compiled and eager apply the same per-trajectory bounds -------------------------------


def _mixed_batch(lorenz):
    """Lorenz at rho = 28 and 1e6 (bounded) and at beta = -1e4 (z' = xy + 1e4 z escapes:
    its bound 1e4 * 49.28 * 3750 = 1.85e9 is crossed at t = 1.8315e-3 by DOP853 at rtol
    1e-12), one parameter row each."""
    rho = torch.tensor([28.0, 1e6, 28.0], dtype=F64)
    beta = torch.tensor([8 / 3, 8 / 3, -1e4], dtype=F64)
    return lorenz.vector_field(rho=rho, beta=beta), lorenz.default_state().expand(3, 3)


@pytest.mark.parametrize("bound", [None, 1e6])
def test_compiled_and_eager_rk4_flag_the_same(lorenz, bound):
    field, y0 = _mixed_batch(lorenz)
    runs = {fast: rk4(field, y0, (0.0, 0.003), 1e-5, save_every=10, bound=bound, fast=fast)
            for fast in ("compiled", "eager")}
    fast, slow = runs["compiled"], runs["eager"]
    want = [False, False, True] if bound is None else [False, True, True]
    assert fast.diverged.tolist() == slow.diverged.tolist() == want
    torch.testing.assert_close(fast.diverged_at, slow.diverged_at, rtol=0, atol=1e-12,
                               equal_nan=True)
    if bound is None:  # flagged at the end of the 10-step segment after DOP853's crossing
        assert 1.8315e-3 <= float(fast.diverged_at[2]) <= 1.8315e-3 + 1e-4
    assert torch.equal(fast.y.isnan(), slow.y.isnan())
    torch.testing.assert_close(fast.y, slow.y, rtol=1e-9, atol=0, equal_nan=True)


def test_compiled_and_eager_dopri5_report_the_same_status(lorenz):
    field, y0 = _mixed_batch(lorenz)
    times = torch.linspace(0.0, 0.003, 7, dtype=F64)
    fast = dopri5(field, y0, times, rtol=1e-9, atol=1e-6, fast="compiled")
    slow = dopri5(field, y0, times, rtol=1e-9, atol=1e-6, fast="eager")
    assert fast.status.tolist() == slow.status.tolist() == ["ok", "ok", "diverged"]
    torch.testing.assert_close(fast.diverged_at, slow.diverged_at, rtol=1e-12, atol=0,
                               equal_nan=True)
    assert torch.equal(fast.n_steps, slow.n_steps)
    # 100 steps: enough for rho = 28 (2 steps), not for rho = 1e6 (181) nor for the
    # escape to reach its bound (553 steps): those two run out, neither diverges
    fast = dopri5(field, y0, times, rtol=1e-9, atol=1e-6, max_steps=100, fast="compiled")
    slow = dopri5(field, y0, times, rtol=1e-9, atol=1e-6, max_steps=100, fast="eager")
    assert fast.status.tolist() == slow.status.tolist() == ["ok", "max_steps", "max_steps"]
    torch.testing.assert_close(fast.out_of_steps_at, slow.out_of_steps_at, rtol=1e-12, atol=0,
                               equal_nan=True)


def test_compiled_and_eager_lyapunov_and_maps_flag_the_same(lorenz):
    field, y0 = _mixed_batch(lorenz)
    for fast in ("compiled", "eager"):
        with pytest.raises(DivergenceError, match=r"^1 trajectories diverged"):
            lyapunov_spectrum(field, y0, dt=1e-5, time=0.002, fast=fast)
        ok = lyapunov_spectrum(lorenz.vector_field(rho=torch.tensor([28.0, 1e6], dtype=F64)),
                               y0[:2], dt=1e-5, time=0.001, fast=fast)
        assert torch.isfinite(ok.exponents).all()
    henon = get_system("Henon")  # a = 2 escapes; the bound is the floor 1e6 for both
    a = torch.tensor([1.4, 2.0], dtype=F64)
    start = henon.default_state().expand(2, 2)
    orbits = [henon.iterate(start, 50, fast=fast, a=a) for fast in ("auto", "eager")]
    assert orbits[0].diverged.tolist() == orbits[1].diverged.tolist() == [False, True]
    assert torch.equal(orbits[0].diverged_at.isnan(), orbits[1].diverged_at.isnan())
    assert float(orbits[0].diverged_at[1]) == float(orbits[1].diverged_at[1])


# --- running out of steps is its own outcome ------------------------------------------------


@pytest.mark.parametrize("fast", ["compiled", "eager"])
def test_dopri5_out_of_steps_is_not_divergence(lorenz, fast):
    y0 = lorenz.default_state().expand(2, 3).contiguous()
    times = torch.linspace(0.0, 1.0, 11, dtype=F64)
    few = dopri5(lorenz.vector_field(), y0, times, rtol=1e-8, atol=1e-8, max_steps=3, fast=fast)
    assert few.status.tolist() == ["max_steps", "max_steps"]
    assert few.n_out_of_steps == 2 and few.n_diverged == 0 and few.max_steps == 3
    assert not few.diverged.any() and few.diverged_at.isnan().all()
    reached = few.out_of_steps_at
    assert ((reached > 0) & (reached < 1.0)).all() and (few.n_steps <= 3).all()
    assert torch.isnan(few.y[:, -1]).all() and torch.isfinite(few.y[:, 0]).all()
    message = (r"2 of 2 trajectories ran out of steps \(max_steps=3\) before t = 1; first at "
               r"batch index/time .*: raise max_steps or loosen rtol/atol \(this is not a "
               r"divergence\)")
    with pytest.raises(StepLimitError, match=message) as caught:
        few.raise_if_diverged()
    assert not isinstance(caught.value, DivergenceError)
    with pytest.raises(StepLimitError, match=r"ran out of steps \(max_steps=3\)"):
        dopri5(lorenz.vector_field(), y0, times, rtol=1e-8, atol=1e-8, max_steps=3, fast=fast,
               on_divergence="raise")
    data = few.to_xarray()
    assert data["out_of_steps"].values.tolist() == [True, True]


@pytest.mark.parametrize("fast", ["compiled", "eager"])
def test_dopri5_reaching_the_end_on_its_last_allowed_step_is_ok(lorenz, fast):
    y0, times = lorenz.default_state(), torch.linspace(0.0, 0.5, 6, dtype=F64)
    need = next(m for m in range(1, 2000)
                if dopri5(lorenz.vector_field(), y0, times, rtol=1e-6, atol=1e-6, max_steps=m,
                          fast=fast).status.tolist() == "ok")
    full = dopri5(lorenz.vector_field(), y0, times, rtol=1e-6, atol=1e-6, fast=fast)
    assert need >= int(full.n_steps) > 10  # attempts: the accepted steps and any rejected
    short = dopri5(lorenz.vector_field(), y0, times, rtol=1e-6, atol=1e-6, max_steps=need - 1,
                   fast=fast)
    assert short.status.tolist() == "max_steps"


def test_a_dopri5_blow_up_is_still_divergence():
    blowup = lambda t, y: y**2  # noqa: E731 - y' = y^2 reaches infinity at t = 1 / y0
    y0 = torch.tensor([[0.5], [-1.0]], dtype=F64)
    traj = dopri5(blowup, y0, torch.linspace(0.0, 3.0, 31, dtype=F64), rtol=1e-8, atol=1e-10,
                  max_steps=100_000)
    assert traj.status.tolist() == ["diverged", "ok"]
    assert traj.out_of_steps.tolist() == [False, False]
    assert 1.99 < float(traj.diverged_at[0]) <= 2.0
    with pytest.raises(DivergenceError, match="1 of 2 trajectories diverged"):
        traj.raise_if_diverged()
