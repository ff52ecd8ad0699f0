"""Equivariance tests on real layers: EGNN passes, a deliberately broken copy fails with
the error size in the message; frame averaging makes any backbone exactly equivariant."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from labkit.errors import ConfigError
from labkit.symmetry import (
    EGNNLayer,
    EquivarianceFailure,
    FrameAveraging,
    LieGroup,
    NodePermutation,
    OrthogonalGroup,
    PermutationGroup,
    Point,
    ProductGroup,
    ProductRep,
    Scalars,
    SpecialOrthogonalGroup,
    Vector,
    assert_equivariant,
    assert_invariant,
    degenerate_frames,
    equivariance_error,
    translations,
)

N, F = 6, 5


def _inputs(dtype=torch.float64, batch=8):
    gen = torch.Generator().manual_seed(0)
    h = torch.randn(batch, N, F, generator=gen, dtype=dtype)
    x = torch.randn(batch, N, 3, generator=gen, dtype=dtype)
    return h, x


def _layer(dtype=torch.float64):
    return EGNNLayer(F, 32, seed=1, dtype=dtype)


class BrokenEGNN(EGNNLayer):
    """Feeds absolute coordinates into the node update: breaks rotation equivariance."""

    def forward(self, h, x, mask=None):
        h2, x2 = super().forward(h, x, mask)
        return h2 + x[..., :1], x2 + 0.1 * x**2


E3_AND_PERM = ProductGroup(OrthogonalGroup(3), PermutationGroup(N))
FEATURES = ProductRep(Scalars(F), NodePermutation())
COORDS = ProductRep(Vector(3), NodePermutation())


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_egnn_layer_is_equivariant_under_rotations_reflections_and_permutations(dtype):
    h, x = _inputs(dtype)
    report = assert_equivariant(_layer(dtype), E3_AND_PERM, (h, x), (FEATURES, COORDS),
                                (FEATURES, COORDS))
    assert report.passed and report.max_error < (1e-12 if dtype == torch.float64 else 1e-5)


def test_egnn_layer_is_translation_equivariant():
    h, x = _inputs()
    assert_equivariant(_layer(), LieGroup(translations(3)), (h, x), (Scalars(F), Point(3)),
                       (Scalars(F), Point(3)))


def test_egnn_mask_leaves_padding_alone_and_ignores_it():
    h, x = _inputs(batch=2)
    mask = torch.ones(2, N, dtype=torch.bool)
    mask[:, -2:] = False
    layer = _layer()
    h2, x2 = layer(h, x, mask)
    torch.testing.assert_close(x2[:, -2:], x[:, -2:])
    # the real nodes do not see the padding: same result as the graph without it
    h3, x3 = layer(h[:, :-2], x[:, :-2])
    torch.testing.assert_close(h2[:, :-2], h3)
    torch.testing.assert_close(x2[:, :-2], x3)


def test_broken_layer_fails_with_the_error_size():
    h, x = _inputs()
    broken = BrokenEGNN(F, 32, seed=1, dtype=torch.float64)
    with pytest.raises(EquivarianceFailure) as info:
        assert_equivariant(broken, E3_AND_PERM, (h, x), (FEATURES, COORDS), (FEATURES, COORDS))
    message = str(info.value)
    assert message.startswith("not equivariant under O(3) x S6: max error ")
    size = float(message.split("max error ")[1].split()[0])
    assert size == pytest.approx(info.value.report.max_error, rel=1e-3) and size > 0.1
    assert "tolerance" in message and "float64" in message


def test_equivariance_error_is_differentiable_for_soft_penalties():
    lin = nn.Linear(3, 3, bias=False).double()
    x = torch.randn(16, 3, dtype=torch.float64)
    err = equivariance_error(lin, SpecialOrthogonalGroup(3), x, Vector(3), Vector(3)).mean()
    err.backward()
    assert lin.weight.grad is not None and float(lin.weight.grad.abs().sum()) > 0


def test_frame_averaging_makes_an_mlp_exactly_invariant_and_equivariant():
    gen = torch.Generator().manual_seed(0)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(N * 3, 32), nn.Tanh(), nn.Linear(32, 2)).double()
    x = torch.randn(8, N, 3, generator=gen, dtype=torch.float64) * torch.tensor([3.0, 1.5, 0.5],
                                                                                dtype=torch.float64)
    with pytest.raises(EquivarianceFailure):
        assert_invariant(mlp, OrthogonalGroup(3), x, Vector(3))
    report = assert_invariant(FrameAveraging(mlp), OrthogonalGroup(3), x, Vector(3))
    assert report.max_error < 1e-12

    head = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 3)).double()
    fa = FrameAveraging(head, output="point")
    e3 = LieGroup(translations(3))
    assert_equivariant(fa, OrthogonalGroup(3), x, Vector(3), Vector(3))
    assert_equivariant(fa, e3, x, Point(3), Point(3))


def test_degenerate_clouds_are_detected_and_warned_about():
    cube = torch.tensor([[i, j, k] for i in (0.0, 1.0) for j in (0.0, 1.0) for k in (0.0, 1.0)],
                        dtype=torch.float64)[None]
    generic = torch.randn(1, 8, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    assert degenerate_frames(cube).tolist() == [True]
    assert degenerate_frames(generic).tolist() == [False]
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(24, 1)).double()
    with pytest.warns(RuntimeWarning, match="repeated covariance eigenvalues"):
        FrameAveraging(mlp)(cube)


def test_egnn_dtype_argument_keeps_the_seeded_values_and_the_global_rng():
    """Initial values are float64 draws from the seed, cast to the dtype (float32 holds the
    rounding of the float64 layer), biases zero, and the global random state is untouched,
    with or without a seed."""
    before = torch.random.get_rng_state()
    single = EGNNLayer(F, 16, seed=2)
    double = EGNNLayer(F, 16, seed=torch.Generator().manual_seed(2), dtype=torch.float64)
    EGNNLayer(F, 16, seed=None)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert all(p.dtype == torch.float32 for p in single.parameters())
    assert all(torch.equal(p, q.float()) and q.dtype == torch.float64
               for p, q in zip(single.parameters(), double.parameters(), strict=True))
    assert all(not p.any() for n, p in double.named_parameters() if n.endswith("bias"))
    h, x = _inputs(torch.float64)
    assert_equivariant(double, E3_AND_PERM, (h, x), (FEATURES, COORDS), (FEATURES, COORDS))
    with pytest.raises(ConfigError, match=r"dtype must be a floating-point torch.dtype, got torch.int64"):
        EGNNLayer(F, dtype=torch.int64)


def test_equivariance_report_summary_and_as_dict():
    h, x = _inputs()
    report = assert_equivariant(_layer(), E3_AND_PERM, (h, x), (FEATURES, COORDS), (FEATURES, COORDS))
    row = report.as_dict()
    json.dumps(row, allow_nan=False)
    assert row == {"group": report.group, "passed": True, "max_error": report.max_error,
                   "relative_error": report.relative_error, "scale": report.scale,
                   "tolerance": report.tolerance, "n_samples": 8}
    assert report.summary().startswith(f"passed under {report.group}: max error ")
