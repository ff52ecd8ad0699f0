"""Crystal structure prediction (CSP) scored the way the field reports it: a model beside
the two no-model baselines, on one named split, with one and with ``k`` samples.

The notebook ``notebooks/atoms/03_crystal_diffusion.ipynb`` and ``bench/`` call
:func:`csp_benchmark`; the numbers come from :mod:`labkit.atoms.metrics`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from typing import Any

import torch

from labkit.atoms._batch import AtomsBatch
from labkit.atoms.datasets import CrystalDataset
from labkit.core.config import check_int
from labkit.core.rng import make_generator
from labkit.errors import ConfigError

__all__ = ["CSPBenchmark", "CSPRow", "csp_benchmark", "predict_structures"]

#: Published DiffCSP results on the official perov-5 test split (Jiao et al., NeurIPS
#: 2023, table 1): match rate and RMSE at one and at twenty samples.
DIFFCSP_PEROV5 = {1: (0.5202, 0.0760), 20: (0.9860, 0.0128)}


@dataclasses.dataclass(frozen=True)
class CSPRow:
    """One line of a CSP table: ``method`` with ``k`` samples per target.

    Attributes:
        method: ``"random baseline"``, ``"perovskite baseline"`` or ``"model"``.
        k: samples per target (best of ``k``).
        match_rate: fraction of the ``n`` targets matched, in [0, 1].
        rmse: mean normalised RMS displacement over matched targets (NaN when none).
        n: number of targets.
        seconds: wall-clock seconds of the predictions and the matching (a model's
            sampling time is shared among its rows in proportion to ``k``).
        matched: ``matched[i]`` says whether target ``i`` was matched.
    """

    method: str
    k: int
    match_rate: float
    rmse: float
    n: int
    seconds: float
    matched: tuple[bool, ...] = ()

    def as_dict(self) -> dict[str, float | int | str]:
        """The row's numbers and names (``matched`` left out: one flag per target)."""
        return {"method": self.method, "k": self.k, "match_rate": self.match_rate,
                "rmse": self.rmse, "n": self.n, "seconds": self.seconds}

    def summary(self) -> str:
        """One line for people, e.g. ``model, best of 20: 98.15% matched (RMSE 0.0241), 378
        targets, 812.3 s``."""
        rmse = "-" if math.isnan(self.rmse) else f"{self.rmse:.4f}"
        samples = "1 sample" if self.k == 1 else f"best of {self.k}"
        return (f"{self.method}, {samples}: {100 * self.match_rate:.2f}% matched (RMSE {rmse}), "
                f"{self.n} targets, {self.seconds:.1f} s")


@dataclasses.dataclass(frozen=True)
class CSPBenchmark:
    """A model and the baselines on one split: a table with one :class:`CSPRow` per
    method and sample count.

    Attributes:
        split: the split's label (says whether it is official).
        rows: the table.
        samples: the model's predictions, ``samples[i][j]`` the ``j``-th of target ``i``
            (pymatgen structures); empty without a model.
        trajectory: the sampler's result for the first chunk of targets (one sample each),
            for the viewer; None without a model.

    The rows do not share axes (the baselines have one sample per target, the model any
    set of ``k``), so the table has :meth:`records` and :meth:`summary` but no
    ``to_xarray``.
    """

    split: str
    rows: tuple[CSPRow, ...]
    samples: tuple[tuple[Any, ...], ...] = ()
    trajectory: Any = None

    def row(self, method: str, k: int = 1) -> CSPRow:
        """The row of ``method`` with ``k`` samples.

        Raises:
            KeyError: no such row (the message lists the rows).
        """
        for r in self.rows:
            if r.method == method and r.k == k:
                return r
        raise KeyError(f"no row for method {method!r} with k = {k}; rows: "
                       f"{[(r.method, r.k) for r in self.rows]}")

    def records(self) -> list[dict[str, float | int | str]]:
        """One dictionary per row (:meth:`CSPRow.as_dict`, plus the ``split``), in order."""
        return [{"split": self.split, **r.as_dict()} for r in self.rows]

    def summary(self) -> str:
        """The table in Markdown, with the split named above it."""
        lines = [f"CSP on {self.split}", "",
                 "| method | samples | match rate | RMSE | targets | seconds |",
                 "|---|---:|---:|---:|---:|---:|"]
        for r in self.rows:
            rmse = "-" if math.isnan(r.rmse) else f"{r.rmse:.4f}"
            lines.append(f"| {r.method} | {r.k} | {100 * r.match_rate:.2f}% | {rmse} | {r.n} | {r.seconds:.1f} |")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, float]:
        """Flat ``{"<method>_k<k>_match_rate": ..., "<method>_k<k>_rmse": ...}`` (spaces in
        the method become ``_``), what a report records (:func:`labkit.reports.record`)."""
        out: dict[str, float] = {}
        for r in self.rows:
            key = f"{r.method.replace(' ', '_')}_k{r.k}"
            out[f"{key}_match_rate"] = r.match_rate
            out[f"{key}_rmse"] = r.rmse
        return out


def _chunk_seeds(seed: int | torch.Generator | None, device: torch.device):
    """The seed of chunk ``c``: ``seed + c`` for an int, else one generator for all chunks."""
    if isinstance(seed, int) and not isinstance(seed, bool):
        make_generator(seed)  # checks it
        return lambda c: seed + c
    gen = make_generator(seed, device=device)
    return lambda c: gen


def predict_structures(
    model: Any,
    targets: AtomsBatch,
    *,
    k: int = 1,
    seed: int | torch.Generator | None = 0,
    batch_size: int = 256,
    save_every: int = 10,
) -> tuple[list[list[Any]], Any]:
    """``k`` predictions per target composition from ``model.sample``.

    Args:
        model: anything with ``sample(species, mask, seed=..., save_every=...)`` and
            ``parameters()`` (a :class:`~labkit.atoms.CrystalDiffusion`).
        targets: the compositions to predict (only ``species`` and ``mask`` are read).
        k: samples per target.
        seed: an int (chunk ``c`` of ``batch_size`` structures is sampled with seed
            ``seed + c``), or a :class:`torch.Generator` on the model's device, or
            ``None`` (fresh entropy), which then serves every chunk in turn.
        batch_size: structures sampled at once.
        save_every: passed to ``model.sample``.

    Returns:
        ``(samples, first)``: ``samples[i][j]`` a pymatgen ``Structure``, and the first
        chunk's :class:`~labkit.atoms.SampleResult` (with its denoising trajectory).
    """
    check_int("k", k)
    check_int("batch_size", batch_size)
    device = next(model.parameters()).device
    chunk_seed = _chunk_seeds(seed, device)
    species = targets.species.repeat_interleave(k, 0)
    mask = targets.mask.repeat_interleave(k, 0)
    flat: list[Any] = []
    first = None
    for c, start in enumerate(range(0, len(species), batch_size)):
        res = model.sample(species[start:start + batch_size].to(device), mask[start:start + batch_size].to(device),
                           seed=chunk_seed(c), save_every=save_every)
        first = res if first is None else first
        batch = AtomsBatch(res.species.cpu(), res.frac.detach().cpu().double(),
                           res.lattice.detach().cpu().double(), res.mask.cpu())
        flat.extend(batch.to_structures())
    return [flat[i * k:(i + 1) * k] for i in range(len(targets))], first


def csp_benchmark(
    targets: CrystalDataset | AtomsBatch,
    model: Any = None,
    *,
    k: Sequence[int] = (1,),
    baselines: Sequence[str] | None = None,
    seed: int | torch.Generator | None = 0,
    processes: int | None = None,
    batch_size: int = 256,
) -> CSPBenchmark:
    """Match rate and RMSE of ``model`` (when given) and the baselines on ``targets``.

    Args:
        targets: the held-out structures (a :class:`CrystalDataset` carries its label).
        model: a trained :class:`~labkit.atoms.CrystalDiffusion` (or anything with
            ``sample(species, mask, seed=...)`` and ``parameters()``); None for baselines only.
        k: sample counts to report; the model is sampled ``max(k)`` times per target and
            the best-of-``k`` score is read from the first ``k``.
        baselines: ``"random"`` (true cell, random coordinates) and/or ``"perovskite"``
            (the ideal ABX3 rule); default both when every target has 5 atoms, else random.
        seed: sampling and the random baseline: an int (the baseline's NumPy generator
            and the sampler's chunks are seeded from it, see :func:`predict_structures`),
            or a :class:`torch.Generator` or ``None``, from which one int seed is drawn
            for both.
        processes: StructureMatcher worker processes (default: all cores).
        batch_size: structures sampled at once.
    """
    from labkit.atoms.baselines import perovskite_rule, random_coordinates
    from labkit.atoms.metrics import match_rate, match_rate_best_of_k

    batch = targets.structures if isinstance(targets, CrystalDataset) else targets
    if not isinstance(batch, AtomsBatch):
        raise ConfigError(f"targets must be a CrystalDataset or AtomsBatch, got {type(targets).__name__}")
    label = targets.label if isinstance(targets, CrystalDataset) else f"{len(batch)} structures"
    ks = sorted({int(x) for x in k})
    if not ks or ks[0] < 1:
        raise ConfigError(f"k must be sample counts >= 1, got {list(k)!r}")
    if baselines is None:
        baselines = ("random", "perovskite") if bool((batch.n_atoms == 5).all()) else ("random",)
    for b in baselines:
        if b not in ("random", "perovskite"):
            raise ConfigError(f"baselines must be among ['random', 'perovskite'], got {b!r}")
    if not (isinstance(seed, int) and not isinstance(seed, bool)):
        gen = make_generator(seed)
        seed = int(torch.randint(0, 2**62, (1,), generator=gen, device=gen.device))
    truth = batch.to_structures()
    rows: list[CSPRow] = []
    rules = {"random": lambda: random_coordinates(truth, seed=seed), "perovskite": lambda: perovskite_rule(truth)}
    for name in baselines:
        began = time.perf_counter()
        res = match_rate(rules[name](), truth, processes=processes)
        rows.append(CSPRow(f"{name} baseline", 1, res.match_rate, res.rmse, res.n, time.perf_counter() - began,
                           tuple(bool(m) for m in res.matched)))
    samples: list[list[Any]] = []
    first = None
    if model is not None:
        began = time.perf_counter()
        with torch.no_grad():
            samples, first = predict_structures(model, batch, k=ks[-1], seed=seed, batch_size=batch_size)
        sampling = time.perf_counter() - began
        for kk in ks:
            began = time.perf_counter()
            if kk == 1:
                res = match_rate([s[0] for s in samples], truth, processes=processes)
            else:
                res = match_rate_best_of_k(samples, truth, k=kk, processes=processes)
            rows.append(CSPRow("model", kk, res.match_rate, res.rmse, res.n,
                               sampling * kk / ks[-1] + time.perf_counter() - began,
                               tuple(bool(m) for m in res.matched)))
    return CSPBenchmark(split=label, rows=tuple(rows), samples=tuple(tuple(s) for s in samples),
                        trajectory=first)
