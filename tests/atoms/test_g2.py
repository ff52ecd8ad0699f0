"""G2 molecules with EMT energies: a data set with an exact SO(3) symmetry."""

from __future__ import annotations

import numpy as np
import pytest

from labkit.atoms import g2_conformers
from labkit.errors import ConfigError


def test_conformers_are_rotated_jittered_copies_with_invariant_energies():
    from ase.calculators.emt import EMT
    from ase.collections import g2

    data = g2_conformers("CH4", 64, jitter=0.0, seed=0)
    assert data.positions.shape == (64, 5, 3) and data.energies.shape == (64,)
    assert data.symbols == ("C", "H", "H", "H", "H")
    # without jitter every sample is a rotation of the same molecule: same distances,
    # same energy as the reference geometry
    ref = g2["CH4"]
    ref.calc = EMT()
    e0 = ref.get_potential_energy()
    np.testing.assert_allclose(data.energies, e0, rtol=0, atol=1e-9)
    d = np.linalg.norm(data.positions[:, :, None] - data.positions[:, None], axis=-1)
    np.testing.assert_allclose(d, np.broadcast_to(d[0], d.shape), atol=1e-12)
    # orientations are spread over the sphere: the C-H1 bond direction has mean ~0
    bond = data.positions[:, 1] - data.positions[:, 0]
    assert np.linalg.norm(bond.mean(0)) < 0.35 * np.linalg.norm(bond, axis=1).mean()


def test_jitter_changes_the_energy_and_the_seed_repeats():
    a = g2_conformers("H2O", 32, jitter=0.05, seed=1)
    b = g2_conformers("H2O", 32, jitter=0.05, seed=1)
    np.testing.assert_array_equal(a.positions, b.positions)
    assert a.energies.std() > 1e-3
    c = g2_conformers("H2O", 32, jitter=0.05, seed=np.random.default_rng(1))
    np.testing.assert_array_equal(c.positions, a.positions)  # a Generator is used as is


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"molecule": "CH5"}, r"'CH5' is not in ASE's G2 collection; closest: \["),
        ({"molecule": "SiH4"}, r"EMT has no parameters for \['Si'\] in 'SiH4'"),
        ({"n_samples": 0}, "n_samples must be an int >= 1, got 0"),
    ],
)
def test_bad_input(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        g2_conformers(**kwargs)


def test_g2_symmetry_data_and_liegan_finds_so3():
    import torch

    from labkit.atoms import g2_symmetry_data
    from labkit.symmetry import LieGANConfig, liegan, so

    data = g2_symmetry_data("CH4", 1500, seed=0)
    assert data.x.shape == (1500, 15) and data.y.shape == (1500, 1) and data.n == 3
    torch.testing.assert_close(data.reference, so(3).basis)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        res = liegan(data, LieGANConfig(n_generators=3, steps=3000), seed=0, device="cpu")
    finally:
        torch.set_num_threads(n)
    assert res.scores["cosine"] >= 0.99, res.summary()
    assert res.verdict.label == "symmetry found", res.summary()
