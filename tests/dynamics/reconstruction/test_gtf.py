"""Generalized teacher forcing: alpha = 1 is one-step-ahead prediction, the adaptive alpha
follows the Jacobian bound, a short Lorenz run lowers the loss, runs resume exactly,
bad input and diverging runs fail loudly; reconstruction data from the catalogue or arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from labkit.core import make_generator
from labkit.core.train import fit
from labkit.dynamics import (
    GTFConfig,
    GTFTrainer,
    ReconstructionData,
    estimate_alpha,
    reconstruction_data,
    train_gtf,
)
from labkit.errors import ConfigError, DataError, DivergenceError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def lorenz(one_thread) -> ReconstructionData:
    return reconstruction_data("Lorenz", n_steps=2000, dt=0.01, transient=500, n_test=200, seed=0)


SMALL = GTFConfig(hidden_dim=16, seq_len=25, batch_size=8, steps=50)


def test_reconstruction_data_from_the_catalogue(lorenz):
    d = lorenz
    assert d.train.shape == (2000, 3) and d.test.shape == (200, 3) and d.train.dtype == torch.float64
    assert d.system == "Lorenz" and d.dt == 0.01 and d.n_obs == 3
    torch.testing.assert_close(d.train.mean(0), torch.zeros(3, dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(d.train.std(0), torch.ones(3, dtype=torch.float64))
    assert d.lyapunov == pytest.approx(0.8917, abs=1e-3)
    assert d.lyapunov_per_step == pytest.approx(0.008917, abs=1e-5)
    # the raw attractor: z stays positive, x and y change sign
    raw = d.unscale(d.train)
    assert raw[:, 2].min() > 0 and raw[:, 0].min() < 0 < raw[:, 0].max()
    noisy = reconstruction_data("Lorenz", n_steps=300, dt=0.01, transient=500, n_test=0,
                                noise=0.05, seed=1, standardise=False)
    assert noisy.test is None and noisy.noise == 0.05
    clean = reconstruction_data("Lorenz", n_steps=300, dt=0.01, transient=500, n_test=0,
                                standardise=False)
    resid = (noisy.train - clean.train) / clean.train.std(0)
    assert 0.03 < float(resid.std()) < 0.07


def test_from_array_accepts_numpy_torch_and_xarray():
    xr = pytest.importorskip("xarray")
    x = np.random.default_rng(0).normal(size=(100, 2))
    a = ReconstructionData.from_array(x, dt=0.5)
    b = ReconstructionData.from_array(torch.as_tensor(x), dt=0.5)
    c = ReconstructionData.from_array(
        xr.DataArray(x.T, dims=("var", "time"), coords={"time": np.arange(100) * 0.25}))
    torch.testing.assert_close(a.train, b.train)
    torch.testing.assert_close(a.train, c.train)
    assert c.dt == 0.25 and a.test is None
    d = ReconstructionData.from_array(x, dt=1.0, test_fraction=0.2, standardise=False)
    assert d.train.shape == (80, 2) and d.test.shape == (20, 2)
    torch.testing.assert_close(d.test, torch.as_tensor(x[80:]))


def test_from_array_is_the_data_types_classmethod_only():
    import labkit.dynamics
    import labkit.dynamics.reconstruction

    for module in (labkit.dynamics, labkit.dynamics.reconstruction):
        assert not hasattr(module, "from_array") and "from_array" not in module.__all__
    d = ReconstructionData.from_array(np.ones((20, 1)) * np.arange(20)[:, None], dt=0.1,
                                      name="ramp")
    assert isinstance(d, ReconstructionData) and d.system == "ramp" and d.dt == 0.1


def test_bad_series_give_data_errors_naming_the_value():
    with pytest.raises(DataError, match=r"shape \[time, dim\] \(2 axes\), got shape \(5, 2, 3\)"):
        ReconstructionData.from_array(np.zeros((5, 2, 3)))
    with pytest.raises(DataError, match=r"too short: 4 samples, expected at least 16"):
        ReconstructionData.from_array(np.ones((4, 2)))
    x = np.random.default_rng(0).normal(size=(50, 2))
    x[17, 1] = np.nan
    with pytest.raises(DataError, match=r"1 non-finite value\(s\), first at time index 17"):
        ReconstructionData.from_array(x)
    with pytest.raises(DataError, match=r"test has 3 dimensions but x has 2"):
        ReconstructionData.from_array(np.ones((50, 2)) + np.arange(50)[:, None],
                                      test=np.ones((20, 3)))
    with pytest.raises(DataError, match=r"training series has 40 samples; seq_len=200 needs at least 202"):
        GTFTrainer(ReconstructionData.from_array(np.random.default_rng(1).normal(size=(40, 2))),
                   GTFConfig(), device="cpu")
    with pytest.raises(ConfigError, match=r"noise must be a finite number >= 0, got -0.1"):
        reconstruction_data(n_steps=100, noise=-0.1)


def test_config_errors_quote_the_bad_value():
    with pytest.raises(ConfigError, match=r"model must be one of \['shplrnn', 'clipped', 'alrnn'\], got 'lstm'"):
        GTFConfig(model="lstm")
    with pytest.raises(ConfigError, match=r"alpha must be in \[0.0, 1.0\], got 1.5"):
        GTFConfig(alpha=1.5)
    with pytest.raises(ConfigError, match=r"lr_end must be <= lr_start=0.001, got 0.01"):
        GTFConfig(lr_end=1e-2)
    with pytest.raises(ConfigError, match=r"seq_len must be an int >= 1, got 0"):
        GTFConfig(seq_len=0)
    with pytest.raises(ConfigError, match=r"latent_dim=2 is smaller than the data's dimension N=3"):
        GTFTrainer(ReconstructionData.from_array(np.random.default_rng(0).normal(size=(500, 3))),
                   GTFConfig(latent_dim=2), device="cpu")
    official = GTFConfig.official()
    assert (official.batch_size, official.seq_len, official.steps) == (16, 200, 250_000)
    assert (official.lr_start, official.lr_end, official.optimizer) == (1e-3, 1e-6, "radam")


@pytest.mark.parametrize("latent", [3, 6])
def test_alpha_one_is_one_step_ahead_prediction(lorenz, latent):
    cfg = SMALL.replace(alpha_mode="fixed", alpha=1.0, latent_dim=latent)
    tr = GTFTrainer(lorenz, cfg, seed=1, device="cpu")
    x = tr.sample()
    assert x.shape == (1, 8, 26, 3)
    with torch.no_grad():
        pred, forced = tr.teacher_forced(x)
    # the forced state equals the data in the observed units
    torch.testing.assert_close(forced[..., :3], x[:, :, 1:], rtol=0, atol=0)
    if latent == 3:  # then every prediction is the model's one step from the data
        with torch.no_grad():
            one_step = tr.model(x[0, :, :-1])
        torch.testing.assert_close(pred[0], one_step)


def test_alpha_zero_is_free_running(lorenz):
    tr = GTFTrainer(lorenz, SMALL.replace(alpha_mode="fixed", alpha=0.0), seed=1, device="cpu")
    x = tr.sample()
    with torch.no_grad():
        pred, _ = tr.teacher_forced(x)
        free = tr.model.generate(x[0, :, 0], x.shape[2] - 1)[:, 1:]
    torch.testing.assert_close(pred[0], free)


def test_adaptive_alpha_follows_the_jacobian_bound(lorenz):
    tr = GTFTrainer(lorenz, SMALL.replace(alpha=1.0, alpha_interval=1, alpha_decay=0.5,
                                          lr_start=1e-9, lr_end=1e-9), seed=2, device="cpu")
    # an expanding model: J = 2 I everywhere -> G = 2, alpha* = 1/2
    model = tr.model
    with torch.no_grad():
        model.A.fill_(2.0)
        model.W1.zero_()
    tr.load_member(0, model=model.state_dict())
    a, g = estimate_alpha(tr.model, torch.randn(4, 10, 3))
    assert g == pytest.approx(2.0) and a == pytest.approx(0.5)
    # a contracting model: J = 0.5 I -> alpha* = 0; the running alpha decays to it
    with torch.no_grad():
        model.A.fill_(0.5)
    tr.load_member(0, model=model.state_dict())
    alphas = [tr.step(i)["alpha"] for i in range(12)]
    assert all(0.0 <= v <= 1.0 for v in alphas)
    assert all(b < a_ for a_, b in zip(alphas, alphas[1:], strict=False))
    assert alphas[-1] < 1e-3
    assert estimate_alpha(tr.model, tr.alpha_states(tr.sample())[0])[0] == 0.0
    # a larger estimate is taken at once
    with torch.no_grad():
        model.A.fill_(4.0)
    tr.load_member(0, model=model.state_dict())
    assert tr.step(12)["alpha"] == pytest.approx(0.75, abs=1e-6)


def test_short_lorenz_training_lowers_the_loss(lorenz):
    cfg = GTFConfig(hidden_dim=20, seq_len=25, batch_size=16, steps=300, lr_start=1e-2, lr_end=1e-3,
                    alpha_mode="fixed", alpha=0.3)
    res = train_gtf(lorenz, cfg, seed=0, device="cpu")
    loss = res.history["loss"]
    assert res.status == "finished" and len(loss) == 300
    first, last = np.mean(loss[:20]), np.mean(loss[-20:])
    assert last < 0.5 * first, (first, last)
    x = res.generate(500)
    assert x.shape == (501, 3) and torch.isfinite(x).all()


@pytest.mark.parametrize("model", ["clipped", "alrnn"])
def test_resume_equals_uninterrupted(lorenz, model, tmp_path):
    cfg = SMALL.replace(model=model, latent_dim=5, steps=30, alpha_interval=3,
                        forcing="gtf" if model == "clipped" else "sparse", tf_interval=4)
    a = GTFTrainer(lorenz, cfg, seed=3, device="cpu")
    fit(a.step, 20)
    state = a.state_dict()
    for i in range(20, 30):
        a.step(i)
    b = GTFTrainer(lorenz, cfg, seed=99, device="cpu")
    b.load_state_dict(state)
    for i in range(20, 30):
        b.step(i)
    for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    assert a.alpha == b.alpha
    # and through train_gtf with a checkpoint file: stopped after 15 steps, then resumed
    path = tmp_path / "run.pt"
    whole = train_gtf(lorenz, cfg, seed=5, device="cpu")
    part = train_gtf(lorenz, cfg, seed=5, device="cpu", checkpoint=path,
                     callbacks=[lambda i, metrics, history: i == 14])
    assert part.status == "stopped" and len(part.history) == 15
    resumed = train_gtf(lorenz, cfg, seed=5, device="cpu", checkpoint=path)
    assert resumed.history.steps == list(range(30))
    assert resumed.history["loss"] == pytest.approx(whole.history["loss"], rel=1e-6)


def test_result_summary_as_dict_and_seeds(lorenz):
    cfg = SMALL.replace(steps=3)
    res = train_gtf(lorenz, cfg, seed=2, device="cpu")
    d = res.as_dict()
    assert d == {"model": "clipped", "latent_dim": 3, "status": "finished", "message": "",
                 "steps": 3, "loss": res.history["loss"][-1], "alpha": res.alpha,
                 "seconds": res.seconds}
    assert res.loss == res.history["loss"][-1]
    assert res.summary().startswith("clipped (M = 3): finished after 3 steps in ")
    # a generator is used as the member's random stream: the same run as its seed
    same = train_gtf(lorenz, cfg, seed=make_generator(2), device="cpu")
    assert same.history["loss"] == res.history["loss"]
    fresh = GTFTrainer(lorenz, cfg, seed=None, device="cpu")
    assert isinstance(fresh.seeds[0], int) and fresh.seeds[0] >= 0  # recorded, repeatable
    with pytest.raises(ConfigError, match="seed must be an int >= 0, got -1"):
        GTFTrainer(lorenz, cfg, seed=-1, device="cpu")


def test_float64_training(lorenz):
    res = train_gtf(lorenz, SMALL.replace(steps=3), seed=0, device="cpu", dtype=torch.float64)
    assert all(p.dtype == torch.float64 for p in res.model.parameters())
    assert all(p.dtype == torch.float64 for p in res.observation.parameters())
    single = train_gtf(lorenz, SMALL.replace(steps=3), seed=0, device="cpu")
    # the same initial weights in both dtypes (drawn in float64), so nearly the same losses
    assert res.history["loss"][0] == pytest.approx(single.history["loss"][0], rel=1e-5)
    assert res.generate(5).dtype == torch.float64
    with pytest.raises(ConfigError, match="dtype must be a floating torch.dtype"):
        GTFTrainer(lorenz, SMALL, device="cpu", dtype=torch.int64)


def test_nan_loss_raises_or_stops_without_a_nan_model():
    x = np.random.default_rng(0).normal(size=(300, 2)) * 1e30  # float32 overflows
    data = ReconstructionData.from_array(x, standardise=False)
    cfg = SMALL.replace(steps=20)
    with pytest.raises(DivergenceError, match=r"non-finite metric at step 0"):
        train_gtf(data, cfg, device="cpu")
    res = train_gtf(data, cfg, device="cpu", on_nan="stop")
    assert res.status == "diverged" and "non-finite" in res.message
    assert all(torch.isfinite(p).all() for p in res.model.parameters())
    assert math.isnan(res.history["loss"][-1])
