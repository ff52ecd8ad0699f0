"""Lie algebra bases: the defining identities, closure, exponentials and invariant forms."""

from __future__ import annotations

import math

import pytest
import torch

from labkit.errors import ConfigError
from labkit.symmetry import (
    LieAlgebra,
    gl,
    invariant_metric,
    lorentz,
    scaling,
    sl,
    so,
    sp,
    structure_constants,
    translations,
)

ETA = torch.diag(torch.tensor([1.0, -1.0, -1.0, -1.0], dtype=torch.float64))


def _j(n):
    j = torch.zeros(2 * n, 2 * n, dtype=torch.float64)
    j[:n, n:] = torch.eye(n)
    j[n:, :n] = -torch.eye(n)
    return j


@pytest.mark.parametrize(
    ("algebra", "dim", "identity"),
    [
        (so(2), 1, lambda L: L + L.mT),
        (so(3), 3, lambda L: L + L.mT),
        (so(5), 10, lambda L: L + L.mT),
        (lorentz(), 6, lambda L: L.mT @ ETA + ETA @ L),
        (sl(3), 8, lambda L: torch.diagonal(L, dim1=-2, dim2=-1).sum(-1)),
        (sp(4), 10, lambda L: L.mT @ _j(2) + _j(2) @ L),
        (sp(6), 21, lambda L: L.mT @ _j(3) + _j(3) @ L),
        (gl(3), 9, lambda L: torch.zeros(())),
    ],
    ids=lambda v: v.name if isinstance(v, LieAlgebra) else None,
)
def test_defining_identity_dimension_and_closure(algebra, dim, identity):
    assert algebra.dim == dim
    assert float(identity(algebra.basis).abs().max()) == 0.0
    assert algebra.closure_error() < 1e-12
    # linearly independent: the flattened basis has full rank
    assert torch.linalg.matrix_rank(algebra.basis.reshape(dim, -1)) == dim


def test_so3_structure_constants_are_the_levi_civita_symbol():
    c = structure_constants(so(3))
    # basis (L01, L02, L12): [L01, L02] = -L12 etc.; |c| is the Levi-Civita pattern
    assert torch.allclose(c.abs().sum(), torch.tensor(6.0, dtype=torch.float64))
    assert torch.allclose(c, -c.transpose(0, 1))


def test_non_closed_basis_is_refused():
    bad = LieAlgebra("bad", torch.stack([so(3).basis[0], so(3).basis[1]]))
    with pytest.raises(ConfigError, match="not closed under the commutator: residual 1"):
        structure_constants(bad)


def test_so2_exponential_is_a_rotation_by_the_coefficient():
    g = so(2).exp(torch.tensor([[0.3]], dtype=torch.float64))[0]
    expected = torch.tensor([[math.cos(0.3), math.sin(0.3)], [-math.sin(0.3), math.cos(0.3)]],
                            dtype=torch.float64)
    torch.testing.assert_close(g, expected, rtol=0, atol=1e-15)


def test_group_elements_preserve_what_the_algebra_preserves():
    g = lorentz().sample(64, scale=0.7, seed=1)
    torch.testing.assert_close(g.mT @ ETA @ g, ETA.expand(64, 4, 4), rtol=0, atol=1e-10)
    s = sl(3).sample(64, scale=0.5, seed=2)
    torch.testing.assert_close(torch.linalg.det(s), torch.ones(64, dtype=torch.float64))
    p = sp(4).sample(16, scale=0.3, seed=3)
    torch.testing.assert_close(p.mT @ _j(2) @ p, _j(2).expand(16, 4, 4), rtol=0, atol=1e-10)


def test_translations_and_scaling_act_as_named():
    g = translations(2).exp(torch.tensor([[1.5, -2.0]], dtype=torch.float64))[0]
    torch.testing.assert_close(g @ torch.tensor([3.0, 4.0, 1.0], dtype=torch.float64),
                               torch.tensor([4.5, 2.0, 1.0], dtype=torch.float64))
    assert translations(2).homogeneous
    s = scaling(3).exp(torch.tensor([[math.log(2.0)]], dtype=torch.float64))[0]
    torch.testing.assert_close(s, 2 * torch.eye(3, dtype=torch.float64))


def test_invariant_metric_of_the_lorentz_algebra_is_minkowski():
    m, residual = invariant_metric(lorentz().basis)
    torch.testing.assert_close(m, ETA / 2, rtol=0, atol=1e-12)
    assert residual < 1e-12
    # a perturbed (learned-looking) basis still gives a metric close to eta
    noisy = lorentz().basis + 1e-3 * torch.randn(6, 4, 4, generator=torch.Generator().manual_seed(0),
                                                 dtype=torch.float64)
    m2, residual2 = invariant_metric(noisy)
    assert float((m2 * ETA / 2).sum()) > 0.999
    assert residual2 > residual
    # so(3) preserves the identity
    torch.testing.assert_close(invariant_metric(so(3).basis)[0],
                               torch.eye(3, dtype=torch.float64) / math.sqrt(3))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: so(1), "n must be an int >= 2, got 1"),
        (lambda: sp(3), "sp needs an even matrix size >= 2, got 3"),
        (lambda: gl(0), "n must be an int >= 1, got 0"),
        (lambda: so(3).exp(torch.zeros(2, 2)), r"last axis 3 .* got shape \(2, 2\)"),
        (lambda: LieAlgebra("x", torch.zeros(2, 3)), r"basis must be a tensor \[k, n, n\], got \(2, 3\)"),
        (lambda: so(3).sample(0), "n must be an int >= 1, got 0"),
        (lambda: invariant_metric(torch.zeros(2, 3, 4)), r"generators must be \[k, n, n\]"),
    ],
)
def test_bad_input(call, message, unchecked_shapes):
    with pytest.raises(ConfigError, match=message):
        call()
