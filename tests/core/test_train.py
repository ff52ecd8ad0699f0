"""The one training loop: history, NaN handling, stop event, callbacks, atomic resumable checkpoints."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from labkit.core import Checkpoint, History, fit
from labkit.errors import ConfigError, DivergenceError


class Quadratic:
    """Gradient descent on |w - 3|^2: a step whose result is known exactly."""

    def __init__(self, lr=0.1):
        self.w = torch.zeros(2, requires_grad=True)
        self.opt = torch.optim.SGD([self.w], lr=lr)

    def step(self, i):
        self.opt.zero_grad()
        loss = ((self.w - 3.0) ** 2).sum()
        loss.backward()
        self.opt.step()
        return {"loss": loss.detach(), "w0": self.w[0].item()}

    def state(self):
        return {"w": self.w.detach().clone(), "opt": self.opt.state_dict()}

    def load(self, state):
        with torch.no_grad():
            self.w.copy_(state["w"])
        self.opt.load_state_dict(state["opt"])


def test_fit_records_every_step_and_converges():
    q = Quadratic()
    result = fit(q.step, 50)
    assert result.status == "finished" and result.steps_done == 50 and result.message == ""
    assert result.history.steps == list(range(50)) and len(result.history["loss"]) == 50
    # w_k = 3 (1 - 0.8^k) exactly for SGD with lr 0.1 on this loss
    assert result.history["w0"][-1] == pytest.approx(3 * (1 - 0.8**50), rel=1e-5)
    assert result.history.wall == sorted(result.history.wall)


def test_nan_metric_raises_or_stops_with_a_message():
    def step(i):
        return {"loss": float("nan") if i == 3 else 1.0}

    with pytest.raises(DivergenceError, match=r"non-finite metric at step 3: \{'loss': nan\}"):
        fit(step, 10)
    result = fit(step, 10, on_nan="stop")
    assert result.status == "diverged" and result.steps_done == 4
    assert "step 3" in result.message


def test_stop_event_from_another_thread():
    stop = threading.Event()

    def step(i):
        time.sleep(0.002)
        return {"i": i}

    timer = threading.Timer(0.05, stop.set)
    timer.start()
    result = fit(step, 100_000, stop=stop)
    timer.join()
    assert result.status == "stopped" and 0 < result.steps_done < 100_000
    assert "stopped by request" in result.message


def test_callback_can_stop_and_sees_the_history():
    seen = []

    def early_stop(i, metrics, history):
        seen.append((i, len(history)))
        return metrics["loss"] < 1e-2

    result = fit(Quadratic().step, 1000, callbacks=[early_stop])
    assert result.status == "stopped" and result.steps_done < 1000
    assert seen[0] == (0, 1) and seen[-1][0] == result.steps_done - 1


def test_interrupted_run_resumes_exactly(tmp_path):
    full = Quadratic()
    reference = fit(full.step, 40).history["w0"]

    path = tmp_path / "ckpt.pt"
    first = Quadratic()
    stop_at = lambda i, m, h: i == 24  # noqa: E731 - stop after step 24 as if interrupted
    ck = Checkpoint(path=path, state=first.state, load=first.load, every=10)
    part = fit(first.step, 40, checkpoint=ck, callbacks=[stop_at])
    assert part.steps_done == 25 and path.exists()

    second = Quadratic()
    resumed = fit(second.step, 40, checkpoint=Checkpoint(path=path, state=second.state,
                                                         load=second.load, every=10))
    assert resumed.history.steps == list(range(40))
    assert resumed.history["w0"] == pytest.approx(reference, rel=1e-6)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporaries


def test_history_fills_missing_metrics_with_nan():
    h = History()
    h.append(0, {"a": 1.0}, 0.0)
    h.append(1, {"a": 2.0, "b": 5.0}, 0.1)
    assert h["a"] == [1.0, 2.0]
    assert h["b"][1] == 5.0 and h["b"][0] != h["b"][0]
    assert h.last() == {"a": 2.0, "b": 5.0}
    with pytest.raises(KeyError, match="no metric 'c'"):
        h["c"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_steps": -1}, "n_steps must be an int >= 0, got -1"),
        ({"on_nan": "ignore"}, "on_nan must be one of"),
        ({"callbacks": [3]}, "callbacks must be callables"),
    ],
)
def test_bad_arguments(kwargs, message):
    args = {"n_steps": 1} | kwargs
    with pytest.raises(ConfigError, match=message):
        fit(lambda i: {}, **args)
