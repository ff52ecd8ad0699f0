"""csp_benchmark: an oracle that returns the truth matches 100% with RMSE ~0, beside the
baselines; a model that scrambles coordinates does worse; rows and records are complete."""

from __future__ import annotations

import math

import pytest
import torch

from labkit.atoms import AtomsBatch, SampleResult, csp_benchmark, load_sample, predict_structures
from labkit.errors import ConfigError


class Oracle(torch.nn.Module):
    """Returns the targets themselves (or, with ``scramble``, random coordinates)."""

    def __init__(self, truth: AtomsBatch, scramble: bool = False):
        super().__init__()
        self.truth, self.scramble = truth, scramble
        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.calls = 0

    def sample(self, species, mask, *, seed=0, save_every=10):
        self.calls += 1
        rows = [next(i for i in range(len(self.truth)) if torch.equal(self.truth.species[i], s)) for s in species]
        frac = self.truth.frac[rows].clone()
        if self.scramble:
            frac = torch.rand(frac.shape, generator=torch.Generator().manual_seed(seed), dtype=frac.dtype)
        lattice = self.truth.lattice[rows]
        b, n = species.shape
        return SampleResult(species=species, mask=mask, frac=frac, lattice=lattice,
                            frac_trajectory=frac[:, None], lattice_trajectory=lattice[:, None],
                            species_trajectory=species[:, None],
                            times=torch.zeros(1, dtype=torch.int64), seconds=0.0)


@pytest.fixture(scope="module")
def targets():
    ds = load_sample("perov_5")
    # distinct compositions so the oracle can find each target from its species
    seen, keep = set(), []
    for i, s in enumerate(ds.structures.species.tolist()):
        if tuple(s) not in seen:
            seen.add(tuple(s))
            keep.append(i)
    return ds.subset(keep[:12])


def test_oracle_matches_everything_and_baselines_are_reported(targets):
    oracle = Oracle(targets.structures)
    bench = csp_benchmark(targets, oracle, k=(1, 2), processes=1, batch_size=5)
    assert [(r.method, r.k) for r in bench.rows] == [("random baseline", 1), ("perovskite baseline", 1),
                                                     ("model", 1), ("model", 2)]
    model = bench.row("model", 1)
    assert model.match_rate == 1.0 and model.rmse < 1e-6 and all(model.matched) and model.n == 12
    assert bench.row("model", 2).match_rate == 1.0
    assert oracle.calls == math.ceil(12 * 2 / 5)  # k samples per target, in chunks of batch_size
    assert len(bench.samples) == 12 and all(len(s) == 2 for s in bench.samples)
    assert bench.row("random baseline").match_rate < 1.0
    assert "NOT an official split" in bench.split and "| model | 2 | 100.00% |" in bench.summary()
    assert bench.summary().splitlines()[0] == f"CSP on {bench.split}"
    flat = bench.as_dict()
    assert flat["model_k1_match_rate"] == 1.0 and "perovskite_baseline_k1_rmse" in flat
    assert sorted(flat) == sorted(f"{r.method.replace(' ', '_')}_k{r.k}_{m}" for r in bench.rows
                                  for m in ("match_rate", "rmse"))
    records = bench.records()
    assert [(r["method"], r["k"]) for r in records] == [(r.method, r.k) for r in bench.rows]
    assert records[2] == {"split": bench.split, "method": "model", "k": 1, "match_rate": 1.0,
                          "rmse": model.rmse, "n": 12, "seconds": model.seconds}
    assert all(isinstance(v, str | int | float) for r in records for v in r.values())
    assert model.as_dict() == {k: v for k, v in records[2].items() if k != "split"}
    assert model.summary().startswith("model, 1 sample: 100.00% matched (RMSE 0.0000), 12 targets")
    assert bench.row("model", 2).summary().startswith("model, best of 2: 100.00% matched")
    with pytest.raises(KeyError, match="no row for method 'model' with k = 20"):
        bench.row("model", 20)


def test_a_scrambling_model_does_worse(targets):
    bench = csp_benchmark(targets, Oracle(targets.structures, scramble=True), baselines=(), processes=1)
    assert [r.method for r in bench.rows] == ["model"] and bench.row("model").match_rate < 0.8


def test_seeds_are_ints_generators_or_none(targets):
    """An int seeds chunk c with seed + c; a generator (or None) serves every chunk in
    turn; csp_benchmark draws one int from a generator, so a generator in the same state
    gives the same table."""
    oracle = Oracle(targets.structures, scramble=True)
    by_int, _ = predict_structures(oracle, targets.structures, seed=3, batch_size=5)
    again, _ = predict_structures(oracle, targets.structures, seed=3, batch_size=5)
    assert [s[0].frac_coords.tolist() for s in by_int] == [s[0].frac_coords.tolist() for s in again]
    seen = []

    class Recorder(Oracle):
        def sample(self, species, mask, *, seed=0, save_every=10):
            seen.append(seed)
            return super().sample(species, mask, seed=0, save_every=save_every)

    predict_structures(Recorder(targets.structures), targets.structures, seed=7, batch_size=5)
    assert seen == [7, 8, 9]
    gen = torch.Generator().manual_seed(1)
    seen.clear()
    predict_structures(Recorder(targets.structures), targets.structures, seed=gen, batch_size=5)
    assert len(seen) == 3 and all(s is gen for s in seen)
    first = csp_benchmark(targets, baselines=("random",), seed=torch.Generator().manual_seed(4), processes=1)
    second = csp_benchmark(targets, baselines=("random",), seed=torch.Generator().manual_seed(4), processes=1)
    assert first.row("random baseline").matched == second.row("random baseline").matched
    assert csp_benchmark(targets, baselines=("random",), seed=None, processes=1).rows[0].n == 12
    with pytest.raises(ConfigError, match="seed must be a non-negative int or None, got -1"):
        predict_structures(oracle, targets.structures, seed=-1)


def test_baselines_default_and_errors(targets):
    carbon = load_sample("carbon_24").subset(slice(0, 3))
    bench = csp_benchmark(carbon, processes=1)
    assert [r.method for r in bench.rows] == ["random baseline"] and bench.samples == ()
    with pytest.raises(ConfigError, match=r"k must be sample counts >= 1, got \[0\]"):
        csp_benchmark(targets, k=(0,))
    with pytest.raises(ConfigError, match="baselines must be among \\['random', 'perovskite'\\], got 'rule'"):
        csp_benchmark(targets, baselines=("rule",))
    with pytest.raises(ConfigError, match="targets must be a CrystalDataset or AtomsBatch, got list"):
        csp_benchmark([1, 2])
