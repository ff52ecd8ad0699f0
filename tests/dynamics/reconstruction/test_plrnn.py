"""shPLRNN, clipped shPLRNN and AL-RNN: analytic Jacobians against autograd and finite
differences, bounded orbits of the clipped model, exact fixed points and cycles (a
constructed example with known answers), symbolic codes, divergence errors."""

from __future__ import annotations

import math

import pytest
import torch

from labkit.core import make_generator, uniform
from labkit.dynamics import ALRNN, AffineObservation, IdentityObservation, ShallowPLRNN
from labkit.errors import ConfigError, DivergenceError

F64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")


def _models():
    return [ShallowPLRNN(4, 6, seed=1, dtype=F64), ShallowPLRNN(4, 6, clipped=True, seed=2, dtype=F64),
            ALRNN(5, 3, seed=3, dtype=F64)]


@pytest.mark.parametrize("model", _models(), ids=["shplrnn", "clipped", "alrnn"])
def test_jacobian_matches_autograd_and_differences(model):
    gen = torch.Generator().manual_seed(0)
    z = 2 * torch.randn(3, 5, model.dim, generator=gen, dtype=F64)  # two batch axes
    jac = model.jacobian(z)
    assert jac.shape == (3, 5, model.dim, model.dim)
    flat = z.reshape(-1, model.dim)
    auto = torch.stack([torch.autograd.functional.jacobian(model, zi) for zi in flat])
    torch.testing.assert_close(jac.reshape(-1, model.dim, model.dim), auto, rtol=1e-12, atol=1e-12)
    h = 1e-6
    eye = torch.eye(model.dim, dtype=F64)
    with torch.no_grad():
        cols = [(model(flat + h * eye[j]) - model(flat - h * eye[j])) / (2 * h) for j in range(model.dim)]
    torch.testing.assert_close(jac.reshape(-1, model.dim, model.dim).detach(), torch.stack(cols, -1),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("seed", range(3))
def test_clipped_orbits_stay_bounded_for_large_random_weights(seed):
    # The condition (Hess et al. 2023): max_i |a_i| < 1. Then |z_{t+1}| <= a_max |z_t| + R
    # with R = ||W1||_2 ||h2|| + ||h1||, so orbits end up in the ball of radius R / (1 - a_max).
    gen = torch.Generator().manual_seed(seed)
    m = ShallowPLRNN(6, 40, clipped=True, seed=seed, dtype=F64)
    with torch.no_grad():
        m.A.copy_(torch.rand(6, generator=gen, dtype=F64) * 1.9 - 0.95)  # |a| <= 0.95
        m.W1.copy_(20 * torch.randn(6, 40, generator=gen, dtype=F64))
        m.W2.copy_(20 * torch.randn(40, 6, generator=gen, dtype=F64))
        m.h1.copy_(5 * torch.randn(6, generator=gen, dtype=F64))
        m.h2.copy_(5 * torch.randn(40, generator=gen, dtype=F64))
    radius = float((torch.linalg.matrix_norm(m.W1.detach(), ord=2) * m.h2.detach().norm() + m.h1.detach().norm())
                   / (1 - m.A.detach().abs().max()))
    z0 = 100 * torch.randn(8, 6, generator=gen, dtype=F64)
    traj = m.generate(z0, 10_000)
    norms = traj[:, 1000:].norm(dim=-1)
    assert torch.isfinite(traj).all()
    assert float(norms.max()) <= radius * (1 + 1e-9)
    # the unclipped model with the same weights diverges
    plain = ShallowPLRNN(6, 40, seed=seed, dtype=F64)
    plain.load_state_dict(m.state_dict())
    with pytest.raises(DivergenceError, match=r"at step \d+"):
        plain.generate(z0, 10_000)


def _constructed_alrnn() -> ALRNN:
    """M = 2, P = 1 (z2 rectified): F(z) = (0.5 z1 + relu(z2), 1 - z1)."""
    m = ALRNN(2, 1, seed=0, dtype=F64)
    with torch.no_grad():
        m.A.copy_(torch.tensor([0.5, 0.0], dtype=F64))
        m.W.copy_(torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=F64))
        m.h.copy_(torch.tensor([0.0, 1.0], dtype=F64))
    return m


def test_fixed_points_of_a_constructed_alrnn():
    # F(z) = (0.5 z1 + relu(z2), -z1 + 1). Region z2 <= 0: z* = (0, 1) but z2 = 1 > 0, not
    # self-consistent. Region z2 > 0: z1 = 0.5 z1 + z2, z2 = 1 - z1 -> z1 = 2/3, z2 = 1/3. One.
    m = _constructed_alrnn()
    fp = m.fixed_points()
    assert len(fp) == 1
    torch.testing.assert_close(fp.points[0, 0], torch.tensor([2 / 3, 1 / 3], dtype=F64), rtol=0, atol=1e-14)
    assert fp.regions.tolist() == [[1]]
    z = fp.points[0, 0]
    with torch.no_grad():
        assert float((m(z) - z).abs().max()) <= 1e-10
    assert int(m.symbolic_code(z)) == 1
    # eigenvalues of [[0.5, 1], [-1, 0]]: 0.25 +- i sqrt(0.9375), modulus 1: not stable
    torch.testing.assert_close(fp.eigenvalues[0].abs(), torch.ones(2, dtype=F64))
    assert not bool(fp.stable[0])


def test_two_cycle_of_a_constructed_shplrnn():
    # 1-d shPLRNN with L = 1: F(z) = -z + 2 relu(z) + ... choose A = -1? |a| < 1 is not needed
    # here. F(z) = 0.5 z - 3 relu(z) + 1: for z <= 0, F = 0.5 z + 1; for z > 0, F = -2.5 z + 1.
    # Fixed point: z > 0 region: z = 1/3.5 = 2/7. 2-cycle z1 <= 0 < z2: z2 = 0.5 z1 + 1,
    # z1 = -2.5 z2 + 1 -> z1 = -2.5 (0.5 z1 + 1) + 1 -> 2.25 z1 = -1.5 -> z1 = -2/3, z2 = 2/3.
    m = ShallowPLRNN(1, 1, seed=0, dtype=F64)
    with torch.no_grad():
        m.A.fill_(0.5)
        m.W1.fill_(-3.0)
        m.W2.fill_(1.0)
        m.h1.fill_(1.0)
        m.h2.fill_(0.0)
    fp = m.fixed_points()
    torch.testing.assert_close(fp.points[:, 0, 0], torch.tensor([2 / 7], dtype=F64))
    cyc = m.cycles(2)
    assert len(cyc) == 1 and cyc.period == 2
    pts = sorted(cyc.points[0, :, 0].tolist())
    assert pts == pytest.approx([-2 / 3, 2 / 3], abs=1e-14)
    with torch.no_grad():
        z1, z2 = cyc.points[0]
        assert float((m(z1) - z2).abs().max()) <= 1e-10 and float((m(z2) - z1).abs().max()) <= 1e-10
    # multiplier of the 2-cycle: 0.5 * (-2.5) = -1.25: unstable
    torch.testing.assert_close(cyc.eigenvalues[0].real, torch.tensor([-1.25], dtype=F64))


@pytest.mark.parametrize("model", [ShallowPLRNN(3, 5, seed=3, dtype=F64),
                                   ShallowPLRNN(3, 4, clipped=True, seed=2, dtype=F64),
                                   ALRNN(5, 3, seed=3, dtype=F64)], ids=["shplrnn", "clipped", "alrnn"])
def test_found_periodic_points_are_exact_and_in_their_regions(model):
    with torch.no_grad():  # larger offsets give more regions with solutions
        for name, p in model.named_parameters():
            if name.startswith("h"):
                p.copy_(torch.linspace(-1, 1, p.numel(), dtype=F64))
    found = 0
    for k in (1, 2):
        orbits = model.cycles(k)
        found += len(orbits)
        for pts, regs in zip(orbits.points, orbits.regions, strict=True):
            with torch.no_grad():
                for i in range(k):
                    nxt = model(pts[i])
                    assert float((nxt - pts[(i + 1) % k]).abs().max()) <= 1e-10
                    assert int(model.region(pts[i])) == int(regs[i])
    assert found >= 1


def test_alrnn_symbolic_code_range_and_trajectory_shape():
    m = ALRNN(6, 3, seed=4, dtype=F64)
    z = 3 * torch.randn(4, 50, 6, generator=torch.Generator().manual_seed(1), dtype=F64)
    code = m.symbolic_code(z)
    assert code.shape == (4, 50) and code.dtype == torch.int64
    assert int(code.min()) >= 0 and int(code.max()) < 2 ** 3
    expected = sum((z[..., 3 + i] > 0).long() << i for i in range(3))
    assert torch.equal(code, expected)
    traj = m.generate(torch.zeros(2, 6, dtype=F64), 20)
    assert traj.shape == (2, 21, 6)


def test_enumeration_cap_gives_a_clear_error():
    m = ShallowPLRNN(3, 30, seed=0, dtype=F64)
    with pytest.raises(ConfigError, match=r"2\^30 = 1073741824 linear subregions|region sequences"):
        m.fixed_points()
    with pytest.raises(ConfigError, match=r"k must be an int >= 1, got 0"):
        ALRNN(3, 1).cycles(0)


def test_divergence_names_the_step_and_bad_arguments():
    m = ALRNN(2, 0, seed=0, dtype=F64)
    with torch.no_grad():
        m.A.fill_(10.0)
    with pytest.raises(DivergenceError, match=r"non-finite at step 3\d\d"):
        m.generate(torch.ones(2, dtype=F64), 1000)
    with pytest.raises(ConfigError, match=r"state must be a tensor \[\*batch, 2\], got \(3,\)"):
        m.generate(torch.ones(3, dtype=F64), 10)
    with pytest.raises(ConfigError, match=r"n_relu must be an int in \[0, dim=3\], got 4"):
        ALRNN(3, 4)
    with pytest.raises(ConfigError, match=r"hidden must be an int >= 1, got 0"):
        ShallowPLRNN(3, 0)


def test_observation_models():
    ident = IdentityObservation(2, 5, dtype=F64)
    x = torch.randn(7, 2, dtype=F64)
    z = ident.init_state(x)
    assert z.shape == (7, 5) and torch.equal(ident(z), x) and ident.n_forced == 2
    aff = AffineObservation(2, 4, dtype=F64)
    with torch.no_grad():
        aff.c.copy_(torch.tensor([0.5, -1.0], dtype=F64))
    torch.testing.assert_close(aff(aff.invert(x)), x)


@pytest.mark.parametrize("clipped", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_initial_weights_are_labkit_core_uniform_draws(clipped, dtype):
    """A, then W1, W2 (and h2 when clipped) from one generator: the draws of
    labkit.core.uniform with PyTorch's bounds, the same numbers in every dtype."""
    model = ShallowPLRNN(4, 6, clipped=clipped, seed=5, dtype=dtype)
    gen = make_generator(5)
    r = torch.randn(4, 4, generator=gen, dtype=F64)  # A: the normalised R^T R / M + I
    k = r.T @ r / 4 + torch.eye(4, dtype=F64)
    a = torch.diagonal(k / torch.linalg.eigvalsh(k).abs().max())
    assert torch.equal(model.A, a.to(dtype))
    assert torch.equal(model.W1, uniform((4, 6), 1 / math.sqrt(6), gen, dtype=dtype))
    assert torch.equal(model.W2, uniform((6, 4), 1 / math.sqrt(4), gen, dtype=dtype))
    h2 = uniform((6,), 1 / math.sqrt(6), gen, dtype=dtype) if clipped else torch.zeros(6, dtype=dtype)
    assert torch.equal(model.h2, h2)
    # the identity observation's L (Glorot bound sqrt(6 / M)) likewise, from the same stream
    ident = IdentityObservation(2, 5, seed=_after(5, clipped), dtype=dtype)
    assert torch.equal(ident.L, uniform((3, 2), math.sqrt(6 / 5), gen, dtype=dtype))


def _after(seed: int, clipped: bool) -> torch.Generator:
    """A generator of ``seed`` advanced past a ShallowPLRNN(4, 6)'s draws."""
    gen = make_generator(seed)
    ShallowPLRNN(4, 6, clipped=clipped, seed=gen)
    return gen


def test_generate_carries_no_gradient_even_from_a_start_that_does():
    model = ShallowPLRNN(3, 8, seed=0)
    z0 = torch.zeros(3, requires_grad=True) * 1.0
    out = model.generate(z0, 5)
    assert not out.requires_grad and out.shape == (6, 3)
