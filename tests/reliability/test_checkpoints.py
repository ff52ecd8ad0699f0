"""Checkpoints as a careless or unlucky user meets them: a crafted file, a truncated or
corrupt one, another program's file, a folder, a checkpoint of another run, a state that
does not fit. Each is a CheckpointError naming the file; nothing in the file is executed."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

import pytest
import torch

from labkit.core import CHECKPOINT_FORMAT, Checkpoint, History, fingerprint, run
from labkit.errors import CheckpointError


class _Tiny:
    """A trainer with one weight, a generator and a fingerprint of its settings."""

    def __init__(self, lr: float = 0.1) -> None:
        self.lr = lr
        self.w = torch.nn.Parameter(torch.ones(2))
        self.opt = torch.optim.SGD([self.w], lr=lr)
        self.history = History()
        self.rng = torch.Generator().manual_seed(0)

    def step(self, i: int) -> dict[str, float]:
        loss = (self.w - torch.randn(2, generator=self.rng)).square().sum()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return {"loss": loss.item()}

    def state_dict(self) -> dict[str, Any]:
        return {"w": self.w.detach().clone(), "opt": self.opt.state_dict(),
                "rng": self.rng.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self.w.copy_(state["w"])
        self.opt.load_state_dict(state["opt"])
        self.rng.set_state(state["rng"])

    def fingerprint(self) -> str:
        return fingerprint({"lr": self.lr})


def _checkpoint(path: Path, **kw: Any) -> Checkpoint:
    t = _Tiny()
    return Checkpoint(path=path, state=t.state_dict, load=t.load_state_dict, **kw)


class _Exploit:
    """Unpickling this would run ``os.system`` (touch a marker file)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_file_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "ckpt.pt"
    buf = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, "step": 1, "history": {}, "state": _Exploit(marker)},
               buf, pickle_protocol=2)
    path.write_bytes(buf.getvalue())
    with pytest.raises(CheckpointError, match=r"cannot be read safely.*ckpt\.pt|ckpt\.pt.*cannot"):
        _checkpoint(path).restore()
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_damaged_file_names_itself(tmp_path, damage):
    path = tmp_path / "run.pt"
    _checkpoint(path).save(3, History())
    data = path.read_bytes()
    path.write_bytes({"truncated": data[: len(data) // 2], "garbage": b"\x00not a zip" * 50,
                      "empty": b""}[damage])
    with pytest.raises(CheckpointError, match=r"'.*run\.pt' cannot be read safely .*delete it"):
        _checkpoint(path).restore()


def test_another_programs_file_and_a_folder(tmp_path):
    other = tmp_path / "weights.pt"
    torch.save({"model": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError, match=r"weights\.pt' is not a labkit checkpoint "
                                              r"\(format None, expected 'labkit-checkpoint-1'\)"):
        _checkpoint(other).restore()
    folder = tmp_path / "dir.pt"
    folder.mkdir()
    with pytest.raises(CheckpointError, match=r"dir\.pt' is not a file"):
        _checkpoint(folder).restore()


def test_a_checkpoint_of_another_run_is_refused(tmp_path):
    path = tmp_path / "a.pt"
    assert run(_Tiny(lr=0.1), 4, checkpoint=path, checkpoint_every=2).status == "finished"
    with pytest.raises(CheckpointError, match=r"a\.pt' belongs to another run: .*fingerprint"):
        run(_Tiny(lr=0.2), 8, checkpoint=path)
    resumed = run(_Tiny(lr=0.1), 8, checkpoint=path)  # the same settings resume
    assert resumed.steps_done == 8 and len(resumed.history) == 8


def test_a_state_that_does_not_fit_names_the_file(tmp_path):
    path = tmp_path / "b.pt"
    t = _Tiny()
    Checkpoint(path=path, state=lambda: {"something": torch.zeros(1)}, load=t.load_state_dict
               ).save(1, History())
    with pytest.raises(CheckpointError, match=r"b\.pt' does not fit this model: KeyError"):
        _checkpoint(path).restore()


def test_fingerprint_tells_data_settings_and_seeds_apart():
    x = torch.arange(6.0)
    assert fingerprint({"lr": 0.1}, x) == fingerprint({"lr": 0.1}, x.clone())
    assert fingerprint({"lr": 0.1}, x) != fingerprint({"lr": 0.2}, x)
    assert fingerprint({"lr": 0.1}, x) != fingerprint({"lr": 0.1}, x + 1e-9)
    assert fingerprint(x) != fingerprint(x.double())
    assert fingerprint(1) != fingerprint(1.0)


def test_a_bare_pickle_or_an_incomplete_checkpoint_is_refused(tmp_path):
    bare = tmp_path / "bare.pt"
    bare.write_bytes(pickle.dumps({"format": CHECKPOINT_FORMAT}, protocol=2))
    with pytest.raises(CheckpointError, match=r"bare\.pt'"):
        _checkpoint(bare).restore()
    partial = tmp_path / "partial.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "step": -1, "history": {}}, partial)
    with pytest.raises(CheckpointError, match=r"partial\.pt' is incomplete \(missing \['state'\]"):
        _checkpoint(partial).restore()
