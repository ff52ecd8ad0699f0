"""The finite-sample floor of the DSR metrics on Lorenz-63, at the official settings.

Two independent stretches of the true system are never at D_stsp = D_H = 0; a model
can at best reach the values measured here between such stretches. One run integrates
``--ics`` trajectories of Lorenz-63 (the catalogue's parameters, labkit's batched RK4 at
``dt = 0.01``, a transient of 100 time units dropped), each ``2 * --steps`` samples long,
and reports over all pairs of distinct trajectories (independent stretches) and over the
two halves of each trajectory (a stretch against its own later segment):

- D_stsp with 30 bins per dimension (binned KL, grid on the first stretch),
- D_H with Gaussian smoothing sigma = 20 frequency bins,

at each length in ``--lengths``; and, as the AL-RNN tutorial does, each shorter stretch
against the longest true one (D_stsp only: D_H needs equal lengths).

    python bench/dsr_metrics_floor.py                 # 100k steps, 8 trajectories
    python bench/dsr_metrics_floor.py --quick         # a small smoke run
"""

from __future__ import annotations

import argparse
import itertools
import platform
import time

import numpy as np
import torch

from labkit.core.integrate import rk4
from labkit.dynamics import get_system, lorenz, metric_floor, state_space_divergence


def trajectories(n_ics: int, n_steps: int, dt: float, seed: int) -> np.ndarray:
    """``[n_ics, n_steps, 3]`` Lorenz-63 samples after a transient of 100 time units."""
    system = get_system("Lorenz")
    params = {k: float(v) for k, v in system.parameters.items()}
    gen = torch.Generator().manual_seed(seed)
    y0 = system.default_state()[None] + 5.0 * torch.randn(n_ics, 3, generator=gen,
                                                          dtype=torch.float64)
    transient = 100.0
    traj = rk4(lambda t, y: lorenz(t, y, **params), y0,
               (0.0, transient + n_steps * dt), dt, on_divergence="raise")
    return traj.y[:, -n_steps:].numpy()


def summarize(values: list[float]) -> str:
    v = np.asarray(values)
    return (f"mean {v.mean():.3f} +- {v.std(ddof=1) if len(v) > 1 else 0:.3f} "
            f"[{v.min():.3f}, {v.max():.3f}] (n={len(v)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ics", type=int, default=8)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--lengths", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--dt", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.ics, args.steps, args.lengths = 3, 10_000, [5_000, 10_000]
    torch.set_num_threads(1)
    print(f"# {platform.node()} {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}, {time.strftime('%Y-%m-%d')}")
    t0 = time.perf_counter()
    y = trajectories(args.ics, 2 * args.steps, args.dt, args.seed)
    print(f"integrated {args.ics} x {2 * args.steps} RK4 steps in "
          f"{time.perf_counter() - t0:.1f} s")
    for n in args.lengths:
        if n > args.steps:
            continue
        t0 = time.perf_counter()
        pairs = [metric_floor(y[i, :n], y[j, :n]) for i, j in
                 itertools.combinations(range(args.ics), 2)]
        halves = [metric_floor(y[i, :n], y[i, args.steps:args.steps + n])
                  for i in range(args.ics)]
        print(f"\nlength {n} (dt {args.dt}: {n * args.dt:g} time units), "
              f"{time.perf_counter() - t0:.1f} s")
        for label, floors in (("independent ICs", pairs), ("later segment", halves)):
            print(f"  {label:16s} D_stsp (30 bins) {summarize([f.d_stsp for f in floors])}")
            print(f"  {'':16s} D_H (sigma 20)    {summarize([f.d_h for f in floors])}")
    # The AL-RNN tutorial's protocol: a short generated stretch against the whole test set.
    long = max(n for n in args.lengths if n <= args.steps)
    for n in args.lengths:
        if n >= long:
            continue
        values = [state_space_divergence(y[i, :long], y[i, args.steps:args.steps + n])
                  for i in range(args.ics)]
        print(f"\ntruth {long} samples against a later stretch of {n} (D_stsp only)")
        print(f"  {'later segment':16s} D_stsp (30 bins) {summarize(values)}")


if __name__ == "__main__":
    main()
