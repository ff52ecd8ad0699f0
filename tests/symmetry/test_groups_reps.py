"""Groups sample what they claim; representations act blockwise with one element per sample."""

from __future__ import annotations

import math

import pytest
import torch

from labkit.errors import ConfigError
from labkit.symmetry import (
    CyclicGroup,
    DirectSum,
    FiniteGroup,
    LieGroup,
    LorentzGroup,
    NodePermutation,
    OrthogonalGroup,
    PermutationGroup,
    Point,
    ProductGroup,
    ProductRep,
    Scalars,
    SpecialOrthogonalGroup,
    Vector,
    reflection,
    translations,
)

ETA = torch.diag(torch.tensor([1.0, -1.0, -1.0, -1.0], dtype=torch.float64))


def test_orthogonal_groups_are_orthogonal_with_the_right_determinants():
    o = OrthogonalGroup(3).sample(2000, seed=0)
    torch.testing.assert_close(o.mT @ o, torch.eye(3, dtype=torch.float64).expand(2000, 3, 3))
    det = torch.linalg.det(o)
    assert 0.45 < float((det < 0).double().mean()) < 0.55
    s = SpecialOrthogonalGroup(3).sample(2000, seed=0)
    torch.testing.assert_close(torch.linalg.det(s), torch.ones(2000, dtype=torch.float64))


def test_so3_samples_are_haar():
    # Under the Haar measure on SO(3), the trace 1 + 2 cos(theta) has mean 0 (E[cos] = -1/2)
    # and every entry of the matrix has mean 0 and variance 1/3.
    s = SpecialOrthogonalGroup(3).sample(20000, seed=1)
    tr = torch.diagonal(s, dim1=-2, dim2=-1).sum(-1)
    assert abs(float(tr.mean())) < 0.03
    torch.testing.assert_close(s.var(0), torch.full((3, 3), 1 / 3, dtype=torch.float64),
                               rtol=0, atol=0.02)


def test_sampling_is_reproducible_from_the_seed():
    a = SpecialOrthogonalGroup(4).sample(5, seed=7)
    b = SpecialOrthogonalGroup(4).sample(5, seed=7)
    c = SpecialOrthogonalGroup(4).sample(5, seed=8)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_lorentz_group_preserves_the_metric():
    g = LorentzGroup(scale=1.0).sample(100, seed=0)
    torch.testing.assert_close(g.mT @ ETA @ g, ETA.expand(100, 4, 4), rtol=0, atol=1e-9)


def test_finite_groups_close():
    assert CyclicGroup(6).order == 6
    assert FiniteGroup(torch.diag(torch.tensor([-1.0, -1.0, 1.0])), name="Z2").order == 2
    # the dihedral group D4: a quarter turn and a reflection
    d4 = FiniteGroup(torch.stack([CyclicGroup(4).elements()[1], reflection([1.0, 0.0])]))
    assert d4.order == 8
    assert torch.equal(d4.elements()[0], torch.eye(2, dtype=torch.float64))
    irrational = torch.tensor([[math.cos(1.0), -math.sin(1.0)], [math.sin(1.0), math.cos(1.0)]])
    with pytest.raises(ConfigError, match="more than 500 elements"):
        FiniteGroup(irrational, max_order=500)


def test_permutations():
    p = PermutationGroup(5).sample(10, seed=0)
    assert torch.equal(p.sum(-1), torch.ones(10, 5, dtype=torch.float64))
    assert torch.equal(p.sum(-2), torch.ones(10, 5, dtype=torch.float64))
    assert PermutationGroup(3).elements().shape == (6, 3, 3)


def test_reps_act_blockwise_with_one_element_per_sample():
    g = SpecialOrthogonalGroup(2).sample(3, seed=0)
    x = torch.randn(3, 7, dtype=torch.float64)
    rep = 3 * Vector(2) + Scalars(1)
    assert isinstance(rep, DirectSum) and rep.dim == 7
    out = rep.act(g, x)
    for b in range(3):
        for k in range(3):
            torch.testing.assert_close(out[b, 2 * k: 2 * k + 2], g[b] @ x[b, 2 * k: 2 * k + 2])
        assert out[b, 6] == x[b, 6]
    m = rep.matrix(g)
    torch.testing.assert_close(torch.einsum("bij,bj->bi", m, x), out)


def test_vector_acts_on_every_point_of_a_cloud():
    g = SpecialOrthogonalGroup(3).sample(2, seed=0)
    x = torch.randn(2, 10, 3, dtype=torch.float64)
    out = Vector(3).act(g, x)
    torch.testing.assert_close(out[1, 4], g[1] @ x[1, 4])


def test_points_translate_vectors_do_not():
    g = LieGroup(translations(3)).sample(4, seed=0)
    x = torch.randn(4, 6, 3, dtype=torch.float64)
    shift = g[:, :3, 3]
    torch.testing.assert_close(Point(3).act(g, x), x + shift[:, None, :])
    torch.testing.assert_close(Vector(3).act(g, x), x)


def test_product_group_rotates_and_permutes():
    grp = ProductGroup(SpecialOrthogonalGroup(3), PermutationGroup(4))
    r, p = grp.sample(2, seed=0)
    x = torch.randn(2, 4, 3, dtype=torch.float64)
    out = ProductRep(Vector(3), NodePermutation()).act((r, p), x)
    torch.testing.assert_close(out, p @ x @ r.mT)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: Vector(3).act(torch.eye(3), torch.zeros(2, 4)),
         r"Vector\(3\) acts on a last axis of size 3, got shape \(2, 4\)"),
        (lambda: Vector(2).act(torch.eye(2).expand(3, 2, 2), torch.zeros(2, 2)),
         "one group element per sample: got 3 elements for 2 samples"),
        (lambda: NodePermutation().act(torch.eye(3)[None], torch.zeros(1, 4, 2)),
         "permutations of 3 nodes cannot act on 4 nodes"),
        (lambda: CyclicGroup(4, d=2, plane=(0, 2)), "plane must be two distinct axes of R"),
        (lambda: reflection([0.0, 0.0]), "normal must be a finite non-zero vector"),
        (lambda: OrthogonalGroup(0), "d must be an int >= 1, got 0"),
        (lambda: ProductGroup(OrthogonalGroup(2)), "ProductGroup needs two or more groups"),
        (lambda: PermutationGroup(9).elements(), "S9 has 362880 elements; sample instead"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ConfigError, match=message):
        call()
