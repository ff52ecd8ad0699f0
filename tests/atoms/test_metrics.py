"""Crystal-generation metrics: CSP matching, validity, coverage, property distances."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from labkit.atoms.metrics import (
    COVERAGE_CUTOFFS,
    composition_fingerprint,
    composition_valid,
    coverage,
    match_rate,
    match_rate_best_of_k,
    property_distances,
    space_group_numbers,
    structure_valid,
    validity,
)
from labkit.errors import ConfigError, DataError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def load(path, n):
    from pymatgen.core import Structure

    with path.open(newline="") as fh:
        rows = [r for _, r in zip(range(n), csv.DictReader(fh), strict=False)]
    return [Structure.from_str(r["cif"], fmt="cif") for r in rows]


@pytest.fixture(scope="module")
def perov(shared_data):
    return load(shared_data / "cdvae" / "perov_5" / "val.csv", 24)


@pytest.fixture(scope="module")
def carbon(shared_data):
    return load(shared_data / "cdvae" / "carbon_24" / "val.csv", 6)


def perturbed(s, sigma, seed):
    """A copy with Gaussian noise of ``sigma`` Angstrom on every Cartesian coordinate."""
    from pymatgen.core import Structure

    rng = np.random.default_rng(seed)
    cart = s.cart_coords + sigma * rng.normal(size=s.cart_coords.shape)
    return Structure(s.lattice, s.species, cart, coords_are_cartesian=True)


def cell(a, species, frac):
    from pymatgen.core import Lattice, Structure

    return Structure(Lattice.cubic(a), species, frac)


# ------------------------------------------------------------------ matching


def test_ground_truth_matches_itself_in_a_pool(perov, carbon):
    truth = perov[:12] + carbon[:4]
    res = match_rate(truth, truth, processes=2)
    assert res.match_rate == 1.0 and res.n == 16 and res.k == 1
    assert res.matched.all() and res.valid.shape == (16, 1)
    assert res.rmse < 1e-8 and np.nanmax(res.rms) < 1e-8
    assert res.as_dict() == {"match_rate": 1.0, "rmse": res.rmse, "n": 16, "k": 1, "valid_rate": 1.0}
    assert res.summary() == ("100.00% of 16 targets matched (RMSE 0.0000), one sample each, "
                             "100.00% of samples valid")


def test_inline_and_pool_agree(perov):
    preds = [perturbed(s, 0.05, i) for i, s in enumerate(perov[:8])]
    a = match_rate(preds, perov[:8], processes=1)
    b = match_rate(preds, perov[:8], processes=2)
    np.testing.assert_array_equal(a.matched, b.matched)
    np.testing.assert_allclose(a.rms, b.rms, equal_nan=True)


def test_small_perturbation_matches_with_small_rms(perov):
    s = perov[0]
    res = match_rate([perturbed(s, 0.03, 0)], [s], processes=1)
    assert res.matched[0]
    # normalised by (V/N)^(1/3) ~ 2.5 A: 0.03 A noise gives an RMS of order 0.01
    assert 1e-4 < res.rmse < 0.05


def test_different_composition_does_not_match(perov):
    s = perov[0].copy()
    other = s.copy()
    other.replace_species({s.species[0]: "Ba" if s.species[0].symbol != "Ba" else "Sr"})
    res = match_rate([other], [s], processes=1, require_valid=False)
    assert not res.matched[0] and math.isnan(res.rmse) and res.match_rate == 0.0


def test_none_and_invalid_predictions_count_as_unmatched(perov):
    truth = perov[:3]
    clash = truth[1].copy()
    clash.translate_sites([1], truth[1][0].coords - truth[1][1].coords + 0.1,
                          frac_coords=False)  # site 1 now 0.17 A from site 0
    assert not structure_valid(clash)
    res = match_rate([None, clash, truth[2]], truth, processes=1)
    np.testing.assert_array_equal(res.matched, [False, False, True])
    np.testing.assert_array_equal(res.valid[:, 0], [False, False, True])
    assert res.match_rate == pytest.approx(1 / 3)
    assert res.as_dict()["valid_rate"] == pytest.approx(1 / 3)
    assert res.summary().startswith("33.33% of 3 targets matched")


def test_best_of_k_takes_any_match_and_the_smallest_rms(perov):
    truth = perov[:2]
    wrong = [perov[5], perov[6]]  # other crystals: no match
    near = [perturbed(s, 0.02, 1) for s in truth]
    far = [perturbed(s, 0.08, 2) for s in truth]
    samples = [[wrong[0], far[0], near[0]], [wrong[1], None, wrong[0]]]
    res = match_rate_best_of_k(samples, truth, processes=1)
    assert res.k == 3 and res.sample_rms.shape == (2, 3)
    np.testing.assert_array_equal(res.matched, [True, False])
    assert res.rms[0] == pytest.approx(np.nanmin(res.sample_rms[0]))
    assert res.sample_rms[0, 2] < res.sample_rms[0, 1]
    assert res.rmse == pytest.approx(res.sample_rms[0, 2])
    first = match_rate_best_of_k(samples, truth, k=1, processes=1)
    assert first.match_rate == 0.0 and first.k == 1
    single = match_rate([s[1] for s in samples], truth, processes=1)
    two = match_rate_best_of_k(samples, truth, k=2, processes=1)
    assert two.match_rate == single.match_rate == 0.5


def test_match_errors(perov):
    with pytest.raises(DataError, match=r"same length, got 2 predictions and 3 targets"):
        match_rate(perov[:2], perov[:3])
    with pytest.raises(DataError, match=r"predictions\[1\] must be a pymatgen Structure or "
                                        r"None, got str"):
        match_rate([perov[0], "NaCl"], perov[:2])
    with pytest.raises(ConfigError, match=r"k must be an int >= 1, got 0"):
        match_rate_best_of_k([[perov[0]]], perov[:1], k=0)
    with pytest.raises(ConfigError, match=r"k must be an int >= 1, got 0 samples"):
        match_rate_best_of_k([[]], perov[:1])
    with pytest.raises(DataError, match=r"k = 3 exceeds the 2 samples"):
        match_rate_best_of_k([[perov[0], perov[0]]], perov[:1], k=3)
    with pytest.raises(DataError, match=r"one common length, got lengths \[1, 2\]"):
        match_rate_best_of_k([[perov[0]], [perov[0], perov[1]]], perov[:2])
    with pytest.raises(DataError, match=r"one sequence per target \(2\), got 1"):
        match_rate_best_of_k([[perov[0]]], perov[:2])
    with pytest.raises(ConfigError, match=r"processes must be an int >= 1, got 0"):
        match_rate(perov[:1], perov[:1], processes=0)
    with pytest.raises(ConfigError, match=r"stol must be > 0, got -0.5"):
        match_rate(perov[:1], perov[:1], stol=-0.5)


# ------------------------------------------------------------------ validity


def test_structure_validity_rules():
    ok = cell(5.0, ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert structure_valid(ok)
    close = cell(5.0, ["Na", "Cl"], [[0.5, 0.5, 0.5], [0.56, 0.5, 0.5]])  # 0.3 A apart
    assert not structure_valid(close)
    image = cell(5.0, ["Na", "Cl"], [[0.01, 0.5, 0.5], [0.97, 0.5, 0.5]])  # 0.2 A via image
    assert not structure_valid(image)
    assert structure_valid(cell(5.0, ["Na", "Cl"], [[0.5, 0.5, 0.5], [0.6, 0.5, 0.5]]))  # 0.5 A
    tiny = cell(0.4, ["C"], [[0, 0, 0]])  # 0.064 A^3
    assert not structure_valid(tiny)
    assert structure_valid(tiny, min_volume=0.05)


def test_composition_validity_follows_cdvae():
    assert composition_valid("NaCl") and composition_valid("SrTiO3")
    assert not composition_valid("KF2")  # K+ F-: no neutral assignment
    assert not composition_valid("NaCl3")
    assert composition_valid("C")  # one element: valid by rule
    assert composition_valid("CuZn")  # only metals: valid by rule
    assert not composition_valid("Na2Ne")  # Ne has no smact14 oxidation states
    with pytest.raises(ConfigError, match=r"oxidation_states must be one of \['smact14', 'icsd16', "
                                          r"'icsd24'\], got 'smact4'"):
        composition_valid("NaCl", oxidation_states="smact4")


def test_composition_validity_with_another_oxidation_state_set():
    """SMACT 4's default set (icsd24) and CDVAE's smact14 disagree on some perov-5
    compositions, both ways (docs/crystals.md counts them on the validation split)."""
    import smact

    assert smact.Element("Fe").oxidation_states_icsd24 == smact.Element("Fe").oxidation_states
    assert composition_valid("CaCdO3") and not composition_valid("CaCdO3", oxidation_states="icsd24")
    assert not composition_valid("NaTlN3") and composition_valid("NaTlN3", oxidation_states="icsd24")
    assert composition_valid("SrTiO3", oxidation_states="icsd16")


def test_composition_validity_agrees_with_smact_smact14(perov, carbon):
    from smact.screening import smact_validity

    for s in perov + carbon:
        expected = smact_validity(s.composition, oxidation_states_set="smact14")
        assert composition_valid(s) == expected, s.formula


def test_validity_of_real_crystals(perov, carbon):
    v = validity(perov + carbon, processes=1)
    assert v.structure.all() and v.structure_rate == 1.0
    assert v.composition.shape == (30,) and v.composition[24:].all()  # carbon: one element
    assert v.rate == pytest.approx(v.composition.mean())
    assert v.as_dict() == {"n": 30, "structure_rate": 1.0, "composition_rate": v.composition_rate,
                           "rate": v.rate}
    assert v.summary() == (f"validity of 30 structures: structure 100.00%, composition "
                           f"{100 * v.composition_rate:.2f}%, both {100 * v.rate:.2f}%")
    with pytest.raises(DataError, match=r"structures\[0\] must be a pymatgen Structure, got int"):
        validity([3])


# ------------------------------------------------------------------ coverage


def test_coverage_of_identical_sets_is_complete(perov):
    res = coverage(perov[:6], perov[:6], dataset="perov_5", processes=2)
    assert (res.recall, res.precision) == (1.0, 1.0)
    assert res.amsd_recall == pytest.approx(0.0, abs=1e-9)
    assert res.amcd_precision == pytest.approx(0.0, abs=1e-9)
    assert (res.struct_cutoff, res.comp_cutoff) == COVERAGE_CUTOFFS["perov_5"]
    assert res.n_generated == 6 and res.n_failed == 0
    assert res.as_dict()["recall"] == 1.0 and set(res.as_dict()) == {
        "recall", "precision", "struct_cutoff", "comp_cutoff", "amsd_recall", "amsd_precision",
        "amcd_recall", "amcd_precision", "n_generated", "n_failed"}
    assert res.summary() == ("COV-R 100.00%, COV-P 100.00% (cutoffs 0.2 structure, 4 composition; "
                             "6 generated)")


def test_coverage_counts_only_crystals_within_both_cutoffs(perov, carbon):
    res = coverage(perov[:2] + carbon[:2], perov[:2], cutoffs=(0.2, 4.0), processes=1)
    assert res.recall == 1.0
    assert res.precision == 0.5  # the carbon crystals are far in composition
    far = coverage(carbon[:2], perov[:2], dataset="carbon_24", processes=1)
    assert far.recall == 0.0 and far.precision == 0.0 and far.amcd_recall > 4.0


def test_composition_fingerprint_uses_cdvae_scaling():
    fp = composition_fingerprint("NaCl")
    assert fp.shape == (132,) and np.isfinite(fp).all()
    # first Magpie feature: minimum atomic number (11), CDVAE mean 21.194, std 16.358
    assert fp[0] == pytest.approx((11 - 21.194441759304013) / 16.35781741152948)


def test_coverage_errors(perov):
    with pytest.raises(ConfigError, match=r"dataset must be one of \['perov_5', 'carbon_24', "
                                          r"'mp_20'\], got 'perov5'"):
        coverage(perov[:1], perov[:1], dataset="perov5")
    with pytest.raises(ConfigError, match=r"exactly one of dataset and cutoffs"):
        coverage(perov[:1], perov[:1])
    with pytest.raises(ConfigError, match=r"exactly one of dataset and cutoffs"):
        coverage(perov[:1], perov[:1], dataset="mp_20", cutoffs=(0.4, 10.0))
    with pytest.raises(ConfigError, match=r"comp_cutoff must be > 0, got -1"):
        coverage(perov[:1], perov[:1], cutoffs=(0.2, -1))
    with pytest.raises(DataError, match=r"non-empty lists, got 0 generated"):
        coverage([], perov[:1], dataset="perov_5")


# ------------------------------------------------------------------ properties


def test_property_distances(perov, carbon):
    same = property_distances(perov[:8], perov[:8])
    assert (same.density, same.n_elements, same.space_group_tv) == (0.0, 0.0, 0.0)
    assert same.as_dict() == {"density": 0.0, "n_elements": 0.0, "space_group_tv": 0.0, "symprec": 0.1}
    assert same.summary() == ("density W1 0 g/cm^3, number of elements W1 0, space-group TV 0 "
                              "(symprec 0.1 A)")
    diff = property_distances(carbon[:6], perov[:8])
    n_p = np.array([len(s.composition.elements) for s in perov[:8]])
    assert diff.n_elements == pytest.approx(n_p.mean() - 1.0)  # carbon: one element, below all
    d_c = np.array([s.density for s in carbon[:6]])
    d_p = np.array([s.density for s in perov[:8]])
    assert diff.density >= abs(d_c.mean() - d_p.mean()) - 1e-12  # W1 >= |mean difference|
    assert 0.0 < diff.space_group_tv <= 1.0
    with pytest.raises(DataError, match=r"non-empty lists, got 0 generated and 8"):
        property_distances([], perov[:8])


def test_space_groups():
    ideal = cell(4.0, ["Sr", "Ti", "O", "O", "O"],
                 [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    rock_salt_half = cell(5.0, ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])  # CsCl type
    np.testing.assert_array_equal(space_group_numbers([ideal, rock_salt_half]), [221, 221])
    with pytest.raises(ConfigError, match=r"symprec must be > 0, got 0"):
        space_group_numbers([ideal], symprec=0)
