"""LieGG: the null space of a trained regressor's polarization matrix is the true algebra."""

from __future__ import annotations

import json

import pytest
import torch

from labkit.core import linear_layer
from labkit.errors import ConfigError
from labkit.symmetry import (
    RegressorTrainer,
    liegg,
    o5_invariant,
    so,
    so2_invariant,
    train_regressor,
    two_body,
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize(("make", "k"), [(so2_invariant, 1), (o5_invariant, 10)])
def test_recovers_the_algebra_with_a_clear_gap(make, k):
    data = make(seed=0)
    res = liegg(train_regressor(data, seed=0).model, data)
    assert res.scores["k"] == k and res.generators.shape == (k, data.n, data.n)
    assert res.scores["cosine"] >= 0.99, res.summary()
    sv = res.singular_values
    assert torch.all(sv[1:] >= sv[:-1]) and sv.shape == (data.n ** 2,)
    assert res.scores["gap"] > 1.0  # sigma_{k+1} / sigma_k > e
    assert res.verdict.label == "symmetry found"


def test_exact_invariant_model_gives_an_exact_null_vector():
    data = so2_invariant(200)
    model = torch.nn.Sequential()
    model.forward = lambda x: x.square().sum(-1, keepdim=True)  # |x|^2, exactly invariant
    model.register_parameter("dummy", torch.nn.Parameter(torch.zeros(1, dtype=torch.float64)))
    res = liegg(model, data, n_generators=1)
    assert res.singular_values[0] < 1e-12
    assert abs(float((res.generators[0] * so(2).basis[0]).sum())) / 2 ** 0.5 == pytest.approx(1.0, abs=1e-10)


def test_bad_input():
    with pytest.raises(ConfigError, match="needs targets y, but data 'two_body' has y=None"):
        train_regressor(two_body(50))
    data = so2_invariant(50)
    with pytest.raises(ConfigError, match="n_generators must be <= 4"):
        liegg(torch.nn.Linear(2, 1).double(), data, n_generators=5)


def test_regressor_weights_are_linear_layer_draws_in_its_dtype():
    data = so2_invariant(100)
    default = RegressorTrainer(data, hidden=8, depth=2, seed=4)
    gen = torch.Generator().manual_seed(4)
    expected = [linear_layer(2, 8, gen, dtype=torch.float64), linear_layer(8, 8, gen, dtype=torch.float64),
                linear_layer(8, 1, gen, dtype=torch.float64)]
    linears = [m for m in default.model.net if isinstance(m, torch.nn.Linear)]
    for got, want in zip(linears, expected, strict=True):
        assert torch.equal(got.weight, want.weight) and torch.equal(got.bias, want.bias)
    single = RegressorTrainer(data, hidden=8, depth=2, seed=4, dtype=torch.float32)
    assert all(p.dtype == torch.float32 for p in single.model.parameters())
    assert all(b.dtype == torch.float32 for b in single.model.buffers())
    assert all(torch.equal(p.to(torch.float32), q) for p, q in zip(
        default.model.parameters(), single.model.parameters(), strict=True))
    with pytest.raises(ConfigError, match=r"dtype must be a floating-point torch.dtype, got torch.int32"):
        RegressorTrainer(data, dtype=torch.int32)


def test_a_float32_regressor_feeds_liegg():
    data = so2_invariant(seed=0)
    fitted = train_regressor(data, seed=0, dtype=torch.float32)
    assert next(fitted.model.parameters()).dtype == torch.float32
    res = liegg(fitted.model, data)
    assert res.scores["cosine"] >= 0.99, res.summary()


def test_regressor_result_summary_and_as_dict():
    res = train_regressor(so2_invariant(100), hidden=8, steps=5)
    row = res.as_dict()
    json.dumps(row, allow_nan=False)
    assert row == {"status": "finished", "message": "", "steps": 5,
                   "final_loss": res.history["loss"][-1], "seconds": res.seconds}
    assert res.final_loss == row["final_loss"]
    assert res.summary().startswith("regressor: finished after 5 steps, final loss ")


def test_liegg_result_as_dict_records_k_and_gap():
    data = so2_invariant(200)
    model = torch.nn.Sequential()
    model.forward = lambda x: x.square().sum(-1, keepdim=True)
    model.register_parameter("dummy", torch.nn.Parameter(torch.zeros(1, dtype=torch.float64)))
    row = liegg(model, data, n_generators=1).as_dict()
    json.dumps(row, allow_nan=False)
    assert row["method"] == "liegg" and row["k"] == 1.0 and row["n_generators"] == 1
    assert row["steps"] == 0 and row["cosine"] == pytest.approx(1.0, abs=1e-10)
