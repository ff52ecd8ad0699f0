"""Lyapunov spectra: labkit's compiled Benettin kernel against a numba loop, one run.

Lorenz (the catalogue's parameters: Lorenz 1963, beta = 8/3), ``--ics`` initial
conditions, RK4 with ``dt = 0.01``, a transient of 10 time units, then ``--time`` units of
averaging with a re-orthonormalization every step. Compared in one run, one thread, float64:

- **numba**: an ``@njit`` Benettin loop over initial conditions: the RK4 step of the state
  and of the 3 tangent vectors through dysts' hand-written Jacobian at every stage, then
  ``np.linalg.qr`` (the practical CPU limit for this algorithm);
- **labkit compiled** (``lyapunov_spectrum(fast="compiled")``: the exact tangent of the
  RK4 step, from the traced right-hand side);
- **labkit eager** (``fast="eager"``, the default difference tangent; on ``--eager-time``
  units, scaled to ``--time``).

Each figure is the minimum over ``--rounds`` runs after a warm-up; ratios are against
numba. The largest exponents are printed beside the literature's 0.9056 (Sprott 2003).

    .venv-bench/bin/python bench/lyapunov.py          # after `make bench-env`
    .venv-bench/bin/python bench/lyapunov.py --quick
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

os.environ.setdefault("LABKIT_KERNEL_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np
import torch

from labkit.dynamics import get_system, lyapunov_spectrum


def numba_benettin(y0: np.ndarray, params: tuple, dt: float, transient: int, steps: int):
    try:
        import numba
    except ImportError:
        return None
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Numba not installed")
        import dysts.flows
    rhs, jac = dysts.flows.Lorenz._rhs, dysts.flows.Lorenz._jac
    beta, rho, sigma = params

    @numba.njit
    def f(y, t):
        a, b, c = rhs(y[0], y[1], y[2], t, beta, rho, sigma)
        return np.array([a, b, c])

    @numba.njit
    def jm(y, t):
        r1, r2, r3 = jac(y[0], y[1], y[2], t, beta, rho, sigma)
        out = np.empty((3, 3))
        for j in range(3):
            out[0, j] = r1[j]
            out[1, j] = r2[j]
            out[2, j] = r3[j]
        return out

    @numba.njit
    def run(y0s, dt, transient, steps):
        res = np.zeros((y0s.shape[0], 3))
        for b in range(y0s.shape[0]):
            y = y0s[b].copy()
            t = 0.0
            for _ in range(transient):
                k1 = f(y, t)
                k2 = f(y + dt / 2 * k1, t + dt / 2)
                k3 = f(y + dt / 2 * k2, t + dt / 2)
                k4 = f(y + dt * k3, t + dt)
                y = y + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
                t += dt
            q = np.eye(3)
            acc = np.zeros(3)
            for _ in range(steps):
                k1 = f(y, t)
                j1 = jm(y, t) @ q
                y2 = y + dt / 2 * k1
                q2 = q + dt / 2 * j1
                k2 = f(y2, t + dt / 2)
                j2 = jm(y2, t + dt / 2) @ q2
                y3 = y + dt / 2 * k2
                q3 = q + dt / 2 * j2
                k3 = f(y3, t + dt / 2)
                j3 = jm(y3, t + dt / 2) @ q3
                y4 = y + dt * k3
                q4 = q + dt * j3
                k4 = f(y4, t + dt)
                j4 = jm(y4, t + dt) @ q4
                y = y + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
                q = q + dt / 6 * (j1 + 2 * j2 + 2 * j3 + j4)
                t += dt
                q, r = np.linalg.qr(q)
                for i in range(3):
                    acc[i] += np.log(abs(r[i, i]))
            res[b] = acc / (steps * dt)
        return res

    return lambda: run(y0, dt, transient, steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ics", type=int, default=32)
    parser.add_argument("--time", type=float, default=100.0)
    parser.add_argument("--eager-time", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.ics, args.time, args.eager_time, args.rounds = 4, 5.0, 1.0, 1
    torch.set_num_threads(1)
    dt, transient = 0.01, 10.0
    lorenz = get_system("Lorenz")
    rng = np.random.default_rng(0)
    y0 = np.asarray(lorenz.initial_condition) + rng.normal(size=(args.ics, 3))
    params = tuple(lorenz.parameters[k] for k in ("beta", "rho", "sigma"))
    field = lorenz.vector_field()
    y0t = torch.tensor(y0)
    print(f"# Lorenz spectrum, {args.ics} ICs, T = {args.time:g}, dt = {dt}, QR every step, "
          f"one thread, float64; {platform.machine()}, {time.strftime('%Y-%m-%d')}")

    def timed(run, rounds):
        start = time.perf_counter()
        out = run()
        first = time.perf_counter() - start
        best = float("inf")
        for _ in range(rounds):
            start = time.perf_counter()
            out = run()
            best = min(best, time.perf_counter() - start)
        return first, best, out

    rows = []
    numba_run = numba_benettin(y0, params, dt, round(transient / dt), round(args.time / dt))
    if numba_run is not None:
        first, best, out = timed(numba_run, args.rounds)
        rows.append(("numba @njit Benettin", first, best, float(np.mean(out[:, 0]))))
    else:
        rows.append(("numba @njit Benettin", None, None, None))
    first, best, out = timed(lambda: lyapunov_spectrum(field, y0t, dt=dt, time=args.time,
                                                       transient=transient, fast="compiled"),
                             args.rounds)
    rows.append(("labkit compiled (exact tangent)", first, best, float(out.mean[0])))
    eager, _, out = timed(lambda: lyapunov_spectrum(field, y0t, dt=dt, time=args.eager_time,
                                                    transient=transient, fast="eager"), 0)
    scale = (args.time + transient) / (args.eager_time + transient)
    rows.append((f"labkit eager (difference; x{scale:.1f} of T={args.eager_time:g})", None,
                 eager * scale, float(out.mean[0])))
    base = rows[0][2]
    print(f"{'method':44s} {'first s':>8s} {'best s':>8s} {'x numba':>8s} {'lambda_1':>9s}")
    for label, first, best, lam in rows:
        if best is None:
            print(f"{label:44s} {'not installed':>8s}")
            continue
        ratio = f"{best / base:8.2f}" if base else "       -"
        first_s = f"{first:8.3f}" if first is not None else "       -"
        print(f"{label:44s} {first_s} {best:8.3f} {ratio} {lam:9.4f}")


if __name__ == "__main__":
    main()
