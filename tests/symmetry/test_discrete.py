"""Discrete search: the Lorenz attractor's Z2 symmetry (x, y, z) -> (-x, -y, z) is found,
the false candidate (x, y, -z) is rejected."""

from __future__ import annotations

import pytest
import torch

from labkit.core.integrate import rk4
from labkit.dynamics import get_system
from labkit.errors import ConfigError
from labkit.symmetry import SymmetryData, discover_discrete, signed_permutations, so2_invariant

Z2 = torch.diag(torch.tensor([-1.0, -1.0, 1.0], dtype=torch.float64))
FLIP_Z = torch.diag(torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64))


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def lorenz():
    """64 trajectories, t in [20, 100], sampled every 0.5 time units (about the Lyapunov time)."""
    system = get_system("Lorenz")
    gen = torch.Generator().manual_seed(0)
    y0 = torch.randn(64, 3, generator=gen, dtype=torch.float64) * 5 + torch.tensor([0.0, 0.0, 25.0])
    traj = rk4(system.vector_field(), y0, (0.0, 100.0), 0.02, save_every=25).raise_if_diverged()
    return SymmetryData.from_array(traj.y[:, 40:].reshape(-1, 3), reference=Z2, kind="discrete", name="lorenz")


def test_signed_permutations_count():
    assert signed_permutations(3).shape == (47, 3, 3)
    assert signed_permutations(2, include_identity=True).shape == (8, 2, 2)


def test_lorenz_z2_found_and_only_it(lorenz):
    res = discover_discrete(lorenz)
    assert res.verdict.label == "symmetry found", res.summary()
    assert res.generators.shape == (1, 3, 3)
    torch.testing.assert_close(res.generators[0], Z2)
    assert res.scores["reference_found"] == 1.0 and res.control.p_value < 0.05


def test_lorenz_explicit_candidates(lorenz):
    res = discover_discrete(lorenz, candidates=torch.stack([FLIP_Z, Z2]))
    torch.testing.assert_close(res.generators, Z2[None])


def test_no_symmetry_when_every_candidate_fails(lorenz):
    res = discover_discrete(lorenz, candidates=FLIP_Z)
    assert res.verdict.label == "no symmetry" and res.generators.shape == (0, 3, 3)


def test_bad_candidates():
    with pytest.raises(ConfigError, match=r"candidates must have shape \[c, 2, 2\] with c >= 1, got \(1, 3, 3\)"):
        discover_discrete(so2_invariant(20), candidates=torch.eye(3))



def test_c4_rotations_found_and_reflections_rejected(pinwheel):
    """A chiral pinwheel is invariant under quarter turns only: of the 7 signed
    permutations of R^2, exactly the rotations by 90, 180 and 270 degrees are accepted."""
    res = discover_discrete(pinwheel)
    assert res.verdict.label == "symmetry found", res.summary()
    turn = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64)
    expected = [turn, -torch.eye(2, dtype=torch.float64), -turn]
    assert res.generators.shape == (3, 2, 2), res.summary()
    for m in expected:
        assert any(torch.equal(m, g) for g in res.generators), (m, res.generators)


