"""Seeds in labkit.symmetry (docs/api-conventions.md, "randomness"): every public function
that draws takes ``seed: int | torch.Generator | None``; an int gives what it always gave;
a run with several streams resolves its seed to one recorded int that repeats it; a bool,
a negative number or a non-int is a ConfigError naming the value."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

import pytest
import torch

from labkit.core import linear_layer
from labkit.core.train import History
from labkit.errors import ConfigError
from labkit.symmetry import (
    DiscoveryResult,
    LieGAN,
    LieGANConfig,
    RegressorTrainer,
    anisotropic_control,
    discover_discrete,
    liegan,
    liegg,
    lorentz_invariant,
    mmd_test,
    o5_invariant,
    so2_invariant,
    train_regressor,
    two_body,
)
from labkit.symmetry._result import judge, transformed_halves
from labkit.symmetry._seed import DRAWN_SEED_BOUND, run_seed

pytestmark = pytest.mark.usefixtures("one_thread")

MAKERS = [so2_invariant, two_body, o5_invariant, lorentz_invariant, anisotropic_control]
J = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64)
TINY = LieGANConfig(steps=6, n_permutations=10, eval_every=3, batch_size=32, disc_width=16)
BAD = [True, False, -1, 1.5, "0"]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _drawn(seed: int) -> int:
    """The int run_seed draws from a fresh generator seeded with ``seed``."""
    return int(torch.randint(0, DRAWN_SEED_BOUND, (1,), generator=_gen(seed)).item())


def _same(a: DiscoveryResult, b: DiscoveryResult) -> None:
    """Two results are one run: equal generators and equal records (but the time)."""
    assert torch.equal(a.generators, b.generators)
    row_a, row_b = a.as_dict(), b.as_dict()
    row_a.pop("seconds"), row_b.pop("seconds")
    assert row_a == row_b


@pytest.fixture(scope="module")
def small():
    return so2_invariant(120, seed=0)


@pytest.fixture(scope="module")
def regressor(small):
    return train_regressor(small, hidden=8, steps=5, seed=0).model


# Every public function whose result records its seed, as ``f(data, seed) -> DiscoveryResult``.
def _runs(small: Any, regressor: Any) -> dict[str, Callable[[Any], DiscoveryResult]]:
    return {
        "liegan": lambda seed: liegan(small, TINY, seed=seed, device="cpu"),
        "LieGAN": lambda seed: LieGAN(small, TINY, seed=seed, device="cpu").result(),
        "liegg": lambda seed: liegg(regressor, small, n_generators=1, seed=seed),
        "judge": lambda seed: judge(small, J[None], method="x", history=History(),
                                    n_permutations=10, seed=seed),
        "discover_discrete": lambda seed: discover_discrete(small, n_permutations=10,
                                                            max_samples=50, seed=seed),
    }


RUNS = ["liegan", "LieGAN", "liegg", "judge", "discover_discrete"]


# -- helpers ------------------------------------------------------------------------


def test_run_seed_keeps_an_int_draws_from_a_generator_and_is_fresh_for_none():
    assert run_seed(0) == 0 and run_seed(3) == 3 and run_seed(2 ** 63) == 2 ** 63
    g = _gen(5)
    first, second = run_seed(g), run_seed(g)
    assert first == _drawn(5) and second != first  # one draw each, the generator advances
    assert 0 <= first < DRAWN_SEED_BOUND
    fresh = {run_seed(None) for _ in range(3)}
    assert len(fresh) == 3 and all(isinstance(s, int) and s >= 0 for s in fresh)


# -- an int gives what it gave before ------------------------------------------------


@pytest.mark.parametrize("seed", [0, 3])
def test_int_seeds_give_the_recorded_p_values(seed):
    """p-values measured before seeds could be generators (labkit at commit 7c0b5e7)."""
    data = so2_invariant(200)
    res = judge(data, (0.3 * J)[None], method="x", history=History(), n_permutations=20,
                seed=seed)
    assert res.two_sample.p_value == {0: 14 / 21, 3: 20 / 21}[seed]
    assert res.control.p_value == 1 / 21 and res.seed == seed
    test = mmd_test(data.x[:100], data.x[100:] * 1.2, n_permutations=50, seed=seed)
    assert test.p_value == {0: 12 / 51, 3: 6 / 51}[seed]


@pytest.mark.parametrize("make", MAKERS)
@pytest.mark.parametrize("seed", [0, 3])
def test_an_int_data_set_is_drawn_from_a_generator_seeded_with_it(make, seed):
    """The same int gives the same samples as a fresh generator seeded with it (as before)."""
    assert torch.equal(make(40, seed=seed).joint(), make(40, seed=_gen(seed)).joint())
    if make in (so2_invariant, anisotropic_control):
        x = torch.randn(40, 2, generator=_gen(seed), dtype=torch.float64)
        assert torch.equal(make(40, seed=seed).x[:, 0], x[:, 0])


@pytest.mark.parametrize("seed", [0, 3])
def test_an_int_verdict_uses_the_streams_seed_and_seed_plus_one(small, seed):
    """judge with an int ``s``: sample and coefficients from ``s``, the invariance test from
    ``s``, the control test from ``s + 1`` (the streams of every int seed so far)."""
    res = judge(small, J[None], method="x", history=History(), n_permutations=10, seed=seed)
    a, moved, moved_ctrl = transformed_halves(small, J[None], coeff_scale=1.0, seed=seed)
    assert res.two_sample == mmd_test(a, moved, n_permutations=10, seed=seed, paired=True)
    assert res.control == mmd_test(a, moved_ctrl, n_permutations=10, seed=seed + 1, paired=True)


@pytest.mark.parametrize("seed", [0, 3])
def test_an_int_discrete_search_tests_candidate_c_with_seed_plus_c(small, seed):
    cands = torch.stack([J, -J, 3 * torch.eye(2, dtype=torch.float64)])
    res = discover_discrete(small, candidates=cands, n_permutations=20, max_samples=50, seed=seed)
    perm = torch.randperm(small.n_samples, generator=_gen(seed))
    ia, ib = perm[:50], perm[50:100]
    sub = dataclasses.replace(small, x=small.x[ib], y=small.y[ib])
    tests = [mmd_test(small.joint()[ia], sub.transform(g), n_permutations=20, seed=seed + c)
             for c, g in enumerate(cands)]
    assert res.two_sample in tests and res.control in tests and res.seed == seed
    assert res.control == tests[2]  # the dilation is the one rejected map


@pytest.mark.parametrize("seed", [0, 3])
def test_an_int_seeds_liegan_and_the_regressor_as_a_fresh_generator(small, seed):
    trainer = LieGAN(small, TINY, seed=seed, device="cpu")
    gen = _gen(seed)
    basis = torch.randn(1, 2, 2, generator=gen, dtype=torch.float64) * 0.1 * 2 ** 0.5 / 2
    assert torch.equal(trainer.basis, basis.to(torch.float32)) and trainer.seed == seed
    reg = RegressorTrainer(small, hidden=8, depth=1, seed=seed)
    gen = _gen(seed)
    first = linear_layer(2, 8, gen, dtype=torch.float64)
    assert torch.equal(reg.model.net[0].weight, first.weight)


# -- a Generator and None are accepted -----------------------------------------------


@pytest.mark.parametrize("make", MAKERS)
def test_data_sets_take_a_generator_as_is_and_none(make):
    g = _gen(7)
    a, b = make(30, seed=g), make(30, seed=g)  # one generator feeds both: different draws
    assert torch.equal(a.joint(), make(30, seed=7).joint())
    assert not torch.equal(a.joint(), b.joint())
    assert make(30, seed=None).joint().shape == a.joint().shape


def test_mmd_test_takes_a_generator_as_is_and_none(small):
    a, b = small.x[:60], small.x[60:]
    assert mmd_test(a, b, n_permutations=20, seed=_gen(4)) == mmd_test(a, b, n_permutations=20, seed=4)
    assert 0 < mmd_test(a, b, n_permutations=20, seed=None).p_value <= 1


def test_the_regressor_takes_a_generator_as_is_and_none(small):
    by_int = train_regressor(small, hidden=8, steps=3, seed=2)
    g = _gen(2)
    by_gen = train_regressor(small, hidden=8, steps=3, seed=g)
    assert by_gen.trainer.rng is g
    assert by_gen.history["loss"] == by_int.history["loss"]
    fresh = train_regressor(small, hidden=8, steps=3, seed=None)
    again = train_regressor(small, hidden=8, steps=3, seed=fresh.trainer.rng.initial_seed())
    assert fresh.history["loss"] == again.history["loss"]
    assert isinstance(RegressorTrainer(small, hidden=4, seed=_gen(0)).rng, torch.Generator)
    assert isinstance(RegressorTrainer(small, hidden=4, seed=None).rng, torch.Generator)


@pytest.mark.parametrize("name", RUNS)
def test_a_generator_seed_is_recorded_as_the_int_drawn_from_it(small, regressor, name):
    run = _runs(small, regressor)[name]
    res = run(_gen(11))
    assert res.seed == _drawn(11) and res.as_dict()["seed"] == res.seed
    _same(res, run(res.seed))  # the recorded int repeats the run


@pytest.mark.parametrize("name", RUNS)
def test_a_none_seed_is_recorded_as_a_fresh_int_that_repeats_the_run(small, regressor, name):
    run = _runs(small, regressor)[name]
    res = run(None)
    assert isinstance(res.seed, int) and res.seed >= 0 and res.as_dict()["seed"] == res.seed
    _same(res, run(res.seed))


@pytest.mark.parametrize("name", RUNS)
def test_an_int_seed_is_recorded_as_given(small, regressor, name):
    res = _runs(small, regressor)[name](3)
    assert res.seed == 3 and res.as_dict()["seed"] == 3


def test_liegan_with_a_generator_trains_from_the_drawn_int(small):
    g = _gen(1)
    trainer = LieGAN(small, TINY, seed=g, device="cpu")
    same = LieGAN(small, TINY, seed=_drawn(1), device="cpu")
    assert trainer.seed == _drawn(1) and trainer.rng is not g
    assert torch.equal(trainer.basis, same.basis)
    assert torch.equal(trainer.rng.get_state(), same.rng.get_state())


def test_liegan_checkpoints_keep_the_seed_of_the_tests(small):
    """A resumed trainer judges with the seed of the run it resumes (a None seed included)."""
    first = LieGAN(small, TINY, seed=None, device="cpu")
    first.step(0)
    resumed = LieGAN(small, TINY, seed=None, device="cpu")
    resumed.load_state_dict(first.state_dict())
    assert resumed.seed == first.seed
    _same(first.result(), resumed.result())
    old = first.state_dict()
    del old["seed"]  # a checkpoint written before the seed was recorded
    kept = LieGAN(small, TINY, seed=4, device="cpu")
    kept.load_state_dict(old)
    assert kept.seed == 4


def test_a_result_built_without_a_seed_records_none(small):
    res = judge(small, J[None], method="x", history=History(), n_permutations=10)
    bare = dataclasses.replace(res, seed=None)
    assert res.seed == 0 and bare.as_dict()["seed"] is None


# -- bad seeds -----------------------------------------------------------------------


def _every_function(small: Any, regressor: Any) -> dict[str, Callable[[Any], Any]]:
    out: dict[str, Callable[[Any], Any]] = {
        make.__name__: (lambda m: lambda seed: m(20, seed=seed))(make) for make in MAKERS}
    out.update(_runs(small, regressor))
    out["mmd_test"] = lambda seed: mmd_test(small.x[:20], small.x[20:40], seed=seed)
    out["train_regressor"] = lambda seed: train_regressor(small, hidden=4, steps=1, seed=seed)
    out["RegressorTrainer"] = lambda seed: RegressorTrainer(small, hidden=4, seed=seed)
    return out


FUNCTIONS = [m.__name__ for m in MAKERS] + RUNS + ["mmd_test", "train_regressor", "RegressorTrainer"]


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("bad", BAD)
def test_a_bad_seed_is_a_config_error_naming_it(small, regressor, name, bad):
    with pytest.raises(ConfigError, match="seed must be a non-negative int, a torch.Generator or "
                                          f"None, got {re.escape(repr(bad))}$"):
        _every_function(small, regressor)[name](bad)
