"""The dense CSP denoiser: O(3) on the lattice, atom permutations, integer shifts and common
translations of fractional coordinates, padding, and seeded initialisation; the same for
the type head of ab initio generation (``n_types > 0``), and its absence in CSP mode."""

from __future__ import annotations

import pytest
import torch

from labkit.atoms import CSPDenoiser
from labkit.atoms._denoiser import MAX_Z, fourier_features, gram_features, species_to_onehot
from labkit.errors import ConfigError, DataError
from labkit.symmetry import (
    NodePermutation,
    OrthogonalGroup,
    PermutationGroup,
    Scalars,
    SpecialOrthogonalGroup,
    Vector,
    assert_equivariant,
    assert_invariant,
    default_tolerance,
)

B, N = 5, 6


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def net():
    return CSPDenoiser(layers=2, hidden=32, fourier=4, timesteps=50, seed=3).double()


@pytest.fixture(scope="module")
def gen_net():
    """With a type head over MAX_Z types (ab initio generation)."""
    return CSPDenoiser(layers=2, hidden=32, fourier=4, timesteps=50, seed=3, n_types=MAX_Z).double()


def crystals(seed=0):
    """Random cells with 2..N real atoms (padding at the end), float64."""
    g = torch.Generator().manual_seed(seed)
    counts = torch.tensor([N, 2, 3, 5, 4])
    mask = torch.arange(N)[None, :] < counts[:, None]
    species = torch.where(mask, torch.randint(1, 90, (B, N), generator=g), 0)
    frac = torch.where(mask[..., None], torch.rand(B, N, 3, generator=g, dtype=torch.float64), 0.0)
    lattice = 4 * torch.eye(3, dtype=torch.float64) + torch.randn(B, 3, 3, generator=g,
                                                                   dtype=torch.float64)
    t = torch.randint(1, 51, (B,), generator=g)
    return species, frac, lattice, mask, t


def noisy_types(species, mask, seed=0):
    """Noisy one-hot type vectors A_t [B, N, MAX_Z] (zero rows on padding), float64."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(*species.shape, MAX_Z, generator=g, dtype=torch.float64)
    return (0.7 * species_to_onehot(species, mask, MAX_Z, torch.float64) + 0.7 * noise) * mask[..., None]


def close(a, b):
    a, b = a.detach(), b.detach()
    tol = default_tolerance(a.dtype, float(a.abs().max()))
    assert float((a - b).abs().max()) <= tol, float((a - b).abs().max())


def test_shapes_and_zero_on_padding(net):
    species, frac, lattice, mask, t = crystals()
    out = net(species, frac, lattice, mask, t)
    assert out.coords.shape == (B, N, 3) and out.lattice.shape == (B, 3, 3)
    assert out.coords.dtype == torch.float64
    assert torch.all(out.coords[~mask] == 0) and torch.isfinite(out.coords).all()


@pytest.mark.parametrize("group", [SpecialOrthogonalGroup(3), OrthogonalGroup(3)])
def test_lattice_rotation(net, group):
    """Rows rotate as L -> L R^T (Vector(3) on each row): eps_L rotates with them, the
    coordinate score does not change."""
    species, frac, lattice, mask, t = crystals(1)
    assert_equivariant(lambda lat: net(species, frac, lat, mask, t).lattice, group, lattice,
                       Vector(3), Vector(3))
    assert_invariant(lambda lat: net(species, frac, lat, mask, t).coords, group, lattice, Vector(3))
    # and the input features really are invariant
    assert_invariant(gram_features, group, lattice, Vector(3))


def test_atom_permutation(net):
    """Permuting the real atoms of every cell permutes the scores; eps_L is unchanged."""
    species, frac, lattice, mask, t = crystals(2)
    species, frac, mask = species[:1].expand(B, -1), frac[:1].expand(B, -1, -1), mask[:1].expand(B, -1)
    packed = torch.cat([frac, species[..., None].double(), mask[..., None].double()], -1)

    def f(x):
        out = net(x[..., 3].round().long(), x[..., :3], lattice, x[..., 4] > 0.5, t)
        return out.coords, out.lattice

    assert_equivariant(f, PermutationGroup(N), packed, NodePermutation(),
                       (NodePermutation(), Scalars(3)))


def test_integer_shifts_and_common_translations(net):
    species, frac, lattice, mask, t = crystals(3)
    g = torch.Generator().manual_seed(9)
    ref = net(species, frac, lattice, mask, t)
    shifted = frac + torch.randint(-3, 4, frac.shape, generator=g).double()
    moved = frac + torch.rand(B, 1, 3, generator=g, dtype=torch.float64)
    for other in (shifted, moved, torch.remainder(moved, 1.0)):
        out = net(species, other, lattice, mask, t)
        close(out.coords, ref.coords)
        close(out.lattice, ref.lattice)


def test_padding_never_reaches_real_atoms(net):
    species, frac, lattice, mask, t = crystals(4)
    ref = net(species, frac, lattice, mask, t)
    g = torch.Generator().manual_seed(5)
    junk_species = torch.where(mask, species, torch.randint(1, 90, (B, N), generator=g))
    junk_frac = torch.where(mask[..., None], frac, torch.full_like(frac, float("nan")))
    out = net(junk_species, junk_frac, lattice, mask, t)
    assert torch.equal(out.coords, ref.coords) and torch.equal(out.lattice, ref.lattice)
    # a cell alone, without any padding columns, gives the same numbers
    one = net(species[1:2, :2], frac[1:2, :2], lattice[1:2], mask[1:2, :2], t[1:2])
    close(one.coords, ref.coords[1:2, :2])
    close(one.lattice, ref.lattice[1:2])


def test_fourier_features_are_periodic():
    d = torch.rand(10, 3, dtype=torch.float64)
    torch.testing.assert_close(fourier_features(d + 2.0, 3), fourier_features(d, 3))
    assert fourier_features(d, 3).shape == (10, 18)


def test_seeded_initialisation_and_bad_sizes():
    a, b = CSPDenoiser(hidden=8, seed=1), CSPDenoiser(hidden=8, seed=1)
    c = CSPDenoiser(hidden=8, seed=2)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)
    assert any(not torch.equal(p, r) for p, r in zip(a.parameters(), c.parameters(), strict=True))
    with pytest.raises(ConfigError, match="hidden must be an int >= 1, got 0"):
        CSPDenoiser(hidden=0)
    with pytest.raises(ConfigError, match="dtype must be a floating torch.dtype, got torch.int64"):
        CSPDenoiser(hidden=8, dtype=torch.int64)


def test_weights_come_from_the_seed_alone():
    """Building a network draws nothing from torch's global generator; every dtype gets
    the seed's float32 draws (cast); a generator in the state of seed s gives the same
    network as s."""
    state = torch.random.get_rng_state()
    a = CSPDenoiser(hidden=8, seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)
    wide = CSPDenoiser(hidden=8, seed=1, dtype=torch.float64)
    from_gen = CSPDenoiser(hidden=8, seed=torch.Generator().manual_seed(1))
    for p, q, r in zip(a.parameters(), wide.parameters(), from_gen.parameters(), strict=True):
        assert p.dtype == torch.float32 and q.dtype == torch.float64
        assert torch.equal(q, p.double()) and torch.equal(r, p)
    first = next(a.parameters()).detach().clone()
    a.reset_parameters(2)
    assert not torch.equal(next(a.parameters()), first)
    a.reset_parameters(1)
    assert torch.equal(next(a.parameters()), first)


# -- the type head (ab initio generation) ---------------------------------------------
def test_csp_mode_has_no_type_head(net):
    """n_types=0 (CSP) builds exactly the CSP network: an embedding of atomic numbers, no
    type head, no type parameters, and a types output without columns."""
    assert net.type_head is None and isinstance(net.embed, torch.nn.Embedding)
    assert not any("type" in name for name, _ in net.named_parameters())
    species, frac, lattice, mask, t = crystals()
    assert net(species, frac, lattice, mask, t).types.shape == (B, N, 0)


def test_type_head_shapes_padding_and_input_checks(gen_net):
    species, frac, lattice, mask, t = crystals()
    types = noisy_types(species, mask)
    out = gen_net(types, frac, lattice, mask, t)
    assert out.types.shape == (B, N, MAX_Z) and out.types.dtype == torch.float64
    assert torch.all(out.types[~mask] == 0) and torch.isfinite(out.types).all()
    assert torch.all(out.coords[~mask] == 0)
    # junk on padding (types and coordinates) changes nothing
    junk = torch.where(mask[..., None], types, torch.full_like(types, float("nan")))
    junk_frac = torch.where(mask[..., None], frac, torch.full_like(frac, float("nan")))
    again = gen_net(junk, junk_frac, lattice, mask, t)
    for a, b in zip(again, out, strict=True):
        assert torch.equal(a, b)
    with pytest.raises(DataError, match=r"species must be float type vectors \[B, N, 118\], got torch.int64"):
        gen_net(species, frac, lattice, mask, t)
    with pytest.raises(ConfigError, match="n_types must be an int >= 0, got -1"):
        CSPDenoiser(n_types=-1)


@pytest.mark.parametrize("group", [SpecialOrthogonalGroup(3), OrthogonalGroup(3)])
def test_type_head_is_invariant_to_lattice_rotations(gen_net, group):
    species, frac, lattice, mask, t = crystals(1)
    types = noisy_types(species, mask, 1)
    assert_invariant(lambda lat: gen_net(types, frac, lat, mask, t).types, group, lattice, Vector(3))
    assert_equivariant(lambda lat: gen_net(types, frac, lat, mask, t).lattice, group, lattice,
                       Vector(3), Vector(3))


def test_type_head_is_permutation_equivariant(gen_net):
    """Permuting the atoms (type vectors, coordinates, mask together) permutes the type
    logits and the scores; eps_L is unchanged."""
    species, frac, lattice, mask, t = crystals(2)
    species, frac, mask = species[:1].expand(B, -1), frac[:1].expand(B, -1, -1), mask[:1].expand(B, -1)
    types = noisy_types(species, mask, 2)
    packed = torch.cat([frac, types, mask[..., None].double()], -1)

    def f(x):
        out = gen_net(x[..., 3:-1], x[..., :3], lattice, x[..., -1] > 0.5, t)
        return out.types, out.coords, out.lattice

    assert_equivariant(f, PermutationGroup(N), packed, NodePermutation(),
                       (NodePermutation(), NodePermutation(), Scalars(3)))


def test_type_head_ignores_integer_shifts_and_common_translations(gen_net):
    species, frac, lattice, mask, t = crystals(3)
    types = noisy_types(species, mask, 3)
    g = torch.Generator().manual_seed(9)
    ref = gen_net(types, frac, lattice, mask, t).types
    shifted = frac + torch.randint(-3, 4, frac.shape, generator=g).double()
    moved = torch.remainder(frac + torch.rand(B, 1, 3, generator=g, dtype=torch.float64), 1.0)
    for other in (shifted, moved):
        close(gen_net(types, other, lattice, mask, t).types, ref)
