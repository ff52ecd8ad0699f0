"""Scores: exact values on constructed cases, invariances, and the pitfalls of
docs/symmetry.md."""

from __future__ import annotations

import json
import math

import pytest
import torch

from labkit.errors import ConfigError, DataError
from labkit.symmetry import (
    TwoSampleTest,
    Vector,
    action_distance,
    frobenius_cosine,
    mmd_test,
    principal_cosines,
    so,
    sustained_crossing,
)

J = so(2).basis[0]


def test_frobenius_cosine_is_sign_and_scale_invariant_and_exact():
    a = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    b = torch.tensor([[0.0, 1.0], [0.0, 0.0]])  # |<a,b>| = 1, |a| = sqrt2, |b| = 1
    assert frobenius_cosine(a, b) == pytest.approx(1 / math.sqrt(2), abs=1e-15)
    assert frobenius_cosine(-3 * a, b) == pytest.approx(1 / math.sqrt(2), abs=1e-15)
    assert frobenius_cosine(a, torch.eye(2)) == 0.0
    assert frobenius_cosine(a, torch.zeros(2, 2)) == 0.0


def test_principal_cosines_are_basis_invariant_and_exact():
    ref = so(3).basis
    mix = torch.tensor([[1.0, 2.0, 0.0], [0.5, -1.0, 3.0], [0.0, 1.0, 1.0]], dtype=torch.float64)
    learned = -torch.einsum("ab,bij->aij", mix, ref)
    torch.testing.assert_close(principal_cosines(learned, ref), torch.ones(3, dtype=torch.float64))
    # tilt one generator out of the span by angle theta: smallest cosine = cos(theta)
    theta = 0.3
    tilted = ref.clone()
    tilted[2] = math.cos(theta) * ref[2] / ref[2].norm() + math.sin(theta) * torch.diag(
        torch.tensor([1.0, -1.0, 0.0], dtype=torch.float64)) / math.sqrt(2)
    cos = principal_cosines(tilted, ref)
    assert cos[-1].item() == pytest.approx(math.cos(theta), abs=1e-12)
    assert torch.all(cos[:-1] > 1 - 1e-12) and torch.all(cos[:-1] <= 1.0)
    assert torch.all(cos[:-1] >= cos[1:])  # descending


def test_action_distance_sees_through_a_misleading_matrix_cosine():
    """docs/symmetry.md, "The matrix cosine and data on a subspace": data on a subspace
    make the matrix cosine lie; the action does not."""
    rz = torch.zeros(3, 3, dtype=torch.float64)
    rz[0, 1], rz[1, 0] = 1.0, -1.0
    off = torch.zeros(3, 3, dtype=torch.float64)
    off[0, 2] = 1.0  # acts only on the third coordinate, which is 0 on the data
    learned = (rz + off)[None]
    x = torch.randn(300, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x[:, 2] = 0
    assert frobenius_cosine(learned[0], rz) == pytest.approx(math.sqrt(2 / 3), abs=1e-12)
    assert action_distance(learned, rz[None], x, Vector(3)) < 1e-6
    # a shear really moves the data differently: distance far from 0
    shear = torch.zeros(1, 3, 3, dtype=torch.float64)
    shear[0, 0, 1] = 1.0
    assert action_distance(shear, rz[None], x, Vector(3)) > 0.3


def test_action_distance_zero_for_the_truth_on_a_direct_sum():
    x = torch.randn(200, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert action_distance(-2.5 * J[None], J[None], x, 4 * Vector(2)) < 1e-8


def test_mmd_same_law_not_rejected_different_law_rejected():
    gen = torch.Generator().manual_seed(3)
    a = torch.randn(400, 2, generator=gen, dtype=torch.float64)
    b = torch.randn(400, 2, generator=gen, dtype=torch.float64)
    c = torch.randn(400, 2, generator=gen, dtype=torch.float64) * torch.tensor([1.0, 1.5], dtype=torch.float64)
    same, diff = mmd_test(a, b, seed=1), mmd_test(a, c, seed=1)
    assert isinstance(same, TwoSampleTest) and "MMD" in same.method
    assert same.p_value > 0.05 and diff.p_value < 0.01 and diff.statistic > same.statistic
    rot = a @ torch.linalg.matrix_exp(0.7 * J).T
    assert mmd_test(a, rot, paired=True).p_value > 0.05
    assert mmd_test(a, a * torch.tensor([1.0, 1.2], dtype=torch.float64), paired=True).p_value < 0.01


def test_mmd_p_value_is_roughly_uniform_under_the_null():
    """Level check: over 40 null pairs, about 5% rejections (allowing 0 to 6)."""
    rejections = 0
    for s in range(40):
        gen = torch.Generator().manual_seed(100 + s)
        a, b = torch.randn(2, 80, 2, generator=gen, dtype=torch.float64)
        rejections += mmd_test(a, b, n_permutations=100, seed=s).p_value < 0.05
    assert rejections <= 6


def test_mmd_bad_input():
    with pytest.raises(ConfigError, match=r"\(5, 2\) and \(5, 3\)"):
        mmd_test(torch.zeros(5, 2), torch.zeros(5, 3))
    with pytest.raises(DataError, match="non-finite"):
        mmd_test(torch.full((5, 2), math.nan), torch.zeros(5, 2))
    with pytest.raises(ConfigError, match="n_permutations must be an int >= 1, got 0"):
        mmd_test(torch.zeros(5, 2), torch.zeros(5, 2), n_permutations=0)
    with pytest.raises(ConfigError, match=r"bandwidths must be positive finite multiples of the median distance, got \(1.0, -2.0\)"):
        mmd_test(torch.zeros(5, 2), torch.zeros(5, 2), bandwidths=(1.0, -2.0))


def test_mmd_several_widths_see_fine_structure_the_median_misses(pinwheel):
    """A chiral pinwheel (four 1 x 0.25 blobs at radius 3, each tilted 30 degrees) against
    its mirror image: the median width alone (about 4.3) does not see the tilt, the sum of
    widths does."""
    x = pinwheel.x
    a, b = x[:1000], x[1000:] * torch.tensor([1.0, -1.0], dtype=torch.float64)
    assert mmd_test(a, b, bandwidths=(1.0,), seed=0).p_value > 0.05
    assert mmd_test(a, b, seed=0).p_value < 0.01


def test_sustained_crossing_ignores_blips():
    blip = [0.5, 0.96, 0.7, 0.97, 0.98, 0.99, 0.99, 0.995]
    assert sustained_crossing(blip, 0.95, 3) == 3
    assert sustained_crossing(blip, 0.95, 6) is None
    assert sustained_crossing([0.99, math.nan, 0.99, 0.99], 0.95, 2) == 2
    assert sustained_crossing([], 0.9, 1) is None
    with pytest.raises(ConfigError, match="window must be an int >= 1, got 0"):
        sustained_crossing([1.0], 0.9, 0)


def test_two_sample_test_summary_and_as_dict():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 60, 2, generator=gen, dtype=torch.float64)
    test = mmd_test(a, b, n_permutations=19, seed=0)
    assert test.as_dict() == {"statistic": test.statistic, "p_value": test.p_value,
                              "method": test.method}
    json.dumps(test.as_dict(), allow_nan=False)
    assert test.summary() == f"statistic {test.statistic:.3g}, p = {test.p_value:.3g} ({test.method})"
    assert TwoSampleTest(math.nan, 0.5, "m").as_dict()["statistic"] is None
