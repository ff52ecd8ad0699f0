"""LieGAN: recovers the known algebras with a sustained cosine, says "no symmetry" on the
control, trains through core.train.fit, resumes exactly and fails loudly."""

from __future__ import annotations

import json
import math

import pytest
import torch

from labkit.core import linear_layer
from labkit.core.train import History, fit
from labkit.errors import ConfigError, DivergenceError
from labkit.symmetry import (
    DiscoveryResult,
    LieGAN,
    LieGANConfig,
    anisotropic_control,
    invariant_metric,
    liegan,
    lorentz_invariant,
    o5_invariant,
    so2_invariant,
    two_body,
)
from labkit.symmetry._result import LABELS, judge

ETA = torch.diag(torch.tensor([1.0, -1.0, -1.0, -1.0], dtype=torch.float64))


pytestmark = pytest.mark.usefixtures("one_thread")


def test_step_metrics_and_generators_copy():
    tr = LieGAN(so2_invariant(300), LieGANConfig(eval_every=5), device="cpu")
    m0, m1 = tr.step(0), tr.step(1)
    assert set(m0) == {"loss_d", "loss_g", "reg_ortho", "reg_nontrivial", "cosine"}
    assert "cosine" not in m1 and all(math.isfinite(v) for v in m0.values())
    g = tr.generators()
    assert g.shape == (1, 2, 2) and g.dtype == torch.float64 and g.device.type == "cpu"
    g.zero_()
    assert tr.generators().abs().sum() > 0


@pytest.mark.parametrize(("make", "k", "seeds"), [
    (so2_invariant, 1, range(5)),
    (two_body, 1, range(5)),
    (o5_invariant, 10, range(3)),
])
def test_recovers_the_reference_with_a_sustained_cosine(make, k, seeds):
    for seed in seeds:
        res = liegan(make(seed=seed), LieGANConfig(n_generators=k), seed=seed, device="cpu")
        assert isinstance(res, DiscoveryResult) and res.generators.shape[0] == k
        assert res.verdict.label == "symmetry found", (seed, res.summary())
        assert res.verdict.sustained_step is not None and res.scores["cosine"] >= 0.99
        assert res.scores["action_distance"] < 0.1
        cos = [v for v in res.history["cosine"] if not math.isnan(v)]
        assert min(cos[-LieGANConfig().window:]) >= 0.99
        assert res.seconds < 60


def test_lorentz_algebra_and_metric():
    res = liegan(lorentz_invariant(seed=0), LieGANConfig(n_generators=6), seed=0, device="cpu")
    assert res.verdict.sustained_step is not None and res.scores["cosine"] >= 0.99, res.summary()
    m, _ = invariant_metric(res.generators)
    assert abs(float((m * ETA).sum())) / float(ETA.norm()) >= 0.99
    assert res.scores["metric_cosine"] >= 0.99
    # Boosts are non-compact: the input law moves at coefficient scale 1 even under the true
    # group, and the verdict says why, with the test repeated at a tenth of the scale.
    assert res.verdict.label == "no symmetry", res.summary()
    assert "match the reference" in res.verdict.reason and "non-compact" in res.verdict.reason
    assert res.scores["p_invariance_small"] > 0.05 and res.scores["p_control_small"] < 0.05


@pytest.mark.parametrize("seed", range(3))
def test_control_without_symmetry_is_reported_as_such(seed):
    res = liegan(anisotropic_control(seed=seed), LieGANConfig(steps=1500), seed=seed, device="cpu")
    assert res.verdict.label == "no symmetry", res.summary()
    assert not res.verdict.symmetric and res.two_sample.p_value < 0.05


def test_trains_through_the_one_loop_and_resumes_exactly():
    data = so2_invariant(300)
    cfg = LieGANConfig(steps=30, early_stop=False)
    a = LieGAN(data, cfg, seed=3, device="cpu")
    fit(a.step, 20)
    state = a.state_dict()
    for i in range(20, 30):
        a.step(i)
    b = LieGAN(data, cfg, seed=99, device="cpu")
    b.load_state_dict(state)
    for i in range(20, 30):
        b.step(i)
    torch.testing.assert_close(a.generators(), b.generators(), rtol=0, atol=0)


def test_absurd_learning_rate_trains_or_reports_divergence():
    cfg = LieGANConfig(lr_d=1e6, lr_g=1e6, steps=200, early_stop=False)
    try:
        res = liegan(so2_invariant(300), cfg, device="cpu")
    except DivergenceError as err:
        assert "non-finite" in str(err)
    else:
        assert torch.isfinite(res.generators).all()
        assert all(math.isfinite(v) for v in res.history["loss_d"])


def test_config_errors_quote_the_bad_value():
    with pytest.raises(ConfigError, match=r"lr_d must be > 0, got -1.0"):
        LieGANConfig(lr_d=-1.0)
    with pytest.raises(ConfigError, match=r"coefficients must be one of \['continuous', 'integer'\], got 'int'"):
        LieGANConfig(coefficients="int")
    with pytest.raises(ConfigError, match=r"n_generators must be int, got 1.5"):
        LieGANConfig(n_generators=1.5)
    with pytest.raises(ConfigError, match=r"data must be a SymmetryData"):
        LieGAN(torch.zeros(3, 2))


def test_official_recipe_settings():
    off = LieGANConfig.official()
    assert (off.disc_width, off.batch_size, off.lr_d, off.lr_g, off.init_scale) == (512, 64, 2e-4, 1e-3, 1.0)
    assert LieGANConfig.official(steps=5).steps == 5


J = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64)


@pytest.mark.parametrize(("angle", "label"), [(math.pi / 2, "symmetry found"),
                                              (math.pi / 3, "no symmetry")])
def test_integer_coefficients_judge_the_powers_of_exp_l(angle, label, pinwheel):
    """With integer coefficients the learned group is {exp(L)^m}: a quarter turn is a
    symmetry of the pinwheel, a sixth of a turn is not (and the control is rejected)."""
    res = judge(pinwheel, (angle * J)[None], method="liegan", history=History(), integer=True)
    assert res.verdict.label == label, res.summary()
    assert res.control.p_value < 0.05


def test_integer_coefficients_training_runs(pinwheel):
    """Integer mode trains and returns a finite basis with a verdict (whether it reaches the
    quarter turn depends on the start: 2 of 9 runs measured; bench/RESULTS.md)."""
    res = liegan(pinwheel, LieGANConfig(coefficients="integer", steps=200), seed=0, device="cpu")
    assert torch.isfinite(res.generators).all() and res.verdict.label in LABELS


def test_weights_are_linear_layer_draws_and_dtype_is_an_argument():
    """The discriminator's layers are labkit.core.linear_layer draws from the trainer's
    generator (after the basis); float64 starts from the same values as the float32 default."""
    data = so2_invariant(200)
    cfg = LieGANConfig(disc_width=16, disc_depth=2)
    a = LieGAN(data, cfg, seed=5, device="cpu")
    gen = torch.Generator().manual_seed(5)
    torch.randn(1, 2, 2, generator=gen, dtype=torch.float64)  # the basis comes first
    expected = [linear_layer(3, 16, gen), linear_layer(16, 16, gen), linear_layer(16, 1, gen)]
    linears = [m for m in a.disc if isinstance(m, torch.nn.Linear)]
    for got, want in zip(linears, expected, strict=True):
        assert torch.equal(got.weight, want.weight) and torch.equal(got.bias, want.bias)
    assert a.basis.dtype == torch.float32 and linears[0].weight.dtype == torch.float32
    b = LieGAN(data, cfg, seed=5, device="cpu", dtype=torch.float64)
    assert b.basis.dtype == torch.float64
    assert all(p.dtype == torch.float64 for p in b.disc.parameters())
    assert torch.equal(b.basis.to(torch.float32), a.basis)
    assert all(torch.equal(p.to(torch.float32), q) for p, q in zip(b.disc.parameters(),
                                                                   a.disc.parameters(), strict=True))
    assert all(math.isfinite(v) for v in b.step(0).values())


def test_float64_training_reaches_the_same_answer():
    res = liegan(so2_invariant(500), LieGANConfig(n_permutations=50), device="cpu",
                 dtype=torch.float64)
    assert res.verdict.label == "symmetry found" and res.scores["cosine"] >= 0.99, res.summary()


def test_a_bad_dtype_is_named():
    with pytest.raises(ConfigError, match=r"dtype must be torch.float32 or torch.float64, got torch.int64"):
        LieGAN(so2_invariant(50), dtype=torch.int64)
    with pytest.raises(ConfigError, match=r"got torch.float16"):
        liegan(so2_invariant(50), dtype=torch.float16)


def test_result_as_dict_is_plain_and_json_safe():
    res = liegan(so2_invariant(300), LieGANConfig(steps=30, n_permutations=20, eval_every=5),
                 seed=1, device="cpu")
    row = res.as_dict()
    json.dumps(row, allow_nan=False)
    assert row["method"] == "liegan" and row["verdict"] == res.verdict.label
    assert row["symmetric"] is res.verdict.symmetric and row["reason"] == res.verdict.reason
    assert (row["n_generators"], row["n"], row["steps"]) == (1, 2, len(res.history)) == (1, 2, 30)
    assert row["status"] == res.status and row["message"] == res.message
    assert row["seconds"] == res.seconds
    for key, value in res.scores.items():
        assert row[key] == (value if math.isfinite(value) else None)
    assert row["p_invariance"] == res.two_sample.p_value and row["p_control"] == res.control.p_value
    assert all(v is None or isinstance(v, bool | int | float | str) for v in row.values())
    assert res.verdict.as_dict() == {"label": row["verdict"], "symmetric": row["symmetric"],
                                     "reason": row["reason"],
                                     "sustained_step": row["sustained_step"]}
    assert res.verdict.summary() == f"{res.verdict.label}: {res.verdict.reason}"
    assert res.summary().startswith(f"liegan: {res.verdict.label}")


def test_as_dict_turns_non_finite_scores_into_none():
    res = judge(so2_invariant(200), J[None], method="liegg", history=History(), n_permutations=20,
                extra_scores={"gap": math.nan, "k": 1.0})
    row = res.as_dict()
    assert row["gap"] is None and row["k"] == 1.0 and row["steps"] == 0
    json.dumps(row, allow_nan=False)
