"""Lorenz ensemble throughput: labkit's batched RK4 against dysts, at matched accuracy.

One run measures, on the same machine and the same system (dysts' Lorenz parameters):

- dysts' default ``make_trajectory`` (scipy Radau, rtol = atol = 1e-12, one initial
  condition at a time) and dysts with ``method="RK45"``;
- labkit's RK4 on an ensemble of ``--ics`` initial conditions in one batched call, at
  ``--substeps`` RK4 steps per output sample;

each producing ``--points`` samples over dysts' default span (10,000 points at 100 per
period = 150 time units). Accuracy is the *time to divergence* from a tight reference
(scipy DOP853, rtol = atol = 1e-13): the first time a trajectory is farther than
``--threshold`` from it, in Lyapunov times (lambda_1 = 0.9056). It prints throughput
(samples per second) and the ratio against each dysts mode.

    python bench/integrate_horizon.py          # the full benchmark (several minutes)
    python bench/integrate_horizon.py --quick  # a small smoke run
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings

import numpy as np
import torch
from scipy.integrate import solve_ivp

from labkit.core import describe_device, resolve_device, rk4
from labkit.dynamics import get_system

LAMBDA1 = 0.9056  # Sprott (2003), table A.1


def dysts_lorenz():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Numba not installed")
        import dysts.flows

    return dysts.flows.Lorenz()


def divergence_time(traj: np.ndarray, ref: np.ndarray, t: np.ndarray, threshold: float) -> float:
    """First time at which ``|traj - ref| > threshold`` (the whole span if never)."""
    far = np.linalg.norm(traj - ref, axis=-1) > threshold
    return float(t[np.argmax(far)]) if far.any() else float(t[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ics", type=int, default=1000, help="labkit ensemble size")
    parser.add_argument("--points", type=int, default=10_000, help="samples per trajectory")
    parser.add_argument("--substeps", type=int, nargs="+", default=[1, 2, 4],
                        help="RK4 steps per output sample (one labkit run each)")
    parser.add_argument("--dysts-ics", type=int, default=1, help="ICs for dysts' Radau default")
    parser.add_argument("--rk45-ics", type=int, default=3, help="ICs for dysts with RK45")
    parser.add_argument("--rk45-rtol", type=float, default=1e-9, help="RK45 rtol = atol")
    parser.add_argument("--ref-ics", type=int, default=3, help="ICs checked against DOP853")
    parser.add_argument("--threshold", type=float, default=1.0, help="divergence distance")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.ics, args.points, args.substeps = 64, 1000, [1, 2]
        args.dysts_ics, args.rk45_ics, args.ref_ics = 1, 1, 1

    model = dysts_lorenz()
    system = get_system("Lorenz")
    span = model.period * args.points / 100  # dysts' default: 100 points per period
    t = np.linspace(0.0, span, args.points)
    rng = np.random.default_rng(0)
    ics = np.asarray(system.initial_condition) + rng.normal(0.0, 1.0, (args.ics, 3))
    n_check = max(args.ref_ics, args.dysts_ics, args.rk45_ics)

    print(f"# Lorenz, {args.points} samples over t = {span:.2f} ({span * LAMBDA1:.0f} "
          f"Lyapunov times); {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} torch threads; {describe_device()}")

    start = time.perf_counter()
    refs = [solve_ivp(lambda tt, y: model.rhs(y, tt), (0.0, span), ics[i], method="DOP853",
                      rtol=1e-13, atol=1e-13, t_eval=t).y.T for i in range(n_check)]
    print(f"reference DOP853 rtol 1e-13: {n_check} ICs in {time.perf_counter() - start:.1f} s")

    rows = []
    for label, method, n, tol in (("dysts default (Radau 1e-12)", "Radau", args.dysts_ics, 1e-12),
                                  (f"dysts RK45 ({args.rk45_rtol:g})", "RK45", args.rk45_ics,
                                   args.rk45_rtol)):
        start = time.perf_counter()
        trajs = [model.make_trajectory(args.points, init_cond=ics[i], method=method, rtol=tol,
                                       atol=tol) for i in range(n)]
        elapsed = time.perf_counter() - start
        horizon = np.mean([divergence_time(trajs[i], refs[i], t, args.threshold)
                           for i in range(n)]) * LAMBDA1
        rows.append((label, n, elapsed, n * args.points / elapsed, horizon))

    device = resolve_device(args.device)
    field = system.vector_field()
    y0 = torch.tensor(ics, dtype=torch.float64, device=device)
    # On CUDA, each step size runs twice: step by step, and with the steps between two
    # saved samples captured in one CUDA graph (rk4's fast path).
    modes = ("eager", "graph") if device.type == "cuda" else ("eager",)
    for k, mode in ((k, mode) for k in args.substeps for mode in modes):
        dt = span / ((args.points - 1) * k)
        rk4(field, y0[:2], (0.0, 10 * dt), dt)  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        traj = rk4(field, y0, (0.0, span), dt, save_every=k, fast=mode)
        if device.type == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        y = traj.y.cpu().numpy()
        horizon = np.mean([divergence_time(y[i], refs[i], t, args.threshold)
                           for i in range(args.ref_ics)]) * LAMBDA1
        rows.append((f"labkit RK4 {device.type} {mode}, dt={dt:.2e}", args.ics, elapsed,
                     args.ics * args.points / elapsed, horizon))

    base = {r[0]: r[3] for r in rows if r[0].startswith("dysts")}
    print(f"\n{'method':38s} {'ICs':>5s} {'time s':>9s} {'samples/s':>11s} "
          f"{'horizon (Lyap. t)':>18s} " + " ".join(f"{'x ' + k.split(' (')[0][6:]:>14s}"
                                                    for k in base))
    for label, n, elapsed, rate, horizon in rows:
        ratios = " ".join(f"{rate / b:14.1f}" for b in base.values())
        print(f"{label:38s} {n:5d} {elapsed:9.2f} {rate:11.4g} {horizon:18.1f} {ratios}")


if __name__ == "__main__":
    main()
