"""The compiled integration kernels against the eager torch loops they replace.

Every catalogue system that traces is compiled and compared with the eager path: flows
over 50 RK4 steps, maps over a few iterations, Lyapunov spectra against the exact
(forward-mode) tangent of the eager loop. Plus parameter batches, float32, divergence,
the kernel cache and the fallback without a compiler.
"""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest
import torch

from labkit.core import euler, kernels, rk4
from labkit.core._cgen import kernel_source
from labkit.dynamics import get_system, list_systems, lyapunov_spectrum
from labkit.dynamics.catalogue._trace import trace_system
from labkit.errors import ConfigError, DivergenceError

pytestmark = pytest.mark.usefixtures("one_thread")

#: Agreement of compiled and eager float64 results, relative to each variable's scale.
#: Both run the same operations in the same order; only the C library's and torch's
#: transcendental functions may differ, by an ulp.
TOL = 1e-12
#: The one system that does not trace: a root solve per point (Kepler's equation).
UNTRACED = {"BlinkingVortexMap"}


def _starts(system, n=4, spread=0.01, seed=0):
    g = torch.Generator().manual_seed(seed)
    y0 = system.default_state()
    return y0 * (1 + spread * torch.randn(n, system.dim, generator=g, dtype=torch.float64))


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    scale = b.abs().nan_to_num(0).amax(dim=tuple(range(b.ndim - 1))).clamp_min(1)
    assert torch.equal(a.isnan(), b.isnan())
    return float(((a - b).abs() / scale).nan_to_num(0).max())


def test_every_system_but_the_hand_ports_traces():
    names = list_systems("flow") + list_systems("map")
    failed = {n: r for n in names if isinstance(r := trace_system(n), str)}
    assert set(failed) == UNTRACED, failed


@pytest.mark.parametrize("name", list_systems("flow"))
def test_compiled_flow_equals_eager(name):
    system = get_system(name)
    field = system.vector_field()
    y0 = _starts(system)
    span = (0.0, 50 * system.dt)
    fast = rk4(field, y0, span, system.dt, fast="compiled")
    slow = rk4(field, y0, span, system.dt, fast="eager")
    assert _rel_err(fast.y, slow.y) <= TOL
    assert torch.equal(fast.diverged, slow.diverged)
    assert torch.equal(fast.t, slow.t)


@pytest.mark.parametrize("name", ["Lorenz", "Thomas", "LorenzCoupled", "Rossler",
                                  "HindmarshRose", "Duffing"])
def test_compiled_euler_equals_eager(name):
    system = get_system(name)
    field = system.vector_field()
    y0 = _starts(system)
    span = (0.0, 50 * system.dt)
    fast = euler(field, y0, span, system.dt, fast="compiled", save_every=7)
    slow = euler(field, y0, span, system.dt, fast="eager", save_every=7)
    assert _rel_err(fast.y, slow.y) <= TOL
    assert torch.equal(fast.t, slow.t)
    step = kernels.torch_step(field.kernel_source, y0, system.dt, method="euler")
    t = torch.tensor(0.5, dtype=torch.float64)
    assert _rel_err(step(t, y0), y0 + system.dt * field(t, y0)) <= TOL


@pytest.mark.parametrize("name", sorted(set(list_systems("map")) - UNTRACED))
def test_compiled_map_equals_eager(name):
    # maps are iterated only 5 times: chaotic maps stretch an ulp of libm by their
    # multiplier each iteration (Chebyshev: a factor 6)
    system = get_system(name)
    y0 = _starts(system, spread=0.001)
    fast = system.iterate(y0, 5)
    slow = system.iterate(y0, 5, fast="eager")
    assert _rel_err(fast.y, slow.y) <= TOL
    assert torch.equal(fast.diverged, slow.diverged)


def test_what_does_not_compile_still_runs_eagerly():
    system = get_system("BlinkingVortexMap")
    y0 = _starts(system)
    assert torch.equal(system.iterate(y0, 5).y, system.iterate(y0, 5, fast="eager").y)
    lorenz = get_system("Lorenz")

    def plain(t, y):  # a field without a kernel source
        return lorenz.rhs(t, y)

    y0 = _starts(lorenz)
    auto = rk4(plain, y0, (0.0, 0.1), 0.01)
    assert torch.equal(auto.y, rk4(lorenz.vector_field(), y0, (0.0, 0.1), 0.01).y)
    with pytest.raises(ConfigError, match="needs a field with a kernel_source"):
        rk4(plain, y0, (0.0, 0.1), 0.01, fast="compiled")


def test_parameter_batch_and_save_every():
    lorenz = get_system("Lorenz")
    rho = torch.linspace(20, 40, 6, dtype=torch.float64)[:, None]
    y0 = _starts(lorenz, n=3)[None].expand(6, 3, 3)
    field = lorenz.vector_field(rho=rho, beta=2.5)
    fast = rk4(field, y0, (0.0, 2.0), 0.01, save_every=7, fast="compiled")
    slow = rk4(field, y0, (0.0, 2.0), 0.01, save_every=7, fast="eager")
    assert fast.y.shape == (6, 3, len(slow.t), 3)
    assert _rel_err(fast.y, slow.y) <= TOL
    assert torch.equal(fast.t, slow.t)
    # each row of the batch really has its own rho
    assert not torch.allclose(fast.y[0, :, -1], fast.y[-1, :, -1])


def test_nonautonomous_flow_sees_the_same_times():
    system = get_system("Torus")  # the one field that reads the time itself
    y0 = _starts(system)
    fast = rk4(system.vector_field(), y0, (1.5, 1.5 + 300 * system.dt), system.dt,
               save_every=11, fast="compiled")
    slow = rk4(system.vector_field(), y0, (1.5, 1.5 + 300 * system.dt), system.dt,
               save_every=11, fast="eager")
    assert _rel_err(fast.y, slow.y) <= TOL


def test_float32_state_and_float32_output():
    lorenz = get_system("Lorenz")
    y0 = _starts(lorenz)
    ref = rk4(lorenz.vector_field(), y0, (0.0, 1.0), 0.01, fast="eager")
    out32 = rk4(lorenz.vector_field(), y0, (0.0, 1.0), 0.01, out_dtype=torch.float32)
    assert out32.y.dtype == torch.float32
    assert torch.equal(out32.y, ref.y.float())
    eager32 = rk4(lorenz.vector_field(), y0, (0.0, 1.0), 0.01, out_dtype=torch.float32,
                  fast="eager")
    assert torch.equal(eager32.y, out32.y)
    single = rk4(lorenz.vector_field(), y0.float(), (0.0, 1.0), 0.01, fast="compiled")
    assert single.y.dtype == torch.float32
    torch.testing.assert_close(single.y, ref.y.float(), rtol=1e-4, atol=1e-4)


def test_divergence_is_flagged_as_in_the_eager_loop():
    lorenz = get_system("Lorenz")
    y0 = _starts(lorenz, n=8, spread=0.5)
    # a bound that half of the trajectories cross at some saved sample
    peaks = rk4(lorenz.vector_field(), y0, (0.0, 2.0), 0.01, save_every=5).y.abs().amax((1, 2))
    kw = dict(save_every=5, bound=float(peaks.median()))
    fast = rk4(lorenz.vector_field(), y0, (0.0, 2.0), 0.01, fast="compiled", **kw)
    slow = rk4(lorenz.vector_field(), y0, (0.0, 2.0), 0.01, fast="eager", **kw)
    assert 0 < fast.n_diverged < 8
    assert torch.equal(fast.diverged, slow.diverged)
    torch.testing.assert_close(fast.diverged_at, slow.diverged_at, equal_nan=True)
    assert torch.equal(fast.y.isnan(), slow.y.isnan())
    with pytest.raises(DivergenceError, match="diverged"):
        rk4(lorenz.vector_field(), y0, (0.0, 2.0), 0.01, on_divergence="raise", **kw)


def test_compiled_lyapunov_equals_the_exact_eager_tangent():
    for name in ("Lorenz", "Rossler", "ForcedVanDerPol", "Colpitts", "Lorenz96"):
        system = get_system(name)
        field = system.vector_field()
        y0 = _starts(system, n=2)
        kw = dict(dt=system.dt, time=40 * system.dt, transient=10 * system.dt, qr_every=3)
        fast = lyapunov_spectrum(field, y0, fast="compiled", **kw)
        slow = lyapunov_spectrum(field, y0, fast="eager", tangent="jvp", **kw)
        torch.testing.assert_close(fast.exponents, slow.exponents, rtol=1e-9, atol=1e-9,
                                   msg=name)


def test_compiled_lyapunov_from_a_later_time():
    # Torus is the catalogue's one field that reads the time itself
    system = get_system("Torus")
    y0 = _starts(system, n=3)
    lib, params = kernels.kernel_for(system.vector_field().kernel_source, y0)
    _, end, _, _ = kernels.run_lyapunov(lib, params, y0, dt=system.dt, n_transient=0,
                                        n_steps=40, m=3, qr_every=1, bound=1e6, t0=2.5)
    t_end = 2.5 + 40 * system.dt
    ref = rk4(system.vector_field(), y0, (2.5, t_end), system.dt, fast="eager").y[:, -1]
    torch.testing.assert_close(end, ref, rtol=1e-12, atol=1e-12)
    from_zero = rk4(system.vector_field(), y0, (0.0, 40 * system.dt), system.dt).y[:, -1]
    assert not torch.allclose(end, from_zero)


def test_compiled_lyapunov_of_lorenz_matches_the_literature():
    lorenz = get_system("Lorenz")
    result = lyapunov_spectrum(lorenz.vector_field(), _starts(lorenz, n=8), dt=0.01,
                               time=200.0, transient=10.0)
    # Sprott (2003): 0.9056, 0, -14.5723
    torch.testing.assert_close(result.mean, torch.tensor([0.9056, 0.0, -14.5723],
                                                         dtype=torch.float64),
                               atol=0.03, rtol=0.005)


def test_compiled_lyapunov_reports_divergence():
    lorenz = get_system("Lorenz")
    with pytest.raises(DivergenceError, match="diverged"):
        lyapunov_spectrum(lorenz.vector_field(), _starts(lorenz, spread=0.5), dt=0.01,
                          time=2.0, bound=25.0, fast="compiled")


def test_the_tape_tangent_is_the_jacobian_of_the_field():
    # the tangent code of a few flows with transcendental functions, against autograd
    for name in ("Duffing", "Colpitts", "ExcitableCell", "CellularNeuralNetwork"):
        system = get_system(name)
        y0 = _starts(system, n=3)
        fast = lyapunov_spectrum(system.vector_field(), y0, dt=system.dt, time=system.dt,
                                 fast="compiled")
        slow = lyapunov_spectrum(system.vector_field(), y0, dt=system.dt, time=system.dt,
                                 fast="eager", tangent="jvp")
        torch.testing.assert_close(fast.exponents, slow.exponents, rtol=1e-9, atol=1e-7,
                                   msg=name)


@pytest.fixture
def fresh_kernels(monkeypatch, tmp_path):
    """No kernel in memory or on disk, and no warning given yet; restored afterwards."""
    monkeypatch.setenv("LABKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(kernels, "_warned", set())
    monkeypatch.setattr(kernels, "_libraries", {})
    kernels._load.cache_clear()
    yield
    kernels._load.cache_clear()


def test_without_a_compiler_labkit_warns_once_and_integrates_eagerly(monkeypatch, tmp_path,
                                                                    fresh_kernels):
    monkeypatch.setenv("LABKIT_CC", str(tmp_path / "no-such-cc"))
    lorenz = get_system("Lorenz")
    y0 = _starts(lorenz)
    with pytest.warns(RuntimeWarning, match="compiled integration unavailable"):
        first = rk4(lorenz.vector_field(), y0, (0.0, 0.5), 0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rk4(lorenz.vector_field(), y0, (0.0, 0.5), 0.01)  # no second warning
    eager = rk4(lorenz.vector_field(), y0, (0.0, 0.5), 0.01, fast="eager")
    assert torch.equal(first.y, eager.y)
    with pytest.raises(ConfigError, match="no kernel could be built"):
        rk4(lorenz.vector_field(), y0, (0.0, 0.5), 0.01, fast="compiled")


def test_a_failing_build_falls_back_too(monkeypatch, tmp_path, fresh_kernels):
    fake = tmp_path / "cc"
    fake.write_text("#!/bin/sh\necho 'cc: internal error' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("LABKIT_CC", str(fake))
    henon = get_system("Henon")
    with pytest.warns(RuntimeWarning, match="internal error"):
        orbit = henon.iterate(henon.default_state()[None], 10)
    assert torch.equal(orbit.y, henon.iterate(henon.default_state()[None], 10,
                                              fast="eager").y)


def test_a_built_kernel_is_found_by_its_key_without_tracing(monkeypatch, tmp_path):
    monkeypatch.setenv("LABKIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(kernels, "_libraries", {})
    kernels._load.cache_clear()
    lorenz = get_system("Lorenz")
    y0 = _starts(lorenz)
    first = rk4(lorenz.vector_field(), y0, (0.0, 0.5), 0.01)
    assert len(list((tmp_path / "kernels").glob("ix_*.so"))) == 1
    # a new process: nothing in memory; the key finds the file, tracing is never asked for
    monkeypatch.setattr(kernels, "_libraries", {})
    source = lorenz.vector_field().kernel_source

    def no_tracing():
        raise AssertionError("traced although the kernel was cached")

    import dataclasses

    field = lorenz.vector_field()
    field.kernel_source = dataclasses.replace(source, traced=no_tracing)
    again = rk4(field, y0, (0.0, 0.5), 0.01)
    assert torch.equal(first.y, again.y)
    kernels._load.cache_clear()


def test_concurrent_builds_of_one_kernel_share_one_file(monkeypatch, tmp_path):
    monkeypatch.setenv("LABKIT_CACHE_DIR", str(tmp_path))
    source = kernel_source(trace_system("Rossler"), "double")
    paths: list = []
    threads = [threading.Thread(target=lambda: paths.append(kernels._build(source, "cc")))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(paths)) == 1
    built = list((tmp_path / "kernels").iterdir())
    assert [p.name for p in built] == [paths[0].name]  # no temporary files left behind
    kernels._Library(paths[0])  # and it loads


def test_threads_split_the_batch_without_changing_results(monkeypatch):
    lorenz = get_system("Lorenz")
    y0 = _starts(lorenz, n=50)
    one = rk4(lorenz.vector_field(), y0, (0.0, 1.0), 0.01)
    monkeypatch.setattr(kernels, "MIN_WORK_PER_THREAD", 1)
    monkeypatch.setattr(kernels, "_cores", lambda: 2)
    assert kernels.kernel_threads(1000) == 2
    two = rk4(lorenz.vector_field(), y0, (0.0, 1.0), 0.01)
    assert torch.equal(one.y, two.y)


def test_kernel_threads_never_exceed_the_cores(monkeypatch):
    monkeypatch.setattr(kernels, "_cores", lambda: 2)
    assert kernels.kernel_threads(10) == 1
    assert kernels.kernel_threads(1e12) == 2
    monkeypatch.setenv("LABKIT_KERNEL_THREADS", "1")
    assert kernels.kernel_threads(1e12) == 1


def test_tracing_refuses_branches_on_values():
    from labkit.core._tape import Tape, TraceError, new_inputs, trace_numpy

    tape = Tape()
    (x,), _, _ = new_inputs(tape, 1, 0)
    with pytest.raises(TraceError, match="branches on a traced value"):
        if x > 0:
            pass
    with pytest.raises(TraceError, match="as an integer"):
        range(x)
    # but elementwise selections record
    y = trace_numpy.where(x > 0, x, -x)
    assert tape.nodes[y.index].op == "select"
    assert np.isclose(trace_numpy.sin(0.5), np.sin(0.5))


def test_compiled_dopri5_equals_the_eager_solver():
    from labkit.core import dopri5

    for name in ("Lorenz", "Thomas", "ForcedVanDerPol"):
        system = get_system(name)
        y0 = _starts(system, n=5)
        times = torch.linspace(0.0, 30 * system.dt, 7, dtype=torch.float64)
        fast = dopri5(system.vector_field(), y0, times, rtol=1e-9, atol=1e-9, fast="compiled")
        slow = dopri5(system.vector_field(), y0, times, rtol=1e-9, atol=1e-9, fast="eager")
        assert torch.equal(fast.n_steps, slow.n_steps), name
        assert _rel_err(fast.y, slow.y) <= TOL, name


def test_compiled_dopri5_meets_its_tolerance_against_scipy():
    from scipy.integrate import solve_ivp

    from labkit.core import dopri5

    lorenz = get_system("Lorenz")
    y0 = _starts(lorenz, n=3)
    times = np.linspace(0.0, 2.0, 21)
    fast = dopri5(lorenz.vector_field(), y0, torch.tensor(times), rtol=1e-10, atol=1e-10)
    for i in range(3):
        ref = solve_ivp(lambda t, y: lorenz.rhs(t, torch.tensor(y)).numpy(), (0.0, 2.0),
                        y0[i].numpy(), method="DOP853", rtol=1e-13, atol=1e-13, t_eval=times)
        # local errors of 1e-10 over ~600 steps, stretched by exp(0.9 t) <= 6 by t = 2
        np.testing.assert_allclose(fast.y[i].numpy(), ref.y.T, rtol=0, atol=1e-6)


def test_compiled_dopri5_flags_what_the_eager_solver_flags():
    from labkit.core import dopri5

    lorenz = get_system("Lorenz")
    y0 = _starts(lorenz, n=6, spread=0.5)
    times = torch.linspace(0.0, 1.0, 11, dtype=torch.float64)
    peaks = dopri5(lorenz.vector_field(), y0, times, rtol=1e-8, atol=1e-8).y.abs().amax((1, 2))
    kw = dict(rtol=1e-8, atol=1e-8, bound=float(peaks.median()))
    fast = dopri5(lorenz.vector_field(), y0, times, fast="compiled", **kw)
    slow = dopri5(lorenz.vector_field(), y0, times, fast="eager", **kw)
    assert 0 < fast.n_diverged < 6
    assert torch.equal(fast.diverged, slow.diverged)
    torch.testing.assert_close(fast.diverged_at, slow.diverged_at, equal_nan=True)
    assert torch.equal(fast.y.isnan(), slow.y.isnan())
    few = dopri5(lorenz.vector_field(), y0, times, rtol=1e-8, atol=1e-8, max_steps=3)
    assert few.out_of_steps.all() and not few.diverged.any()  # out of steps is no divergence


# --- the printed torch field (the route for CUDA tensors) -------------------------------


@pytest.mark.parametrize("name", sorted(set(list_systems("flow") + list_systems("map"))
                                        - UNTRACED))
def test_printed_torch_field_equals_the_eager_field(name):
    from labkit.core._torchgen import TorchField, torch_function

    system = get_system(name)
    field = system.vector_field()
    y0 = _starts(system, n=6)
    t = torch.tensor(0.37, dtype=torch.float64)
    printed = TorchField(torch_function(trace_system(name)),
                         field.kernel_source.params(y0), name)
    got, want = printed(t, y0), field(t, y0)
    assert got.shape == want.shape and got.dtype == want.dtype
    assert _rel_err(got, want) <= TOL


def test_printed_rk4_step_follows_a_parameter_batch():
    system = get_system("Lorenz")
    rho = torch.tensor([20.0, 28.0, 35.0], dtype=torch.float64)
    field = system.vector_field(rho=rho)
    y0 = _starts(system, n=3)
    step = kernels.torch_step(field.kernel_source, y0, 0.01)
    t = torch.zeros((), dtype=torch.float64)
    from labkit.core import rk4_step

    assert _rel_err(step(t, y0), rk4_step(field, t, y0, 0.01)) <= TOL


def test_torch_step_declines_what_does_not_trace():
    system = get_system("BlinkingVortexMap")
    field = system.vector_field()
    assert kernels.torch_step(field.kernel_source, _starts(system), 0.1) is None
    assert kernels.torch_step(None, torch.zeros(3), 0.1) is None


@pytest.mark.slow
@pytest.mark.parametrize("name", ["Lorenz", "Duffing"])
def test_torch_compiled_rk4_step_equals_eager(name):
    """The step CUDA runs under ``fast="compiled"``, built by inductor's C++ backend here."""
    from labkit.core import rk4_step

    system = get_system(name)
    field = system.vector_field()
    y0 = _starts(system, n=5)
    step = kernels.torch_step(field.kernel_source, y0, system.dt, compile=True)
    t = torch.tensor(0.25, dtype=torch.float64)
    y_fast, y_slow = y0, y0
    for i in range(20):
        y_fast = step(t + i * system.dt, y_fast)
        y_slow = rk4_step(field, t + i * system.dt, y_slow, system.dt)
    assert _rel_err(y_fast, y_slow) <= 1e-11


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["Lorenz", "Thomas", "LorenzCoupled"])
@pytest.mark.parametrize("fast", ["auto", "compiled", "graph"])
def test_cuda_catalogue_rk4_equals_the_cpu_kernel(name, fast):
    """On CUDA the catalogue field runs as printed torch (Triton under ``"compiled"``),
    replayed in a CUDA graph; float64 results agree with the CPU C kernel."""
    system = get_system(name)
    field = system.vector_field()
    y0 = _starts(system, n=64)
    span = (0.0, 200 * system.dt)
    cpu = rk4(field, y0, span, system.dt, save_every=20, fast="compiled")
    cuda = rk4(field, y0.cuda(), span, system.dt, save_every=20, fast=fast)
    assert _rel_err(cuda.y.cpu(), cpu.y) <= 1e-9
    assert torch.equal(cuda.diverged.cpu(), cpu.diverged)
