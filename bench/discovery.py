"""Symmetry discovery benchmark: labkit's LieGAN against the official LieGAN recipe, and
the acceptance sweep over the synthetic data sets.

    python bench/discovery.py                # speed: CPU-s to a sustained cosine 0.99 on two_body
    python bench/discovery.py --acceptance   # also: 5 seeds per data set, 10 control seeds

CPU seconds are ``time.process_time`` of the training (one torch thread), until the
cosine to so(2) has stayed >= 0.99 for ``window`` evaluations (the run then stops).
Both recipes run on labkit's loop with the same losses; only the settings differ
(``LieGANConfig()`` against ``LieGANConfig.official()``: 512-wide discriminator, batch
64, lr_d 2e-4, lr_g 1e-3, full-scale Kaiming basis; Yang et al. 2023, official code).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from labkit.core.train import fit
from labkit.symmetry import (
    LieGAN,
    LieGANConfig,
    anisotropic_control,
    invariant_metric,
    liegan,
    lorentz_invariant,
    o5_invariant,
    so2_invariant,
    two_body,
)

ETA = torch.diag(torch.tensor([1.0, -1.0, -1.0, -1.0], dtype=torch.float64))


def time_to_sustained(data, cfg: LieGANConfig, seed: int) -> tuple[float | None, int]:
    """CPU-s of training until the sustained crossing is confirmed (None if never)."""
    trainer = LieGAN(data, cfg, seed=seed, device="cpu")
    began = time.process_time()
    done: list[float] = []

    def cb(i, metrics, history):
        if "cosine" in metrics and trainer.found():
            done.append(time.process_time() - began)
            return True
        return None

    fit(trainer.step, cfg.steps, callbacks=[cb], history=trainer.history)
    return (done[0] if done else None), len(trainer.history)


def speed(seeds: int) -> None:
    print("## CPU-s to a sustained cosine >= 0.99 on two_body (so(2))\n")
    print("| recipe | seed | CPU-s | steps | reached |")
    print("|---|---:|---:|---:|---|")
    times: dict[str, list[float]] = {"labkit": [], "official": []}
    for name, cfg in (("labkit", LieGANConfig()), ("official", LieGANConfig.official())):
        for seed in range(seeds):
            t, steps = time_to_sustained(two_body(seed=seed), cfg, seed)
            print(f"| {name} | {seed} | {t if t is not None else float('nan'):.2f} | {steps} | {t is not None} |",
                  flush=True)
            if t is not None:
                times[name].append(t)
    med = {k: statistics.median(v) if v else float("nan") for k, v in times.items()}
    print(f"\nmedian CPU-s: labkit {med['labkit']:.2f}, official {med['official']:.2f}; "
          f"ratio official / labkit = {med['official'] / med['labkit']:.1f}x "
          f"({len(times['labkit'])}/{seeds} and {len(times['official'])}/{seeds} runs reached it)\n")


def acceptance() -> None:
    print("## Acceptance sweep (LieGANConfig() defaults, n_generators = reference size)\n")
    print("| data set | seeds passed | median CPU-s | max CPU-s | min final cosine | "
          "max action distance | verdicts | extra |")
    print("|---|---:|---:|---:|---:|---|---|---|")
    sets = [(so2_invariant, 1), (two_body, 1), (o5_invariant, 10), (lorentz_invariant, 6)]
    for make, k in sets:
        secs, coss, labels, passed, extra, ads = [], [], [], 0, [], []
        for seed in range(5):
            res = liegan(make(seed=seed), LieGANConfig(n_generators=k), seed=seed, device="cpu")
            ok = res.verdict.sustained_step is not None and res.seconds <= 60
            if make is lorentz_invariant:
                m, _ = invariant_metric(res.generators)
                mc = abs(float((m * ETA).sum())) / float(ETA.norm())
                extra.append(mc)
                ok = ok and mc >= 0.99
            passed += ok
            secs.append(res.seconds)
            coss.append(res.scores["cosine"])
            ads.append(res.scores["action_distance"])
            labels.append(res.verdict.label)
        ex = f"metric cosine min {min(extra):.4f}" if extra else ""
        print(f"| {make.__name__} | {passed}/5 | {statistics.median(secs):.1f} | {max(secs):.1f} | "
              f"{min(coss):.4f} | {max(ads):.3f} | {', '.join(sorted(set(labels)))} | {ex} |", flush=True)
    labels, secs = [], []
    for seed in range(10):
        res = liegan(anisotropic_control(seed=seed), LieGANConfig(), seed=seed, device="cpu")
        labels.append(res.verdict.label)
        secs.append(res.seconds)
    n_no = labels.count("no symmetry")
    print(f"| anisotropic_control | {n_no}/10 'no symmetry' | {statistics.median(secs):.1f} | "
          f"{max(secs):.1f} | - | - | {', '.join(f'{labels.count(x)} {x}' for x in sorted(set(labels)))} | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--acceptance", action="store_true", help="run the 5/10-seed sweep too")
    parser.add_argument("--seeds", type=int, default=3, help="seeds for the speed comparison")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread, {time.strftime('%Y-%m-%d')}\n")
    speed(args.seeds)
    if args.acceptance:
        acceptance()


if __name__ == "__main__":
    main()
