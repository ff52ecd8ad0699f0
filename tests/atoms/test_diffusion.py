"""DiffCSP-style diffusion: schedules, the wrapped normal against finite differences and
quadrature, the loss, the predictor-corrector sampler, training on core.train.fit with
exact resume, and configuration errors; ab initio generation (``task="gen"``): the type
loss, the generating sampler, and training on rock-salt NaCl and CsCl cells."""

from __future__ import annotations

import math

import pytest
import torch

from labkit.atoms import (
    CrystalDiffusion,
    CSPConfig,
    CSPTrainer,
    CSPTraining,
    SampleResult,
    cosine_alpha_bars,
    sigma_schedule,
    train_csp,
    wrapped_normal_log_density,
    wrapped_normal_score,
    wrapped_normal_score_norm,
)
from labkit.atoms._denoiser import MAX_Z
from labkit.atoms._diffusion import wrap
from labkit.core.train import Checkpoint, fit
from labkit.errors import ConfigError, DataError, DivergenceError

SMALL = CSPConfig(hidden=32, fourier=4, timesteps=30, batch_size=16, steps=300, lr=2e-3)
GEN = SMALL.replace(task="gen")
#: The elements of :func:`salts`: Na, Cl, Cs.
SALT_ELEMENTS = (11, 17, 55)


pytestmark = pytest.mark.usefixtures("one_thread")


def perovskites(count=16, seed=0):
    """Cubic ABO3 cells (ideal sites, a = 3.8..4.2 Å) in random atom order, with a sixth
    padding column."""
    g = torch.Generator().manual_seed(seed)
    sites = torch.tensor([[0, 0, 0], [.5, .5, .5], [.5, .5, 0], [.5, 0, .5], [0, .5, .5]])
    a_site = torch.tensor([38, 56, 20])[torch.randint(0, 3, (count,), generator=g)]
    b_site = torch.tensor([22, 40, 50])[torch.randint(0, 3, (count,), generator=g)]
    species = torch.stack([a_site, b_site, *([torch.full((count,), 8)] * 3)], 1)
    perm = torch.stack([torch.randperm(5, generator=g) for _ in range(count)])
    species = torch.gather(species, 1, perm)
    frac = sites[perm]
    species = torch.cat([species, torch.zeros(count, 1, dtype=torch.long)], 1)
    frac = torch.cat([frac, torch.zeros(count, 1, 3)], 1)
    lattice = (3.8 + 0.4 * torch.rand(count, generator=g))[:, None, None] * torch.eye(3)
    return species, frac, lattice, species > 0


def salts(count=16, seed=0):
    """Two compositions, padded to 8 atoms: conventional rock-salt NaCl cells (8 atoms,
    a = 5.64 Å) and CsCl cells (2 atoms, a = 4.12 Å), lattice constants jittered by 2 %,
    atoms in random order (real atoms first)."""
    g = torch.Generator().manual_seed(seed)
    fcc = torch.tensor([[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0]])
    nacl = torch.cat([fcc, torch.remainder(fcc + torch.tensor([.5, 0, 0]), 1.0)])
    cscl = torch.cat([torch.tensor([[0, 0, 0], [.5, .5, .5]]), torch.zeros(6, 3)])
    rock = torch.arange(count) % 2 == 0
    species = torch.where(rock[:, None], torch.tensor([11] * 4 + [17] * 4), torch.tensor([55, 17] + [0] * 6))
    frac = torch.where(rock[:, None, None], nacl, cscl)
    perm = torch.stack([torch.randperm(8, generator=g) if r else
                        torch.cat([torch.randperm(2, generator=g), torch.arange(2, 8)]) for r in rock])
    species = torch.gather(species, 1, perm)
    frac = frac[torch.arange(count)[:, None], perm]
    a = torch.where(rock, 5.64, 4.12) * (1 + 0.02 * torch.randn(count, generator=g))
    return species, frac, a[:, None, None] * torch.eye(3), species > 0


# -- schedules and the wrapped normal ------------------------------------------------
def test_schedule_endpoints():
    ab = cosine_alpha_bars(1000)
    assert ab.shape == (1001,) and ab[0] == 1.0 and float(ab[-1]) < 1e-6
    assert torch.all(ab[1:] < ab[:-1])
    betas = 1 - ab[1:] / ab[:-1]
    assert float(betas.max()) <= 0.999 + 1e-12 and float(betas[0]) < 1e-3
    sig = sigma_schedule(1000, 0.005, 0.5)
    assert sig[0] == 0 and sig[1] == pytest.approx(0.005, rel=1e-12)
    assert sig[-1] == pytest.approx(0.5, rel=1e-12)
    ratios = sig[2:] / sig[1:-1]
    torch.testing.assert_close(ratios, torch.full_like(ratios, 100 ** (1 / 999)))


@pytest.mark.parametrize("sigma", [0.005, 0.05, 0.2, 0.5])
def test_wrapped_normal_score_is_the_derivative_of_the_log_density(sigma):
    x = torch.linspace(-0.49, 0.49, 41, dtype=torch.float64) * min(1.0, 8 * sigma)
    h = 1e-6 * sigma
    fd = (wrapped_normal_log_density(x + h, sigma) - wrapped_normal_log_density(x - h, sigma)) / (2 * h)
    score = wrapped_normal_score(x, sigma)
    torch.testing.assert_close(score, fd, rtol=1e-6, atol=1e-6 / sigma)
    torch.testing.assert_close(wrapped_normal_score(x + 3.0, sigma), score, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("sigma", [0.01, 0.3, 0.5])
def test_wrapped_normal_is_normalised_and_its_score_norm_matches_monte_carlo(sigma):
    x = torch.linspace(0, 1, 20001, dtype=torch.float64)
    mass = torch.trapezoid(wrapped_normal_log_density(x, sigma).exp(), x)
    assert float(mass) == pytest.approx(1.0, abs=1e-9)
    g = torch.Generator().manual_seed(0)
    draws = wrap(sigma * torch.randn(400_000, generator=g, dtype=torch.float64))
    mc = wrapped_normal_score(draws, sigma).square().mean()
    lam = wrapped_normal_score_norm(torch.tensor([sigma]))
    assert float(lam) == pytest.approx(float(mc), rel=0.02)
    if sigma == 0.01:  # nearly Gaussian: E[s^2] = 1/sigma^2
        assert float(lam) == pytest.approx(sigma**-2, rel=1e-6)


# -- configuration --------------------------------------------------------------------
@pytest.mark.parametrize(("changes", "message"), [
    (dict(hidden=0), "hidden must be an int >= 1, got 0"),
    (dict(timesteps=2.5), "timesteps must be int, got 2.5"),
    (dict(sigma_end=0.7), r"sigma_end must be in \[0.0, 0.5\], got 0.7"),
    (dict(sigma_begin=0.3, sigma_end=0.2), "sigma_begin must be < sigma_end, got sigma_begin=0.3"),
    (dict(lr=-1.0), "lr must be > 0, got -1.0"),
    (dict(cost_lattice=0.0, cost_coord=0.0), "cannot both be 0"),
    (dict(task="dng"), r"task must be one of \['csp', 'gen'\], got 'dng'"),
    (dict(cost_type=-1.0), "cost_type must be >= 0, got -1.0"),
])
def test_bad_config_values_are_named(changes, message):
    with pytest.raises(ConfigError, match=message):
        CSPConfig(**changes)


def test_official_config_is_diffcsp_recipe():
    official = CSPConfig.official()
    assert (official.layers, official.hidden, official.fourier, official.timesteps, official.sigma_begin,
            official.sigma_end, official.langevin_step, official.batch_size, official.steps,
            official.mixed_precision) == (4, 256, 128, 1000, 0.005, 0.5, 5e-7, 512, 40_000, True)
    assert CSPConfig.official(steps=10).steps == 10
    assert CSPConfig.official(steps=10).replace(steps=40_000) == official
    assert not hasattr(CSPConfig, "full")


# -- loss and sampler -----------------------------------------------------------------
def test_loss_is_seeded_and_ignores_padding():
    model = CrystalDiffusion(SMALL, seed=0).double()
    species, frac, lattice, mask = perovskites(4)
    batch = (species, frac.double(), lattice.double(), mask)
    a = model.loss(batch, torch.Generator().manual_seed(1))
    b = model.loss(batch, torch.Generator().manual_seed(1))
    assert set(a) == {"loss", "loss_lattice", "loss_coord"} and torch.isfinite(a["loss"])
    assert torch.equal(a["loss"], b["loss"])
    junk = frac.double().clone()
    junk[~mask] = float("nan")
    c = model.loss((species, junk, lattice.double(), mask), torch.Generator().manual_seed(1))
    assert torch.equal(a["loss"], c["loss"])
    with pytest.raises(DataError, match="shapes must be"):
        model.loss((species, frac[:, :3], lattice, mask))


def test_sampler_shapes_wrapping_and_reproducibility():
    model = CrystalDiffusion(SMALL, seed=0)
    species, _, _, mask = perovskites(3)
    res = model.sample(species, mask, seed=4, save_every=7)
    assert isinstance(res, SampleResult)
    saved = 1 + SMALL.timesteps // 7 + (SMALL.timesteps % 7 != 0)
    # [*batch, time, state]: the crystal first, then the saved step
    assert res.frac_trajectory.shape == (3, saved, 6, 3)
    assert res.lattice_trajectory.shape == (3, saved, 3, 3)
    assert res.species_trajectory.shape == (3, saved, 6)
    assert torch.equal(res.species_trajectory, species[:, None, :].expand(-1, saved, -1))
    assert res.times[0] == SMALL.timesteps and res.times[-1] == 0 and len(res.times) == saved
    assert torch.equal(res.frac_trajectory[:, -1], res.frac)
    assert torch.equal(res.lattice_trajectory[:, -1], res.lattice)
    assert torch.isfinite(res.frac).all() and torch.isfinite(res.lattice).all()
    assert float(res.frac.min()) >= 0.0 and float(res.frac.max()) < 1.0
    assert torch.all(res.frac_trajectory.transpose(0, 1)[:, ~mask] == 0)
    assert res.cartesian().shape == (3, 6, 3)
    summary = res.as_dict()
    volume = torch.linalg.det(res.lattice.double()).abs().mean().item()
    assert summary == {"crystals": 3, "atoms": int(mask.sum()), "max_atoms": 6, "frames": saved,
                       "mean_volume": pytest.approx(volume), "seconds": res.seconds}
    assert res.summary().startswith(f"3 crystals ({int(mask.sum())} atoms, at most 6 per cell), "
                                    f"{saved} saved frames")
    again = model.sample(species, mask, seed=4, save_every=7)
    assert torch.equal(again.frac_trajectory, res.frac_trajectory)
    assert torch.equal(again.lattice_trajectory, res.lattice_trajectory)
    other = model.sample(species, mask, seed=5, save_every=7)
    assert not torch.equal(other.frac, res.frac)


def test_sampler_names_the_step_where_it_diverges():
    model = CrystalDiffusion(SMALL, seed=0)
    with torch.no_grad():
        model.denoiser.coord_head.weight.fill_(float("nan"))
    species, _, _, mask = perovskites(2)
    with pytest.raises(DivergenceError, match=f"step t={SMALL.timesteps} "):
        model.sample(species, mask, seed=0)


# -- training -------------------------------------------------------------------------
def test_training_reduces_the_loss():
    run = train_csp(perovskites(16), SMALL, seed=0, device="cpu")
    assert isinstance(run, CSPTraining) and run.fit.status == "finished"
    loss = run.history["loss"]
    first, last = sum(loss[:25]) / 25, sum(loss[-50:]) / 50
    assert last < 0.7 * first, (first, last)
    coord = run.history["loss_coord"]
    assert sum(coord[-50:]) / 50 < 0.7 * sum(coord[:25]) / 25
    d = run.as_dict()
    assert d == {"status": "finished", "message": "", "seconds": run.seconds, "steps": SMALL.steps,
                 "task": "csp", "loss": loss[-1], "loss_lattice": run.history["loss_lattice"][-1],
                 "loss_coord": coord[-1]}
    assert run.summary() == (f"CSP training (csp) finished: {SMALL.steps} steps in {run.seconds:.1f} s, "
                             f"last loss {loss[-1]:.4g}")


def test_seed_generator_and_dtype():
    """A generator in the state of seed s trains exactly as the int s; float64 training
    starts from the float32 weights of the same seed, cast."""
    data, cfg = perovskites(8), SMALL.replace(steps=5)
    by_int = train_csp(data, cfg, seed=3, device="cpu")
    by_gen = train_csp(data, cfg, seed=torch.Generator().manual_seed(3), device="cpu")
    assert by_gen.history["loss"] == by_int.history["loss"]
    wide = CSPTrainer(data, cfg, seed=3, device="cpu", dtype=torch.float64)
    narrow = CSPTrainer(data, cfg, seed=3, device="cpu")
    for p, q in zip(wide.model.parameters(), narrow.model.parameters(), strict=True):
        assert p.dtype == torch.float64 and torch.equal(p, q.double())
    assert wide.model.alpha_bars.dtype == torch.float64
    assert all(x.dtype == torch.float64 for x in wide.batch(0)[1:3])
    assert math.isfinite(wide.step(0)["loss"])
    assert train_csp(data, cfg.replace(steps=1), seed=None, device="cpu").status == "finished"


def test_interrupted_training_resumes_exactly(tmp_path):
    cfg = SMALL.replace(steps=30)
    data = perovskites(8)
    reference = fit(CSPTrainer(data, cfg, seed=1, device="cpu").step, 30).history["loss"]

    path = tmp_path / "csp.pt"
    first = CSPTrainer(data, cfg, seed=1, device="cpu")
    ck = Checkpoint(path=path, state=first.state_dict, load=first.load_state_dict, every=10,
                    fingerprint=first.fingerprint())
    part = fit(first.step, 30, checkpoint=ck, callbacks=[lambda i, m, h: i == 19])
    assert part.steps_done == 20
    resumed = train_csp(data, cfg, seed=1, device="cpu", checkpoint=str(path))
    assert resumed.history.steps == list(range(30))
    assert resumed.history["loss"] == pytest.approx(reference, rel=1e-6)


def test_callable_batch_source_and_empty_cells():
    data = perovskites(4)
    run = train_csp(lambda i: data, SMALL.replace(steps=3), device="cpu")
    assert len(run.history) == 3 and all(math.isfinite(v) for v in run.history["loss"])
    species, frac, lattice, mask = data
    with pytest.raises(DataError, match="at least one atom"):
        CSPTrainer((species, frac, lattice, torch.zeros_like(mask)), SMALL, device="cpu")


@pytest.mark.gpu
def test_mixed_precision_on_cuda():
    run = train_csp(perovskites(16), SMALL.replace(steps=20, mixed_precision=True), device="cuda")
    assert all(math.isfinite(v) for v in run.history["loss"])
    species, _, _, mask = perovskites(2)
    res = run.model.sample(species.cuda(), mask.cuda(), seed=0)
    assert torch.isfinite(res.frac).all() and res.frac.device.type == "cuda"


# -- ab initio generation (task="gen") ------------------------------------------------
def test_csp_mode_builds_and_uses_no_type_model():
    """task="csp" (the default) has no type head, no type loss, and refuses to generate
    species; a "gen" model refuses CSP sampling."""
    csp = CrystalDiffusion(SMALL, seed=0)
    assert CSPConfig().task == "csp" and csp.denoiser.type_head is None
    assert isinstance(csp.denoiser.embed, torch.nn.Embedding)
    assert not any("type" in name for name, _ in csp.named_parameters())
    gen = CrystalDiffusion(GEN, seed=0)
    extra = {n for n, _ in gen.named_parameters()} - {n for n, _ in csp.named_parameters()}
    assert extra == {"denoiser.type_head.weight", "denoiser.type_head.bias", "denoiser.embed.bias"}
    assert gen.denoiser.embed.in_features == MAX_Z
    with pytest.raises(ConfigError, match="needs a model with task='gen', this one has task='csp'"):
        csp.sample_ab_initio([2, 3])
    species, _, _, mask = perovskites(2)
    with pytest.raises(ConfigError, match="needs a model with task='csp', this one has task='gen'"):
        gen.sample(species, mask)


def test_gen_loss_is_seeded_ignores_padding_and_checks_species():
    model = CrystalDiffusion(GEN, seed=0).double()
    species, frac, lattice, mask = salts(4)
    batch = (species, frac.double(), lattice.double(), mask)
    a = model.loss(batch, torch.Generator().manual_seed(1))
    assert set(a) == {"loss", "loss_lattice", "loss_coord", "loss_type"}
    assert all(torch.isfinite(v) for v in a.values())
    total = GEN.cost_lattice * a["loss_lattice"] + GEN.cost_coord * a["loss_coord"] + GEN.cost_type * a["loss_type"]
    torch.testing.assert_close(a["loss"], total)
    b = model.loss(batch, torch.Generator().manual_seed(1))
    assert torch.equal(a["loss"], b["loss"])
    junk_frac = frac.double().clone()
    junk_frac[~mask] = float("nan")
    junk_species = torch.where(mask, species, 99)
    c = model.loss((junk_species, junk_frac, lattice.double(), mask), torch.Generator().manual_seed(1))
    assert torch.equal(a["loss"], c["loss"])
    with pytest.raises(DataError, match="atomic numbers 1..118, got values from 11 to 200"):
        model.loss((torch.where(species == 55, 200, species), frac, lattice, mask))


def test_ab_initio_sampler_shapes_species_and_padding():
    model = CrystalDiffusion(GEN, seed=0)
    counts = [3, 1, 5]
    res = model.sample_ab_initio(counts, seed=2, save_every=7)
    saved = 1 + GEN.timesteps // 7 + (GEN.timesteps % 7 != 0)
    mask = torch.arange(5)[None, :] < torch.tensor(counts)[:, None]
    assert torch.equal(res.mask, mask)
    assert res.species.shape == (3, 5) and res.species.dtype == torch.int64
    real = res.species[mask]
    assert int(real.min()) >= 1 and int(real.max()) <= MAX_Z
    assert torch.all(res.species[~mask] == 0)
    assert res.frac_trajectory.shape == (3, saved, 5, 3) and res.lattice_trajectory.shape == (3, saved, 3, 3)
    assert res.species_trajectory.shape == (3, saved, 5)
    assert torch.equal(res.species_trajectory[:, -1], res.species)
    assert torch.all(res.species_trajectory.transpose(0, 1)[:, ~mask] == 0)
    assert torch.all(res.frac_trajectory.transpose(0, 1)[:, ~mask] == 0)
    assert torch.isfinite(res.frac).all() and torch.isfinite(res.lattice).all()
    assert float(res.frac.min()) >= 0.0 and float(res.frac.max()) < 1.0
    again = model.sample_ab_initio(torch.tensor(counts), seed=2, save_every=7)
    assert torch.equal(again.species, res.species) and torch.equal(again.frac, res.frac)
    for bad in ([], [2, 0], [[2, 3]], [1.5, 2.0]):
        with pytest.raises(DataError, match="n_atoms must be a non-empty 1-D sequence of integers >= 1"):
            model.sample_ab_initio(bad)


def test_gen_training_learns_the_training_elements():
    """300 steps on NaCl and CsCl cells: the type loss falls to well under half (measured
    0.24 of its start, 0.059 -> 0.014, with seed 0; 0.14 and 0.22 with seeds 1 and 2), and
    the sampled species are Na, Cl or Cs on 100 % of the 30 atoms (measured for training
    seeds 0-2 and sampling seeds 0-2), against 3/118 by chance."""
    run = train_csp(salts(16), GEN, seed=0, device="cpu")
    assert run.fit.status == "finished"
    loss = run.history["loss_type"]
    first, last = sum(loss[:25]) / 25, sum(loss[-50:]) / 50
    assert last < 0.5 * first, (first, last)
    res = run.model.sample_ab_initio([8, 2] * 3, seed=0)
    real = res.species[res.mask]
    share = float(torch.isin(real, torch.tensor(SALT_ELEMENTS)).float().mean())
    assert share >= 0.8, (share, res.species)
