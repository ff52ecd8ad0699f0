"""GTF ensembles: every member trains exactly as ``train_gtf`` would alone with its seed
and data (several seeds, several systems), a diverging member is frozen and reported
while the others go on, runs resume from checkpoints, and bad input is named."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from labkit.dynamics import (
    ALRNN,
    GTFConfig,
    GTFTrainer,
    ReconstructionData,
    ShallowPLRNN,
    reconstruction_data,
    train_gtf,
    train_gtf_ensemble,
)
from labkit.errors import ConfigError, DivergenceError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def lorenz(one_thread) -> ReconstructionData:
    return reconstruction_data("Lorenz", n_steps=2000, dt=0.01, transient=500, n_test=500, seed=0)


@pytest.fixture(scope="module")
def rossler(one_thread) -> ReconstructionData:
    return reconstruction_data("Rossler", n_steps=2000, transient=500, n_test=500, seed=1)


SMALL = GTFConfig(hidden_dim=16, seq_len=25, batch_size=8, steps=25, alpha_interval=3)


def _assert_same_run(single, member) -> None:
    for part in ("model", "observation"):
        mine = dict(getattr(member, part).named_parameters())
        for name, p in getattr(single, part).named_parameters():
            torch.testing.assert_close(mine[name], p, rtol=1e-5, atol=1e-6, msg=name)
    assert member.alpha == pytest.approx(single.alpha, rel=1e-6)
    assert member.history.steps == single.history.steps
    assert member.history["loss"] == pytest.approx(single.history["loss"], rel=1e-4)


@pytest.mark.parametrize("cfg", [
    SMALL.replace(noise=0.05),
    SMALL.replace(model="alrnn", latent_dim=6, n_relu=2, forcing="sparse", tf_interval=5),
    SMALL.replace(model="shplrnn", latent_dim=5, hidden_dim=8, grad_clip=0.05),
    SMALL.replace(latent_dim=4, observation="affine", hidden_dim=8),
], ids=["clipped-noise", "alrnn-sparse", "shplrnn-latent-clip", "clipped-affine"])
def test_each_member_is_the_single_run_of_its_seed(lorenz, cfg):
    ens = train_gtf_ensemble(lorenz, cfg, seeds=[0, 3, 11], device="cpu")
    assert ens.seeds == [0, 3, 11] and len(ens) == 3 and ens.status == "finished"
    for k, seed in enumerate(ens.seeds):
        single = train_gtf(lorenz, cfg, seed=seed, device="cpu")
        _assert_same_run(single, ens[k])
    # the members really differ (different seeds, different batches)
    assert not torch.equal(ens[0].model.A, ens[1].model.A)


def test_several_systems_in_one_run(lorenz, rossler):
    ens = train_gtf_ensemble([lorenz, rossler], SMALL, device="cpu")
    assert ens.seeds == [0, 1]
    _assert_same_run(train_gtf(lorenz, SMALL, seed=0, device="cpu"), ens[0])
    _assert_same_run(train_gtf(rossler, SMALL, seed=1, device="cpu"), ens[1])
    rows = ens.scores(n_generate=400)
    assert [r["system"] for r in rows] == ["Lorenz", "Rossler"]
    records = ens.records()
    assert [(r["member"], r["seed"], r["system"]) for r in records] == [
        (0, 0, "Lorenz"), (1, 1, "Rossler")]
    assert records[1] == {"member": 1, "seed": 1, "system": "Rossler"} | ens[1].as_dict()
    lines = ens.summary().splitlines()
    assert lines[0].startswith("2 members, finished in ") and lines[1] == ""
    assert lines[2] == "| member | seed | system | status | steps | loss | alpha |"
    assert lines[5].startswith("| 1 | 1 | Rossler | finished | ")
    ds = ens.to_xarray()
    assert ds.sizes["member"] == 2 and list(ds["system"].values) == ["Lorenz", "Rossler"]
    assert float(ds["loss"].sel(member=1)) == ens[1].loss
    assert all(r["d_stsp"] is not None and math.isfinite(r["d_stsp"]) and r["d_h"] >= 0
               for r in rows)


@pytest.mark.parametrize("model", [ShallowPLRNN(3, 7, seed=0), ShallowPLRNN(3, 7, clipped=True, seed=1),
                                   ALRNN(5, 2, seed=2), ALRNN(4, 0, seed=3)],
                         ids=["shplrnn", "clipped", "alrnn", "alrnn-linear"])
def test_stacked_step_is_the_models_forward(model):
    others = [type(model)(**({"dim": model.dim, "hidden": model.hidden, "clipped": model.clipped}
                            if isinstance(model, ShallowPLRNN)
                            else {"dim": model.dim, "n_relu": model.n_relu}), seed=s)
              for s in (10, 11)]
    members = [model, *others]
    p = {n: torch.stack([dict(m.named_parameters())[n] for m in members]).detach()
         for n, _ in model.named_parameters()}
    p.update({n: torch.stack([dict(m.named_buffers())[n] for m in members])
              for n, _ in model.named_buffers()})
    z = torch.randn(3, 6, model.dim)
    got = model.stacked_step(p, z)
    for k, m in enumerate(members):
        torch.testing.assert_close(got[k], m(z[k]).detach())


def test_a_diverging_member_is_frozen_and_the_others_go_on(lorenz):
    bad = ReconstructionData.from_array(np.random.default_rng(0).normal(size=(2000, 3)) * 1e30,
                                        lorenz.dt, standardise=False)
    # float32 overflows: a non-finite loss at step 0
    cfg = SMALL.replace(steps=10)
    start = GTFTrainer([lorenz, bad], cfg, device="cpu").member_state(1)
    ens = train_gtf_ensemble([lorenz, bad], cfg, device="cpu")
    assert ens.status == "finished" and ens.history["alive"][-1] == 1
    assert ens[1].status == "diverged" and "step 0" in ens[1].message
    assert math.isnan(ens[1].history["loss"][-1]) and len(ens[1].history) == 1
    for name, p in ens[1].model.named_parameters():  # its last finite parameters
        assert torch.isfinite(p).all()
        torch.testing.assert_close(p, start["model"][name], rtol=0, atol=0)
    assert ens[0].status == "finished"
    _assert_same_run(train_gtf(lorenz, cfg, seed=0, device="cpu"), ens[0])
    # when every member diverges the run as a whole fails loudly
    with pytest.raises(DivergenceError, match="non-finite metric at step 0"):
        train_gtf_ensemble(bad, cfg, seeds=2, device="cpu")
    res = train_gtf_ensemble(bad, cfg, seeds=2, device="cpu", on_nan="stop")
    assert res.status == "diverged" and all(m.status == "diverged" for m in res.members)


def test_resume_from_a_checkpoint_equals_uninterrupted(lorenz, tmp_path):
    cfg = SMALL.replace(steps=20, model="alrnn", latent_dim=5, n_relu=2)
    whole = train_gtf_ensemble(lorenz, cfg, seeds=[2, 4], device="cpu")
    path = tmp_path / "ensemble.pt"
    part = train_gtf_ensemble(lorenz, cfg, seeds=[2, 4], device="cpu", checkpoint=path,
                              callbacks=[lambda i, metrics, history: i == 11])
    assert part.status == "stopped" and len(part.history) == 12
    resumed = train_gtf_ensemble(lorenz, cfg, seeds=[2, 4], device="cpu", checkpoint=path)
    assert resumed.history.steps == list(range(20))
    for a, b in zip(whole.members, resumed.members, strict=True):
        assert b.history["loss"] == pytest.approx(a.history["loss"], rel=1e-6)
        for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
            torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_bad_members_are_named(lorenz):
    two_d = ReconstructionData.from_array(np.random.default_rng(0).normal(size=(500, 2)))
    with pytest.raises(ConfigError, match=r"same number of variables.*N=3.*N=2"):
        GTFTrainer([lorenz, two_d], SMALL, device="cpu")
    with pytest.raises(ConfigError, match=r"2 data sets but 3 seeds"):
        GTFTrainer([lorenz, lorenz], SMALL, seeds=[0, 1, 2], device="cpu")
    with pytest.raises(ConfigError, match=r"seeds must be a count >= 1.*got 0"):
        GTFTrainer(lorenz, SMALL, seeds=0, device="cpu")
    with pytest.raises(ConfigError, match=r"seeds must be a non-empty list of ints.*'a'"):
        GTFTrainer(lorenz, SMALL, seeds=[0, "a"], device="cpu")
    with pytest.raises(ConfigError, match=r"member must be in \[0, 3\], got 4"):
        GTFTrainer(lorenz, SMALL, seeds=4, device="cpu").member_state(4)


@pytest.mark.gpu
def test_ensemble_on_cuda_matches_the_cpu_run(lorenz):
    cfg = SMALL.replace(steps=10)
    cpu = train_gtf_ensemble(lorenz, cfg, seeds=3, device="cpu")
    gpu = train_gtf_ensemble(lorenz, cfg, seeds=3, device="cuda")
    for a, b in zip(cpu.members, gpu.members, strict=True):
        assert b.history["loss"] == pytest.approx(a.history["loss"], rel=1e-3)


def test_select_picks_the_best_training_score_and_skips_diverged_members(lorenz):
    bad = ReconstructionData.from_array(np.random.default_rng(0).normal(size=(2000, 3)) * 1e30,
                                        lorenz.dt, standardise=False)
    ens = train_gtf_ensemble([lorenz, bad, lorenz], SMALL.replace(steps=15), seeds=[0, 1, 2],
                             device="cpu")
    scores = ens.selection_scores(500)
    assert scores[1] is None and scores[0] is not None and scores[2] is not None
    best = 0 if scores[0] <= scores[2] else 2
    assert ens.select(500) is ens[best]
    with pytest.raises(DivergenceError, match="all 2 members diverged"):
        train_gtf_ensemble(bad, SMALL.replace(steps=5), seeds=2, device="cpu",
                           on_nan="stop").select(100)
