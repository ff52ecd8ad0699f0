"""GTF training of K seeds at once (one ``GTFTrainer`` with K members) against K separate runs of
``GTFTrainer`` one after the other (timed as one run's steps, times K), in the same
process: member-steps per second and the ratio. Both train the same models (the tests check that every member equals its single
run), so the ratio is pure speed.

    python bench/gtf_ensemble.py                       # CPU, 1 thread, K = 1, 4, 16
    python bench/gtf_ensemble.py --device cuda --threads 0 --members 1 8 32 128

Settings are ``GTFConfig.official()`` (clipped shPLRNN, L = 50, batches of 16 sequences of
200) on Lorenz-63; ``--steps`` timed steps per configuration after one warm-up step.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from labkit.dynamics import GTFConfig, GTFTrainer, reconstruction_data


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(step, n: int, device: str) -> float:
    step(0)  # warm-up (allocations, kernels)
    _sync(device)
    began = time.perf_counter()
    for i in range(1, n + 1):
        step(i)
    _sync(device)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor()
    print(f"{time.strftime('%Y-%m-%d')}, {platform.machine()} {name}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, device {args.device}")
    data = reconstruction_data("Lorenz", n_steps=20_000, n_test=0, seed=0)
    cfg = GTFConfig.official(steps=args.steps + 1)
    print(f"{'K':>5} {'separate member-steps/s':>24} {'ensemble member-steps/s':>24} {'ratio':>7}")
    for k in args.members:
        single = GTFTrainer(data, cfg, seed=0, device=args.device)
        sep = _timed(single.step, args.steps, args.device) * k  # K runs one after the other
        ens = GTFTrainer(data, cfg, seeds=k, device=args.device)
        together = _timed(ens.step, args.steps, args.device)
        n = args.steps * k
        print(f"{k:>5} {n / sep:>24.1f} {n / together:>24.1f} {sep / together:>6.1f}x", flush=True)


if __name__ == "__main__":
    main()
