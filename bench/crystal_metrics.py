"""CSP baselines and validity on a full CDVAE split, with the field's metrics.

Reads a CDVAE-format CSV (default: the official perov-5 *validation* split of the folder
``--data``, ``../shared/data/cdvae`` beside the repository; ``--split test`` reads
``<data>/perov_5/test.csv``, ``--csv`` any file) and prints:

- CDVAE's structure and composition validity of the ground truth, and the composition
  validity with SMACT 4's default oxidation-state set (``icsd24``) beside CDVAE's
  ``smact14``;
- the CSP match rate and RMSE (StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3),
  validity filter on) of the perovskite rule (for each A-site radius with
  ``--radii``) and of random coordinates in the true cell;
- the time per comparison, inline (one process, with and without the validity filter)
  and through the process pool, and the time of one CrystalNN fingerprint;
- on the first ``--timing-pairs`` targets, whether the rule's matches change when every
  cell is a 1 Angstrom cube instead of the target's volume (StructureMatcher rescales
  volumes).

    python bench/crystal_metrics.py                       # full perov-5 validation split
    python bench/crystal_metrics.py --split test          # the official test split, when present
    python bench/crystal_metrics.py --limit 200 --radii   # a quick run, all radii
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import platform
import time
from pathlib import Path

import numpy as np

from labkit.atoms.baselines import _RADII, perovskite_rule, random_coordinates
from labkit.atoms.datasets import CDVAE_SIZES
from labkit.atoms.metrics import composition_valid, match_rate, structure_fingerprint, validity

DATA = Path(__file__).resolve().parents[1].parent / "shared/data/cdvae"


def load(path: Path, limit: int | None) -> list:
    from pymatgen.core import Structure

    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    rows = rows[:limit] if limit else rows
    return [Structure.from_str(r["cif"], fmt="cif") for r in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA, help="a folder of <name>/<split>.csv")
    ap.add_argument("--name", default="perov_5", choices=sorted(CDVAE_SIZES))
    ap.add_argument("--split", default="val", choices=["train", "val", "test"])
    ap.add_argument("--csv", type=Path, default=None, help="read this file instead of --data")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--processes", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--radii", action="store_true", help="the rule with every A-site radius")
    ap.add_argument("--timing-pairs", type=int, default=200)
    args = ap.parse_args()

    path = args.csv or args.data / args.name / f"{args.split}.csv"
    if not path.is_file():
        raise SystemExit(f"no {path}: the {args.name} {args.split} split is not on this machine")
    print(f"{datetime.date.today()}, {platform.machine()}, {os.cpu_count()} CPUs, "
          f"python {platform.python_version()}")
    t0 = time.perf_counter()
    truth = load(path, args.limit)
    published = CDVAE_SIZES.get(args.name, {}).get(args.split)
    whole = "" if args.csv or args.limit else (
        " (the published size)" if len(truth) == published else f" (published: {published})")
    print(f"{path}: {len(truth)} structures{whole}, read in {time.perf_counter() - t0:.1f} s")

    t0 = time.perf_counter()
    v = validity(truth, processes=args.processes)
    print(f"ground truth validity: structure {100 * v.structure_rate:.2f}%, "
          f"composition (SMACT smact14) {100 * v.composition_rate:.2f}%, "
          f"both {100 * v.rate:.2f}%  ({time.perf_counter() - t0:.1f} s)")
    default_set = np.array([composition_valid(s, oxidation_states="icsd24") for s in truth])
    print(f"ground truth composition validity with SMACT 4's default set (icsd24): "
          f"{100 * default_set.mean():.2f}% ({int((v.composition & ~default_set).sum())} valid "
          f"with smact14 only, {int((default_set & ~v.composition).sum())} with icsd24 only)")

    rule = perovskite_rule(truth)
    m = min(args.timing_pairs, len(truth))
    t0 = time.perf_counter()
    first = match_rate(rule[:m], truth[:m], processes=1)
    inline = (time.perf_counter() - t0) / m
    t0 = time.perf_counter()
    match_rate(rule[:m], truth[:m], processes=1, require_valid=False)
    raw = (time.perf_counter() - t0) / m
    print(f"time per comparison, inline: {1e3 * inline:.1f} ms with the validity filter, "
          f"{1e3 * raw:.1f} ms StructureMatcher alone ({m} rule/target pairs)")
    cube = match_rate(perovskite_rule(truth[:m], lattice_constant=1.0), truth[:m], processes=1)
    same = bool(np.array_equal(cube.matched, first.matched))
    print(f"rule in 1 A cubes against the target's volume, first {m}: matched the same targets: "
          f"{same}; match rate {100 * cube.match_rate:.2f}% / {100 * first.match_rate:.2f}%, "
          f"RMSE {cube.rmse:.4f} / {first.rmse:.4f}")
    f = min(20, len(truth))
    structure_fingerprint(truth[0])  # builds the featurizer
    t0 = time.perf_counter()
    for s in truth[:f]:
        structure_fingerprint(s)
    print(f"CrystalNN fingerprint: {1e3 * (time.perf_counter() - t0) / f:.0f} ms per crystal "
          f"({f} crystals, after one warm-up call)")

    radii = _RADII if args.radii else ("atomic_radius",)
    print("| baseline | match rate | RMSE | valid predictions | wall (s) | ms / pair |")
    print("|---|---:|---:|---:|---:|---:|")
    runs = [(f"perovskite rule, A site by {r}", perovskite_rule(truth, radius=r)) for r in radii]
    runs.append((f"random coordinates, seed {args.seed}",
                 random_coordinates(truth, seed=args.seed)))
    for name, preds in runs:
        t0 = time.perf_counter()
        res = match_rate(preds, truth, processes=args.processes)
        wall = time.perf_counter() - t0
        print(f"| {name} | {100 * res.match_rate:.2f}% | {res.rmse:.4f} | "
              f"{100 * res.valid.mean():.2f}% | {wall:.1f} | {1e3 * wall / len(truth):.1f} |",
              flush=True)


if __name__ == "__main__":
    main()
