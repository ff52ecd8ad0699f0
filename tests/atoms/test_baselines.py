"""No-model CSP baselines: their construction, and their match rates on real perov-5."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from labkit.atoms.baselines import PEROVSKITE_SITES, perovskite_rule, random_coordinates
from labkit.atoms.metrics import match_rate
from labkit.errors import ConfigError, DataError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

#: Measured on the full official perov-5 *validation* split (3,787 crystals) with
#: ``python bench/crystal_metrics.py`` (validity filter on, seed 0 for random coordinates).
RULE_FULL_SPLIT = 0.5009
RANDOM_FULL_SPLIT = 0.3222
SUBSET, SUBSET_SEED = 200, 0


@pytest.fixture(scope="module")
def subset(shared_data):
    """A fixed random subset of the perov-5 validation split."""
    from pymatgen.core import Structure

    with (shared_data / "cdvae" / "perov_5" / "val.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3787
    pick = np.random.default_rng(SUBSET_SEED).choice(len(rows), SUBSET, replace=False)
    return [Structure.from_str(rows[i]["cif"], fmt="cif") for i in sorted(pick)]


def within_binomial(rate: float, p: float, n: int, z: float = 4.0) -> bool:
    return abs(rate - p) <= z * math.sqrt(p * (1 - p) / n)


def test_perovskite_rule_lands_near_the_full_split_rate(subset):
    res = match_rate(perovskite_rule(subset), subset, processes=2)
    assert within_binomial(res.match_rate, RULE_FULL_SPLIT, SUBSET), res.match_rate
    assert 0.03 < res.rmse < 0.12  # full split: 0.0700


def test_random_coordinates_land_near_the_full_split_rate(subset):
    res = match_rate(random_coordinates(subset, seed=0), subset, processes=2)
    assert within_binomial(res.match_rate, RANDOM_FULL_SPLIT, SUBSET), res.match_rate
    assert res.match_rate < RULE_FULL_SPLIT


def test_perovskite_rule_places_anions_and_cations(subset):
    from pymatgen.core import Element

    for target, pred in zip(subset[:20], perovskite_rule(subset[:20]), strict=True):
        assert pred.composition == target.composition
        assert pred.volume == pytest.approx(target.volume)
        a, b, *x = [site.specie for site in pred]
        assert min(e.X for e in x) >= max(a.X, b.X)  # X: the most electronegative
        assert a.atomic_radius >= b.atomic_radius  # A: the larger cation
        sites = [*PEROVSKITE_SITES["A"], *PEROVSKITE_SITES["B"], *PEROVSKITE_SITES["X"]]
        np.testing.assert_allclose(pred.frac_coords, sites)
    srtio3 = perovskite_rule([_cubic(["Ti", "O", "Sr", "O", "O"])], lattice_constant=3.9)[0]
    assert [s.specie for s in srtio3] == [Element(e) for e in ["Sr", "Ti", "O", "O", "O"]]
    assert srtio3.lattice.abc == pytest.approx((3.9, 3.9, 3.9))


def _cubic(species):
    from pymatgen.core import Lattice, Structure

    rng = np.random.default_rng(0)
    return Structure(Lattice.cubic(4.0), species, rng.random((len(species), 3)))


def test_random_coordinates_keep_cell_and_species_and_are_seeded(subset):
    a = random_coordinates(subset[:5], seed=1)
    b = random_coordinates(subset[:5], seed=1)
    c = random_coordinates(subset[:5], seed=np.random.default_rng(2))
    for t, x, y, z in zip(subset[:5], a, b, c, strict=True):
        assert x.lattice == t.lattice and x.species == t.species
        np.testing.assert_array_equal(x.frac_coords, y.frac_coords)
        assert not np.allclose(x.frac_coords, z.frac_coords)
        assert ((x.frac_coords >= 0) & (x.frac_coords < 1)).all()


def test_baseline_errors(subset):
    with pytest.raises(DataError, match=r"targets\[0\] \('Sr1 Ti1 O2'\) has 4 sites"):
        perovskite_rule([_cubic(["Sr", "Ti", "O", "O"])])
    with pytest.raises(ConfigError, match=r"radius must be one of .*got 'ionic'"):
        perovskite_rule(subset[:1], radius="ionic")
    with pytest.raises(ConfigError, match=r"lattice_constant must be > 0, got -4"):
        perovskite_rule(subset[:1], lattice_constant=-4)
    with pytest.raises(DataError, match=r"targets\[1\] must be a pymatgen Structure, got str"):
        random_coordinates([subset[0], "SrTiO3"])
    with pytest.raises(ConfigError, match=r"seed must be a non-negative int or None, got -1"):
        random_coordinates(subset[:1], seed=-1)
