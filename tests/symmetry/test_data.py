"""Data sets for symmetry discovery: the stated invariances hold exactly, bad input fails loudly."""

from __future__ import annotations

import math

import pytest
import torch

from labkit.errors import ConfigError, DataError
from labkit.symmetry import (
    SymmetryData,
    Vector,
    anisotropic_control,
    lorentz,
    lorentz_invariant,
    o5_invariant,
    so,
    so2_invariant,
    two_body,
)

MAKERS = [so2_invariant, two_body, o5_invariant, lorentz_invariant, anisotropic_control]


@pytest.mark.parametrize("make", MAKERS)
def test_shapes_dtypes_and_seeds(make):
    d = make(300, seed=1)
    assert isinstance(d, SymmetryData)
    assert d.x.dtype == torch.float64 and d.x.shape[0] == 300 and d.x.shape[1] == d.rep.dim
    assert d.joint().shape == (300, d.rep.dim + (0 if d.y is None else d.y.shape[1]))
    assert torch.isfinite(d.joint()).all()
    assert torch.equal(make(300, seed=1).x, d.x) and not torch.equal(make(300, seed=2).x, d.x)
    if d.reference is None:
        assert d.kind == "none"
    else:
        assert d.reference.shape[1:] == (d.n, d.n) and d.kind == "continuous"


@pytest.mark.parametrize("make", [so2_invariant, o5_invariant, lorentz_invariant])
def test_targets_are_exactly_invariant_under_the_reference_group(make):
    """y recomputed from g x equals y: checked through the closed forms of each set."""
    d = make(200, seed=0)
    g = torch.linalg.matrix_exp(torch.einsum("k,kij->ij", torch.full((d.reference.shape[0],), 0.3,
                                                                     dtype=torch.float64), d.reference))
    gx = d.rep.act(g, d.x)
    if make is lorentz_invariant:
        eta = torch.diag(torch.tensor([1.0, -1.0, -1.0, -1.0], dtype=torch.float64))
        p1, p2 = gx[:, :4], gx[:, 4:]
        y = torch.stack([(p1 @ eta * p1).sum(-1), (p2 @ eta * p2).sum(-1), torch.log((p1 @ eta * p2).sum(-1))], -1)
    elif make is so2_invariant:
        y = torch.tanh(gx.square().sum(-1, keepdim=True) - 1)
    else:
        r = gx.norm(dim=-1, keepdim=True)
        y = torch.sin(r) - r.pow(3) / 2
    torch.testing.assert_close(y, d.y, rtol=1e-10, atol=1e-10)


def test_two_body_conserves_energy_and_angular_momentum_and_has_rotation_rep():
    d = two_body(400, seed=0)
    assert d.rep.dim == 16 and d.n == 2 and torch.equal(d.reference, so(2).basis)
    q1, q2, p1, p2 = d.x[:, 0:2], d.x[:, 2:4], d.x[:, 4:6], d.x[:, 6:8]
    q1b, q2b, p1b, p2b = d.x[:, 8:10], d.x[:, 10:12], d.x[:, 12:14], d.x[:, 14:16]

    def energy(q1, q2, p1, p2):
        return 0.5 * (p1.square().sum(-1) + p2.square().sum(-1)) - 1.0 / (q1 - q2).norm(dim=-1)

    def ang(q1, q2, p1, p2):
        cross = lambda q, p: q[:, 0] * p[:, 1] - q[:, 1] * p[:, 0]  # noqa: E731
        return cross(q1, p1) + cross(q2, p2)

    torch.testing.assert_close(energy(q1b, q2b, p1b, p2b), energy(q1, q2, p1, p2), rtol=1e-4, atol=1e-4)  # RK4, dt = 0.01
    torch.testing.assert_close(ang(q1b, q2b, p1b, p2b), ang(q1, q2, p1, p2), rtol=1e-5, atol=1e-5)
    # orientations are uniform: the mean direction of q2 is near zero
    assert (q2 / q2.norm(dim=-1, keepdim=True)).mean(0).norm() < 0.15


def test_lorentz_reference_is_the_lorentz_algebra():
    d = lorentz_invariant(100)
    assert torch.equal(d.reference, lorentz().basis) and d.rep.dim == 8 and d.n == 4


def test_from_array_is_a_classmethod_not_a_module_function():
    """One name per concept across packages: labkit.dynamics has its own from_array (time
    series), so symmetry data are wrapped by SymmetryData.from_array only."""
    import labkit.symmetry

    assert "from_array" not in labkit.symmetry.__all__
    assert not hasattr(labkit.symmetry, "from_array")
    d = SymmetryData.from_array([[1.0, 0.0], [0.0, 1.0]], name="pair")
    assert type(d) is SymmetryData and d.name == "pair" and d.rep.dim == 2


def test_from_array_accepts_lists_and_infers_kind():
    d = SymmetryData.from_array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], y=[1.0, 2.0, 3.0], name="mine")
    assert d.y.shape == (3, 1) and d.n == 2 and d.kind == "discrete" and d.reference is None
    d2 = SymmetryData.from_array(torch.randn(5, 4, dtype=torch.float64), rep=2 * Vector(2), reference=so(2).basis[0])
    assert d2.kind == "continuous" and d2.reference.shape == (1, 2, 2) and d2.n == 2


def test_from_array_names_the_first_non_finite_value():
    x = torch.zeros(4, 3)
    x[2, 1] = math.nan
    with pytest.raises(DataError, match=r"row 2, column 1"):
        SymmetryData.from_array(x)


def test_from_array_wrong_shapes_name_what_was_expected():
    with pytest.raises(ConfigError, match=r"y must have shape \[4, features\].*\(3, 1\)"):
        SymmetryData.from_array(torch.zeros(4, 2), y=torch.zeros(3))
    with pytest.raises(ConfigError, match=r"acts on 2 features but x has 3 columns"):
        SymmetryData.from_array(torch.zeros(4, 3), rep=Vector(2))
    with pytest.raises(ConfigError, match=r"reference must have shape \[k, 2, 2\], got \(1, 3, 3\)"):
        SymmetryData.from_array(torch.zeros(4, 2), reference=torch.zeros(3, 3))
    with pytest.raises(ConfigError, match=r"kind must be one of"):
        SymmetryData.from_array(torch.zeros(4, 2), kind="wavy")
    with pytest.raises(ConfigError, match=r"n_samples must be an int >= 2, got 0"):
        so2_invariant(0)
