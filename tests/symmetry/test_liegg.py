"""LieGG: the null space of a trained regressor's polarization matrix is the true algebra."""

from __future__ import annotations

import pytest
import torch

from labkit.errors import ConfigError
from labkit.symmetry import liegg, o5_invariant, so, so2_invariant, train_regressor, two_body

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
