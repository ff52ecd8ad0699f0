"""CSP baselines and validity on a full CDVAE split, with the field's metrics.

Reads a CDVAE-format CSV (default: the official perov-5 *validation* split beside the
repository, ``../shared/data/cdvae/perov_5/val.csv``; the official test split is not on
this machine) and prints:

- CDVAE's structure and composition validity of the ground truth;
- the CSP match rate and RMSE (StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3),
  validity filter on) of the perovskite rule (for each A-site radius with
  ``--radii``) and of random coordinates in the true cell;
- the time per comparison, inline (one process) and through the process pool.

    python bench/crystal_metrics.py                       # full perov-5 validation split
    python bench/crystal_metrics.py --limit 200 --radii   # a quick run, all radii
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import time
from pathlib import Path

from labkit.atoms.baselines import _RADII, perovskite_rule, random_coordinates
from labkit.atoms.metrics import match_rate, validity

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared/data/cdvae/perov_5/val.csv"


def load(path: Path, limit: int | None) -> list:
    from pymatgen.core import Structure

    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    rows = rows[:limit] if limit else rows
    return [Structure.from_str(r["cif"], fmt="cif") for r in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", type=Path, default=DEFAULT)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--processes", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--radii", action="store_true", help="the rule with every A-site radius")
    ap.add_argument("--timing-pairs", type=int, default=200)
    args = ap.parse_args()

    print(f"{platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}")
    t0 = time.perf_counter()
    truth = load(args.csv, args.limit)
    print(f"{args.csv}: {len(truth)} structures, read in {time.perf_counter() - t0:.1f} s")

    t0 = time.perf_counter()
    v = validity(truth, processes=args.processes)
    print(f"ground truth validity: structure {100 * v.structure_rate:.2f}%, "
          f"composition (SMACT smact14) {100 * v.composition_rate:.2f}%, "
          f"both {100 * v.rate:.2f}%  ({time.perf_counter() - t0:.1f} s)")

    rule = perovskite_rule(truth)
    m = min(args.timing_pairs, len(truth))
    t0 = time.perf_counter()
    match_rate(rule[:m], truth[:m], processes=1)
    inline = (time.perf_counter() - t0) / m
    print(f"time per comparison, inline (validity + matcher): {1e3 * inline:.1f} ms ({m} pairs)")

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
              f"{100 * res.valid.mean():.2f}% | {wall:.1f} | {1e3 * wall / len(truth):.1f} |")


if __name__ == "__main__":
    main()
