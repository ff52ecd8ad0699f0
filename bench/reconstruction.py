"""Dynamical-systems reconstruction of a catalogue flow (default Lorenz-63): GTF-trained
clipped shPLRNN against the baselines (echo state network, SINDy, neural ODE), all scored
with D_stsp and D_H against a held-out stretch, with the floor (two true stretches) beside
them, and the learned map's largest Lyapunov exponent against the truth's (Lorenz-63: the
literature's 0.9056; other systems: labkit's recomputed invariants table).

    python bench/reconstruction.py --steps 20000          # a long CPU run (~25 min, 1 thread)
    python bench/reconstruction.py --system Lorenz96 --steps 20000   # a harder, 4-D flow
    python bench/reconstruction.py --steps 40000 --seeds 4   # four seeds in one batched run
    python bench/reconstruction.py --steps 250000 --device cuda --seeds 8   # official length, GPU

Settings are ``GTFConfig.official()`` (Hess et al. 2023: clipped shPLRNN, L = 50, batch 16,
sequences of 200, RAdam with lr 1e-3 -> 1e-6) except the number of steps; the data are
100k training samples at dt = 0.01 with 5% observation noise, and the scores use a
``--n-free``-sample free run from the first held-out sample.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from labkit.dynamics import (
    GTFConfig,
    NODEConfig,
    baseline_table,
    invariants_table,
    max_lyapunov_exponent_map,
    reconstruction_data,
    train_esn,
    train_gtf,
    train_gtf_ensemble,
    train_node,
    train_sindy,
)

#: Largest Lyapunov exponent of Lorenz-63 (Sprott, Chaos and Time-Series Analysis, 2003).
LORENZ_LAMBDA = 0.9056


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", default="Lorenz", help="a catalogue flow")
    parser.add_argument("--steps", type=int, default=20000, help="GTF training steps")
    parser.add_argument("--hidden", type=int, default=50, help="shPLRNN hidden width L")
    parser.add_argument("--n-train", type=int, default=100_000)
    parser.add_argument("--n-free", type=int, default=50_000, help="free-run length scored")
    parser.add_argument("--noise", type=float, default=0.05)
    parser.add_argument("--node-steps", type=int, default=3000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=1,
                        help="train this many seeds (seed, seed+1, ...) in one batched run")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"{time.strftime('%Y-%m-%d')}, {platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, device {args.device}", flush=True)
    began = time.perf_counter()
    if args.system == "Lorenz":
        truth, source = LORENZ_LAMBDA, "the literature"
    else:
        row = invariants_table()[args.system]
        truth = row.max_lyapunov
        source = f"labkit's table, +- {row.max_lyapunov_stderr:.3f}"
    data = reconstruction_data(args.system, n_steps=args.n_train, n_test=2 * (args.n_free + 1),
                               noise=args.noise, seed=args.seed)
    print(f"{args.system}: dt {data.dt:.4g}; data: {tuple(data.train.shape)} train, {tuple(data.test.shape)} test, "
          f"{time.perf_counter() - began:.1f} s", flush=True)
    config = GTFConfig.official(steps=args.steps, hidden_dim=args.hidden)
    if args.seeds > 1:  # several seeds in one batched run; every member gets a row
        ens = train_gtf_ensemble(data, config, seeds=[args.seed + k for k in range(args.seeds)],
                                 device=args.device)
        runs = {f"clipped shPLRNN (GTF, seed {s})": m for s, m in zip(ens.seeds, ens.members,
                                                                        strict=True)}
        seconds = ens.seconds
    else:
        gtf = train_gtf(data, config, seed=args.seed, device=args.device)
        runs, seconds = {"clipped shPLRNN (GTF)": gtf}, gtf.seconds
    for label, run in runs.items():
        loss = run.history["loss"]
        print(f"{label}: {args.steps} steps, status {run.status}; loss over the last 1000 "
              f"steps {sum(loss[-1000:]) / len(loss[-1000:]):.4f}, final alpha {run.alpha:.3f}",
              flush=True)
    print(f"GTF training: {seconds:.0f} s for {len(runs)} model(s)", flush=True)
    results = {**runs,
               "echo state network": train_esn(data, seed=args.seed),
               "SINDy": train_sindy(data),
               "neural ODE": train_node(data, NODEConfig(steps=args.node_steps), seed=args.seed,
                                        device=args.device)}
    print(baseline_table(data, results, n_generate=args.n_free).summary(), flush=True)
    for label, run in runs.items():
        model = run.model.to("cpu")
        free = run.generate(args.n_free, x0=data.test[0])
        z0 = run.observation.init_state(free[-1].to(next(model.parameters()).dtype))
        lam = float(max_lyapunov_exponent_map(model.jacobian, model.step, z0, n_steps=50_000,
                                              transient=1000, dt=data.dt))
        print(f"{label}: largest Lyapunov exponent of the learned map {lam:.4f} "
              f"({100 * abs(lam - truth) / truth:.1f}% from {truth:.4f}, {source})", flush=True)
    print(f"total {time.perf_counter() - began:.0f} s", flush=True)

if __name__ == "__main__":
    main()
