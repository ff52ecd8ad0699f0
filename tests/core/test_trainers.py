"""Every model trains through one engine (:func:`labkit.core.train.run`), so every model
must resume exactly and keep the same NaN policy. The shared checks run for each
``train_*`` of labkit: GTF, the GTF ensemble, the neural ODE, crystal diffusion, LieGAN and
LieGG's regressor, and the worked example of docs/api-conventions.md. A new model adds
one :class:`Case` here.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from labkit.atoms import CSPConfig, train_csp
from labkit.core import CHECKPOINT_EVERY, History, guarded_step, run
from labkit.dynamics import (
    GTFConfig,
    NODEConfig,
    reconstruction_data,
    train_gtf,
    train_gtf_ensemble,
    train_node,
)
from labkit.errors import CheckpointError, ConfigError, DivergenceError
from labkit.symmetry import LieGANConfig, liegan, so2_invariant, train_regressor

pytestmark = pytest.mark.usefixtures("one_thread")


@dataclasses.dataclass(frozen=True)
class Case:
    """How to train one model for ``steps`` steps with the engine's keyword arguments,
    and how to make every later loss non-finite (``poison(trainer)``)."""

    train: Callable[..., Any]
    poison: Callable[[Any], None]


def _series() -> Any:
    return reconstruction_data(n_steps=400, dt=0.01, n_test=0)


def _crystals() -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(0)
    species = torch.tensor([[8, 8, 22, 0]] * 4)
    frac = torch.rand(4, 4, 3, generator=gen)
    return species, frac, 4 * torch.eye(3).expand(4, 3, 3).clone(), species > 0


def _fill_nan(*tensors: torch.Tensor) -> None:
    for t in tensors:
        t.fill_(math.nan)


def _nan_losses(trainer: Any) -> None:
    """Crystal batches are checked for finiteness, so the diffusion loss itself goes NaN
    (with NaN gradients, as an exploding model would give)."""
    loss = trainer.model.loss
    trainer.model.loss = lambda *a, **k: {n: v * math.nan for n, v in loss(*a, **k).items()}


CASES = {
    "gtf": Case(lambda steps, **kw: train_gtf(
        _series(), GTFConfig(hidden_dim=8, seq_len=10, batch_size=4, steps=steps), device="cpu",
        **kw), lambda tr: _fill_nan(*tr._x)),
    "gtf_ensemble": Case(lambda steps, **kw: train_gtf_ensemble(
        _series(), GTFConfig(hidden_dim=8, seq_len=10, batch_size=4, steps=steps), seeds=[0, 3],
        device="cpu", **kw), lambda tr: _fill_nan(*tr._x)),
    "node": Case(lambda steps, **kw: train_node(
        _series(), NODEConfig(hidden_dim=8, seq_len=4, batch_size=4, steps=steps), device="cpu",
        **kw), lambda tr: _fill_nan(tr._x)),
    "csp": Case(lambda steps, **kw: train_csp(
        _crystals(), CSPConfig(hidden=16, batch_size=2, steps=steps), device="cpu", **kw),
        _nan_losses),
    "liegan": Case(lambda steps, **kw: liegan(
        so2_invariant(200), LieGANConfig(steps=steps, early_stop=False, batch_size=32,
                                         eval_every=2, n_permutations=20), device="cpu", **kw),
        lambda tr: _fill_nan(tr._x)),
    "regressor": Case(lambda steps, **kw: train_regressor(
        so2_invariant(200), hidden=8, steps=steps, **kw), lambda tr: _fill_nan(tr._x)),
}


def _docs_example() -> Any:
    """The worked example of docs/api-conventions.md (``train_line``), loaded as a module:
    a newcomer's model written by following the document passes the same checks."""
    import re
    import sys
    import types

    text = (Path(__file__).resolve().parents[2] / "docs" / "api-conventions.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.DOTALL)
    assert code is not None
    module = types.ModuleType("labkit_docs_example")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(code.group(1), "docs/api-conventions.md", "exec"), module.__dict__)
    return module


_LINE = _docs_example()
_X = torch.linspace(-1, 1, 64, dtype=torch.float64)
CASES["docs_example"] = Case(lambda steps, **kw: _LINE.train_line(_X, 3 * _X - 1, steps=steps, **kw),
                             lambda tr: _fill_nan(tr.y))


class Grab:
    """A callback that keeps the trainer :func:`run` binds, stops after ``stop_after`` and
    calls ``then(trainer)`` after step ``at``."""

    def __init__(self, stop_after: int | None = None, at: int | None = None,
                 then: Callable[[Any], None] | None = None) -> None:
        self.trainer: Any = None
        self.stop_after, self.at, self.then = stop_after, at, then
        self.snapshot: dict[str, Any] | None = None

    def bind(self, trainer: Any) -> None:
        self.trainer = trainer

    def __call__(self, i: int, metrics: dict[str, float], history: History) -> bool:
        if i == self.at and self.then is not None:
            self.snapshot = self.trainer.state_dict()
            self.then(self.trainer)
        return i == self.stop_after


def floating_tensors(state: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    """Every floating tensor of a nested state, by path."""
    if isinstance(state, torch.Tensor):
        return {prefix: state} if state.is_floating_point() else {}
    if isinstance(state, dict):
        return {k: v for key, val in state.items()
                for k, v in floating_tensors(val, f"{prefix}.{key}").items()}
    if isinstance(state, list | tuple):
        return {k: v for n, val in enumerate(state)
                for k, v in floating_tensors(val, f"{prefix}[{n}]").items()}
    return {}


def assert_same_state(a: dict[str, Any], b: dict[str, Any]) -> None:
    ta, tb = floating_tensors(a), floating_tensors(b)
    assert ta.keys() == tb.keys()
    for key in ta:
        assert torch.equal(ta[key], tb[key]), key


def assert_resume_equals_uninterrupted(case: Case, tmp_path: Path, steps: int = 6,
                                       stop_after: int = 2) -> None:
    """Train ``steps`` in one go; train again, stopped after ``stop_after`` with a
    checkpoint, and resumed from it in a new process-like call: same state, same history."""
    whole = Grab()
    case.train(steps, callbacks=[whole])
    path = tmp_path / "ckpt.pt"
    first = Grab(stop_after=stop_after)
    stopped = case.train(steps, checkpoint=path, callbacks=[first])
    assert stopped.status == "stopped"
    assert path.exists()
    second = Grab()
    resumed = case.train(steps, checkpoint=path, callbacks=[second])
    assert resumed.status == "finished"
    assert len(resumed.history) == steps
    assert second.trainer is not first.trainer
    assert_same_state(second.trainer.state_dict(), whole.trainer.state_dict())
    for key, values in whole.trainer.history.metrics.items():
        again = second.trainer.history[key]
        assert len(again) == len(values)
        assert all((x == y) or (x != x and y != y) for x, y in zip(values, again, strict=True)), key


def assert_nan_policy(case: Case, at: int = 1, steps: int = 6) -> None:
    """A non-finite loss from step ``at + 1`` on: ``"stop"`` ends the run as diverged with a
    message, ``"raise"`` raises; either way the trainer keeps the state it had after step
    ``at`` (its last finite parameters)."""
    grab = Grab(at=at, then=case.poison)
    res = case.train(steps, on_nan="stop", callbacks=[grab])
    assert res.status == "diverged"
    assert f"step {at + 1}" in res.message
    assert grab.snapshot is not None
    assert_same_state(grab.trainer.state_dict(), grab.snapshot)
    assert not any(bool(torch.isnan(t).any())
                   for t in floating_tensors(grab.trainer.state_dict()).values())
    grab = Grab(at=at, then=case.poison)
    with pytest.raises(DivergenceError, match="non-finite"):
        case.train(steps, on_nan="raise", callbacks=[grab])
    assert_same_state(grab.trainer.state_dict(), grab.snapshot)


@pytest.mark.parametrize("name", sorted(CASES))
def test_resume_equals_uninterrupted(name, tmp_path):
    assert_resume_equals_uninterrupted(CASES[name], tmp_path)


@pytest.mark.parametrize("name", sorted(CASES))
def test_nan_policy_keeps_the_last_finite_parameters(name):
    assert_nan_policy(CASES[name])


#: How each model is trained on *other* data (or settings), for the fingerprint test.
OTHER_RUN = {
    "gtf": lambda steps, **kw: train_gtf(
        reconstruction_data(n_steps=400, dt=0.02, n_test=0),
        GTFConfig(hidden_dim=8, seq_len=10, batch_size=4, steps=steps), device="cpu", **kw),
    "gtf_ensemble": lambda steps, **kw: train_gtf_ensemble(
        _series(), GTFConfig(hidden_dim=8, seq_len=12, batch_size=4, steps=steps),
        seeds=[0, 3], device="cpu", **kw),
    "node": lambda steps, **kw: train_node(
        _series(), NODEConfig(hidden_dim=12, seq_len=4, batch_size=4, steps=steps),
        device="cpu", **kw),
    "csp": lambda steps, **kw: train_csp(
        _crystals(), CSPConfig(hidden=32, batch_size=2, steps=steps), device="cpu", **kw),
    "liegan": lambda steps, **kw: liegan(
        so2_invariant(150), LieGANConfig(steps=steps, early_stop=False, batch_size=32,
                                         eval_every=2, n_permutations=20), device="cpu", **kw),
    "regressor": lambda steps, **kw: train_regressor(so2_invariant(150), hidden=8, steps=steps,
                                                     **kw),
}


@pytest.mark.parametrize("name", sorted(OTHER_RUN))
def test_a_checkpoint_of_another_run_is_refused(name, tmp_path):
    path = tmp_path / "run.pt"
    CASES[name].train(2, checkpoint=path)
    with pytest.raises(CheckpointError, match=r"run\.pt' belongs to another run"):
        OTHER_RUN[name](4, checkpoint=path)
    # the same run, continued for more steps, resumes
    assert len(CASES[name].train(3, checkpoint=path).history) == 3


@pytest.mark.parametrize("name", sorted(CASES))
def test_checkpoint_is_a_str_or_a_path(name, tmp_path):
    for path in (tmp_path / "a.pt", str(tmp_path / "b.pt")):
        res = CASES[name].train(2, checkpoint=path)
        assert res.status == "finished" and Path(path).exists()


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_result_has_the_common_fields(name):
    res = CASES[name].train(2, stop=threading.Event())
    assert res.status == "finished" and res.message == ""
    assert len(res.history) == 2 and res.seconds > 0


# --- the two bugs the review found -------------------------------------------------------


def test_liegan_takes_a_pathlib_checkpoint(tmp_path):
    # was: AttributeError: 'PosixPath' object has no attribute 'restore'
    path = tmp_path / "liegan.pt"
    res = CASES["liegan"].train(3, checkpoint=path)
    assert res.status == "finished" and path.exists()


def test_train_csp_stop_on_nan_keeps_finite_parameters():
    # was: a model with 34 non-finite parameter tensors after on_nan="stop"
    grab = Grab(at=0, then=CASES["csp"].poison)
    res = CASES["csp"].train(3, on_nan="stop", callbacks=[grab])
    assert res.status == "diverged"
    assert all(bool(torch.isfinite(p).all()) for p in res.model.parameters())


# --- the engine itself ----------------------------------------------------------------------


class _Unguarded:
    """A trainer that updates from any gradient (breaks guarded_step's contract)."""

    def __init__(self, poison_at: int) -> None:
        self.w = torch.nn.Parameter(torch.ones(3))
        self.opt = torch.optim.SGD([self.w], lr=0.1)
        self.history = History()
        self.rng = torch.Generator().manual_seed(0)
        self.poison_at = poison_at

    def step(self, i: int) -> dict[str, float]:
        scale = math.nan if i >= self.poison_at else 1.0
        loss = (self.w * scale).square().sum()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return {"loss": loss.item()}

    def state_dict(self) -> dict[str, Any]:
        return {"w": self.w.detach().clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self.w.copy_(state["w"])


def test_run_refuses_to_return_a_diverged_trainer_with_nan_parameters():
    with pytest.raises(DivergenceError, match="guarded_step"):
        run(_Unguarded(poison_at=2), 5, on_nan="stop")


def test_guarded_step_skips_non_finite_updates_and_clips():
    w = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([w], lr=1.0)
    (w * torch.tensor([math.inf, 1.0])).sum().backward()
    assert not guarded_step(opt, torch.tensor(1.0))
    assert torch.equal(w.detach(), torch.zeros(2)) and w.grad is None
    (w * torch.tensor([30.0, 40.0])).sum().backward()
    assert guarded_step(opt, torch.tensor(1.0), clip=5.0)
    torch.testing.assert_close(w.detach(), torch.tensor([-3.0, -4.0]), rtol=1e-5, atol=1e-5)


def test_run_checks_its_arguments(tmp_path):
    with pytest.raises(ConfigError, match="checkpoint must be a path"):
        run(_Unguarded(99), 1, checkpoint=3)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="step"):
        run(object(), 1)  # type: ignore[arg-type]
    res = run(_Unguarded(99), 3, checkpoint=tmp_path / "u.pt", checkpoint_every=1)
    assert res.status == "finished" and res.steps_done == 3
    assert CHECKPOINT_EVERY == 100
