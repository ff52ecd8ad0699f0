"""Fixed-step RK4 throughput: labkit's compiled kernel against the practical limits.

One run, on one machine, one thread, float64, the same RK4 step and the same step size,
for three catalogue systems (Lorenz: polynomial; Thomas: sines; LorenzCoupled: 6-D):

- **numba**: an ``@njit`` loop over trajectories and steps calling dysts' own jitted
  right-hand side (the practical CPU limit for this algorithm);
- **jax**: RK4 in ``lax.scan``, ``jit`` + ``vmap`` over trajectories (dysts' code run on
  ``jax.numpy``), and **diffrax**: ``diffeqsolve`` with the classical RK4 tableau (diffrax
  ships no RK4 solver, but its explicit Runge-Kutta class takes any tableau), ``jit`` +
  ``vmap``;
- **torchdiffeq**: ``odeint(method="rk4")`` on labkit's torch field;
- **labkit eager** (``rk4(fast="eager")``) and **labkit compiled** (``fast="compiled"``);
- **dysts**: ``make_trajectory`` (scipy, one IC at a time), timed on a few ICs and
  scaled to the ensemble, marked as such.

Each figure is the minimum of ``--rounds`` timed runs after a warm-up (compilation is
reported separately as the first call). Ratios are against numba in the same run.

Peers are not labkit dependencies: ``make bench-env`` builds ``.venv-bench`` with them
(``bench/requirements-peers.txt``), then

    .venv-bench/bin/python bench/integrate.py                 # 1000 ICs x 10,000 steps
    .venv-bench/bin/python bench/integrate.py --ics 16        # the notebooks' regime
    .venv-bench/bin/python bench/integrate.py --memory        # peak RSS, 1e5 ICs x 1000
    .venv-bench/bin/python bench/integrate.py --threads --steps 1000   # thread policy
    .venv-bench/bin/python bench/integrate.py --adaptive      # dopri5 against diffrax
    .venv-bench/bin/python bench/integrate.py --quick         # a smoke run
    python bench/integrate.py --device cuda --ics 100000 --steps 1000   # on a GPU

A peer that is not installed is listed as such and skipped.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import subprocess
import sys
import time
import warnings

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                                   "intra_op_parallelism_threads=1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("LABKIT_KERNEL_THREADS", "1")

import numpy as np
import torch

from labkit.core import rk4
from labkit.dynamics import get_system

SYSTEMS = ("Lorenz", "Thomas", "LorenzCoupled")


def _dysts_class(name: str):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Numba not installed")
        import dysts.flows

    return getattr(dysts.flows, name)


def _timed(run, rounds: int) -> tuple[float, float]:
    """(first call, min over ``rounds`` later calls) in seconds."""
    start = time.perf_counter()
    run()
    first = time.perf_counter() - start
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return first, best


def numba_runner(name: str, y0: np.ndarray, params: tuple, dt: float, steps: int):
    try:
        import numba
    except ImportError:
        return None
    rhs = _dysts_class(name)._rhs
    if not hasattr(rhs, "py_func"):
        rhs = numba.njit(rhs)
    dim = y0.shape[1]

    @numba.njit(cache=False)
    def loop(y0, params, dt, steps):
        out = np.empty_like(y0)
        k1 = np.empty(dim)
        k2 = np.empty(dim)
        k3 = np.empty(dim)
        k4 = np.empty(dim)
        s = np.empty(dim)
        for b in range(y0.shape[0]):
            y = y0[b].copy()
            t = 0.0
            for _ in range(steps):
                d = rhs(*_unpack(y), t, *params)
                for i in range(dim):
                    k1[i] = d[i]
                    s[i] = y[i] + dt / 2 * k1[i]
                d = rhs(*_unpack(s), t + dt / 2, *params)
                for i in range(dim):
                    k2[i] = d[i]
                    s[i] = y[i] + dt / 2 * k2[i]
                d = rhs(*_unpack(s), t + dt / 2, *params)
                for i in range(dim):
                    k3[i] = d[i]
                    s[i] = y[i] + dt * k3[i]
                d = rhs(*_unpack(s), t + dt, *params)
                for i in range(dim):
                    k4[i] = d[i]
                    y[i] = y[i] + dt / 6 * (k1[i] + 2 * k2[i] + 2 * k3[i] + k4[i])
                t += dt
            out[b] = y
        return out

    # numba cannot splat an array: a tuple unpack of the right length per dimension
    _unpack = _unpackers(numba)[dim]
    return lambda: loop(y0, params, dt, steps)


def _unpackers(numba):
    @numba.njit
    def u3(y):
        return y[0], y[1], y[2]

    @numba.njit
    def u6(y):
        return y[0], y[1], y[2], y[3], y[4], y[5]

    return {3: u3, 6: u6}


def jax_runner(name: str, y0: np.ndarray, params: tuple, dt: float, steps: int):
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    import types

    rhs = _dysts_class(name)._rhs
    rhs = getattr(rhs, "py_func", rhs)
    rhs = types.FunctionType(rhs.__code__, {**rhs.__globals__, "np": jnp}, rhs.__name__)

    def field(t, y):
        return jnp.stack(rhs(*y, t, *params))

    def step(carry, _):
        t, y = carry
        k1 = field(t, y)
        k2 = field(t + dt / 2, y + dt / 2 * k1)
        k3 = field(t + dt / 2, y + dt / 2 * k2)
        k4 = field(t + dt, y + dt * k3)
        return (t + dt, y + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)), None

    @jax.jit
    def run(y0s):
        return jax.vmap(lambda y: jax.lax.scan(step, (0.0, y), None, length=steps)[0][1])(y0s)

    y = jnp.asarray(y0)
    return lambda: run(y).block_until_ready()


def diffrax_runner(name: str, y0: np.ndarray, params: tuple, dt: float, steps: int):
    """diffrax's ``diffeqsolve`` with the classical RK4 tableau (diffrax ships no RK4
    solver; its explicit Runge-Kutta base class takes any Butcher tableau), fixed step,
    ``jit`` + ``vmap`` over trajectories, saving the last state."""
    try:
        import diffrax
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    import types

    class RK4(diffrax.AbstractERK):
        tableau = diffrax.ButcherTableau(
            c=np.array([0.5, 0.5, 1.0]), b_sol=np.array([1 / 6, 1 / 3, 1 / 3, 1 / 6]),
            b_error=np.zeros(4),
            a_lower=(np.array([0.5]), np.array([0.0, 0.5]), np.array([0.0, 0.0, 1.0])))
        interpolation_cls = diffrax.ThirdOrderHermitePolynomialInterpolation.from_k

        def order(self, terms):
            return 4

    rhs = _dysts_class(name)._rhs
    rhs = getattr(rhs, "py_func", rhs)
    rhs = types.FunctionType(rhs.__code__, {**rhs.__globals__, "np": jnp}, rhs.__name__)
    term = diffrax.ODETerm(lambda t, y, _: jnp.stack(rhs(*y, t, *params)))

    @jax.jit
    def run(ys):
        return jax.vmap(lambda y: diffrax.diffeqsolve(
            term, RK4(), 0.0, steps * dt, dt, y, saveat=diffrax.SaveAt(t1=True),
            max_steps=steps + 16).ys[-1])(ys)

    y = jnp.asarray(y0)
    return lambda: run(y).block_until_ready()


def torchdiffeq_runner(field, y0: torch.Tensor, dt: float, steps: int):
    try:
        from torchdiffeq import odeint
    except ImportError:
        return None
    t = torch.tensor([0.0, steps * dt], dtype=torch.float64)
    return lambda: odeint(field, y0, t, method="rk4", options={"step_size": dt})


def dysts_seconds(name: str, y0: np.ndarray, dt: float, steps: int, n: int) -> float:
    """Seconds for dysts' ``make_trajectory`` (scipy, per IC) on ``n`` ICs, scaled to all."""
    model = _dysts_class(name)()
    start = time.perf_counter()
    for i in range(n):
        model.make_trajectory(steps + 1, init_cond=y0[i], dt=dt, method="RK45", rtol=1e-9,
                              atol=1e-9, resample=False)
    return (time.perf_counter() - start) * y0.shape[0] / n


def _cuda_runner(field, y0: torch.Tensor, dt: float, steps: int, fast: str):
    def run():
        rk4(field, y0, (0.0, steps * dt), dt, save_every=max(1, steps // 10), fast=fast)
        torch.cuda.synchronize()

    return run


def speed_cuda(args: argparse.Namespace) -> None:
    """On CUDA: labkit's eager loop against the printed torch field replayed in CUDA graphs
    (``fast="auto"``) and the Triton-compiled step (``fast="compiled"``; its first call
    includes the compile), and torchdiffeq and jax on the same GPU where installed; ratios
    against labkit eager."""
    print(f"# RK4 on {torch.cuda.get_device_name()}, {args.ics} ICs x {args.steps} steps, "
          f"float64; torch {torch.__version__}, {time.strftime('%Y-%m-%d')}")
    print(f"{'system':14s} {'method':26s} {'first s':>9s} {'best s':>9s} "
          f"{'ns/traj-step':>13s} {'x eager':>8s}")
    for name in args.systems:
        system = get_system(name)
        gen = torch.Generator().manual_seed(0)
        y0 = system.default_state() * (1 + 0.01 * torch.randn(args.ics, system.dim,
                                                              generator=gen,
                                                              dtype=torch.float64))
        field, dt = system.vector_field(), system.dt
        y0c = y0.cuda()
        runners = {"labkit eager (cuda)": _cuda_runner(field, y0c, dt, args.steps, "eager"),
                   "labkit auto: printed+graph": _cuda_runner(field, y0c, dt, args.steps,
                                                              "auto"),
                   "labkit compiled: Triton": _cuda_runner(field, y0c, dt, args.steps,
                                                           "compiled")}
        tde = torchdiffeq_runner(field, y0c, dt, args.steps)
        if tde is not None:
            runners["torchdiffeq rk4 (cuda)"] = lambda tde=tde: (tde(), torch.cuda.synchronize())
        params = tuple(system.parameters[k] for k in _param_order(name))
        jx = jax_runner(name, y0.numpy(), params, dt, args.steps)
        if jx is not None:
            runners["jax jit+vmap (default device)"] = jx
        rows = [(label, *_timed(run, args.rounds)) for label, run in runners.items()]
        base = rows[0][2]
        for label, first, best in rows:
            per = best / (args.ics * args.steps) * 1e9
            print(f"{name:14s} {label:26s} {first:9.3f} {best:9.3f} {per:13.3f} "
                  f"{best / base:8.3f}")


def speed(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    print(f"# RK4, {args.ics} ICs x {args.steps} steps, float64, one thread; "
          f"{platform.machine()}, torch {torch.__version__}, {time.strftime('%Y-%m-%d')}")
    print(f"{'system':14s} {'method':26s} {'first s':>9s} {'best s':>9s} "
          f"{'us/traj-step':>13s} {'x numba':>8s}")
    for name in args.systems:
        system = get_system(name)
        rng = np.random.default_rng(0)
        y0 = np.asarray(system.initial_condition) * (1 + 0.01 * rng.normal(size=(args.ics,
                                                                                    system.dim)))
        params = tuple(system.parameters[k] for k in _param_order(name))
        dt = system.dt
        field = system.vector_field()
        y0t = torch.tensor(y0)
        rows = []
        runners = {
            "numba @njit loop": numba_runner(name, y0, params, dt, args.steps),
            "jax jit+vmap (lax.scan)": jax_runner(name, y0, params, dt, args.steps),
            "diffrax RK4 jit+vmap": diffrax_runner(name, y0, params, dt, args.steps),
            "torchdiffeq rk4": torchdiffeq_runner(field, y0t, dt, args.steps),
            "labkit eager": _labkit_runner(field, y0t, dt, args.steps, "eager"),
            "labkit compiled": _labkit_runner(field, y0t, dt, args.steps, "compiled"),
        }
        slow = {"torchdiffeq rk4", "labkit eager"}
        for label, run in runners.items():
            if run is None:
                rows.append((label, None, None))
                continue
            rounds = 1 if label in slow else args.rounds
            rows.append((label, *_timed(run, rounds)))
        if args.dysts_ics:
            rows.append((f"dysts RK45 1e-9 (x{args.ics // args.dysts_ics} of "
                         f"{args.dysts_ics} ICs)", None,
                         dysts_seconds(name, y0, dt, args.steps, args.dysts_ics)))
        base = next((r[2] for r in rows if r[0].startswith("numba") and r[2]), None)
        for label, first, best in rows:
            if best is None:
                print(f"{name:14s} {label:26s} {'not installed':>9s}")
                continue
            per = best / (args.ics * args.steps) * 1e6
            ratio = f"{best / base:8.2f}" if base else "       -"
            first_s = f"{first:9.3f}" if first is not None else "        -"
            print(f"{name:14s} {label:26s} {first_s} {best:9.3f} {per:13.4f} {ratio}")


def _labkit_runner(field, y0: torch.Tensor, dt: float, steps: int, fast: str):
    return lambda: rk4(field, y0, (0.0, steps * dt), dt, save_every=steps, fast=fast)


def _param_order(name: str) -> list[str]:
    import inspect

    rhs = _dysts_class(name)._rhs
    names = list(inspect.signature(getattr(rhs, "py_func", rhs)).parameters)
    return names[names.index("t") + 1:]


_MEMORY_CHILD = """
import resource, sys, torch
from labkit.core import rk4
from labkit.dynamics import get_system
mode, n, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
lorenz = get_system("Lorenz")
y0 = lorenz.default_state() + torch.randn(n, 3, dtype=torch.float64)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
kw = {"full": {}, "float32": {"out_dtype": torch.float32}, "last": {"save_every": steps},
      "eager": {"fast": "eager"}}[mode]
traj = rk4(lorenz.vector_field(), y0, (0.0, steps * 0.01), 0.01, **kw)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((peak - base) / 1024, traj.y.element_size() * traj.y.nelement() / 2**20)
"""


def memory(args: argparse.Namespace) -> None:
    n, steps = (10_000, 100) if args.quick else (100_000, 1000)
    print(f"# peak RSS above the start, Lorenz, {n} ICs x {steps} RK4 steps, float64 state")
    print(f"{'output':34s} {'peak MiB':>9s} {'output MiB':>11s}")
    labels = {"full": "every step, float64 (default)", "float32": "every step, out_dtype=float32",
              "last": "save_every=steps (last state)", "eager": "every step, float64, eager"}
    for mode in ("full", "float32", "last", "eager"):
        out = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, mode, str(n), str(steps)],
                             capture_output=True, text=True, check=True)
        peak, size = (float(v) for v in out.stdout.split())
        print(f"{labels[mode]:34s} {peak:9.0f} {size:11.1f}")


def adaptive(args: argparse.Namespace) -> None:
    """dopri5 (rtol = atol = ``--rtol``) on Lorenz, ``--ics`` ICs over t in [0, 20] with 2001
    outputs: labkit compiled, labkit eager, diffrax (``Dopri5`` + PID controller, ``jit``
    + ``vmap``) and torchdiffeq; accuracy against scipy's DOP853 at 1e-12 on 3 ICs."""
    from scipy.integrate import solve_ivp

    from labkit.core import dopri5

    torch.set_num_threads(1)
    lorenz = get_system("Lorenz")
    rng = np.random.default_rng(0)
    y0 = np.asarray(lorenz.initial_condition) + rng.normal(size=(args.ics, 3))
    t_eval = np.linspace(0.0, 20.0, 2001)
    tol = args.rtol
    refs = [solve_ivp(lambda t, y: lorenz.rhs(t, torch.tensor(y)).numpy(), (0.0, 20.0),
                      y0[i], method="DOP853", rtol=1e-12, atol=1e-12, t_eval=t_eval).y.T
            for i in range(3)]
    print(f"# dopri5, Lorenz, {args.ics} ICs, t in [0, 20], 2001 outputs, rtol = atol = "
          f"{tol:g}, one thread; error: max |y - DOP853(1e-12)| over 3 ICs at t = 2 / 10")
    field = lorenz.vector_field()
    y0t = torch.tensor(y0)
    times = torch.tensor(t_eval)
    rows: list[tuple[str, float | None, float, np.ndarray]] = []

    def labkit(fast: str):
        return lambda: dopri5(field, y0t, times, rtol=tol, atol=tol, fast=fast).y.numpy()

    for label, run, rounds in (("labkit compiled", labkit("compiled"), args.rounds),
                               ("labkit eager", labkit("eager"), 0)):
        first, best = _timed(run, rounds) if rounds else (None, _timed(run, 0)[0])
        rows.append((label, first, best, run()))
    try:
        import diffrax
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        beta, rho, sigma = (lorenz.parameters[k] for k in ("beta", "rho", "sigma"))

        def vf(t, y, _):
            x, yy, z = y
            return jnp.stack([sigma * yy - sigma * x, rho * x - x * z - yy, x * yy - beta * z])

        term = diffrax.ODETerm(vf)
        saveat = diffrax.SaveAt(ts=jnp.asarray(t_eval))
        ctrl = diffrax.PIDController(rtol=tol, atol=tol)

        @jax.jit
        def solve(ys):
            return jax.vmap(lambda y: diffrax.diffeqsolve(
                term, diffrax.Dopri5(), 0.0, 20.0, None, y, saveat=saveat,
                stepsize_controller=ctrl, max_steps=100_000).ys)(ys)

        yj = jnp.asarray(y0)
        first, best = _timed(lambda: solve(yj).block_until_ready(), args.rounds)
        rows.append(("diffrax Dopri5 jit+vmap", first, best, np.asarray(solve(yj))))
    except ImportError:
        rows.append(("diffrax Dopri5 jit+vmap", None, math.nan, None))
    try:
        from torchdiffeq import odeint

        def tde():
            return odeint(field, y0t, times, method="dopri5", rtol=tol, atol=tol).movedim(
                0, 1).numpy()

        first, best = _timed(tde, 0)
        rows.append(("torchdiffeq dopri5", None, first, tde()))
    except ImportError:
        rows.append(("torchdiffeq dopri5", None, math.nan, None))
    base = rows[0][2]
    print(f"{'method':26s} {'first s':>8s} {'best s':>8s} {'x compiled':>10s} "
          f"{'err t=2':>9s} {'err t=10':>9s}")
    for label, first, best, y in rows:
        if y is None:
            print(f"{label:26s} not installed")
            continue
        err2 = max(float(np.abs(y[i, 200] - refs[i][200]).max()) for i in range(3))
        err10 = max(float(np.abs(y[i, 1000] - refs[i][1000]).max()) for i in range(3))
        first_s = f"{first:8.3f}" if first is not None else "       -"
        print(f"{label:26s} {first_s} {best:8.3f} {best / base:10.2f} {err2:9.2e} "
              f"{err10:9.2e}")


def threads(args: argparse.Namespace) -> None:
    """The kernels' thread policy against one thread and against always two threads."""
    from labkit.core import kernels

    os.environ.pop("LABKIT_KERNEL_THREADS", None)
    lorenz = get_system("Lorenz")
    field = lorenz.vector_field()
    cores = kernels._cores()
    print(f"# Lorenz RK4, {args.steps} steps, compiled kernel; {cores} cores; policy: one "
          f"thread per {kernels.MIN_WORK_PER_THREAD:,} trajectory-steps")
    print(f"{'ICs':>7s} {'1 thread s':>11s} {'all cores s':>12s} {'policy s':>9s} "
          f"{'policy threads':>15s} {'policy / 1':>11s}")
    default = kernels.MIN_WORK_PER_THREAD
    for n in (16, 64, 256, 1024, 4096, 16384, 65536):
        y0 = lorenz.default_state() + torch.randn(n, 3, dtype=torch.float64)

        def run(y0=y0):
            rk4(field, y0, (0.0, args.steps * 0.01), 0.01, save_every=args.steps)

        kernels.MIN_WORK_PER_THREAD = 10**18
        one = _timed(run, args.rounds)[1]
        kernels.MIN_WORK_PER_THREAD = 1
        every = _timed(run, args.rounds)[1]
        kernels.MIN_WORK_PER_THREAD = default
        policy = _timed(run, args.rounds)[1]
        used = min(kernels.kernel_threads(n * args.steps), n)
        print(f"{n:7d} {one:11.4f} {every:12.4f} {policy:9.4f} {used:15d} "
              f"{policy / one:11.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ics", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dysts-ics", type=int, default=2, help="ICs timed for dysts (0: skip)")
    parser.add_argument("--memory", action="store_true", help="peak RSS instead of speed")
    parser.add_argument("--adaptive", action="store_true",
                        help="dopri5 against diffrax and torchdiffeq at equal tolerance")
    parser.add_argument("--rtol", type=float, default=1e-8, help="--adaptive: rtol = atol")
    parser.add_argument("--threads", action="store_true",
                        help="the kernels' thread policy against 1 and all threads")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                        help="cuda: labkit's eager, auto (graph) and compiled (Triton) paths")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.ics, args.steps, args.rounds, args.dysts_ics = 16, 200, 1, 1
    if args.adaptive:
        adaptive(args)
    elif args.threads:
        threads(args)
    elif args.memory:
        memory(args)
    elif args.device == "cuda":
        speed_cuda(args)
    else:
        speed(args)


if __name__ == "__main__":
    main()
