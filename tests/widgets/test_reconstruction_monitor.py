"""ReconstructionMonitor: a fit callback that puts the model's free run beside the truth in
the AttractorViewer, with D_stsp / D_H and the loss in its readout."""

from __future__ import annotations

import numpy as np
import pytest

from labkit.core.train import fit
from labkit.dynamics import GTFConfig, GTFTrainer, reconstruction_data
from labkit.errors import ConfigError, DataError
from labkit.widgets import AttractorViewer, ReconstructionMonitor, free_run


@pytest.fixture(scope="module")
def data():
    return reconstruction_data(n_steps=1500, dt=0.01, n_test=600)


@pytest.mark.parametrize("model", ["clipped", "alrnn"])
def test_monitor_updates_the_viewer_during_training(data, model):
    cfg = GTFConfig(model=model, latent_dim=6 if model == "alrnn" else None, hidden_dim=16,
                    seq_len=20, batch_size=8, steps=60)
    trainer = GTFTrainer(data, cfg, device="cpu")
    viewer = AttractorViewer.from_series({"truth": data.test})
    monitor = ReconstructionMonitor(viewer, data.test, trainer=trainer, every=20,
                                    reference=data.train[-600:])
    readouts = []
    viewer.observe(lambda ch: readouts.append(ch["new"]), names=["readout"])
    res = fit(trainer.step, cfg.steps, callbacks=[monitor], history=trainer.history)
    assert res.status == "finished"
    assert monitor.updates >= 3 and len(readouts) >= 3  # after steps 1, 20, 40, 60
    assert "D_stsp" in viewer.readout and "floor" in viewer.readout
    assert viewer.readout.startswith("step 60 · loss ")
    assert viewer.series_names == ["truth", "model"] and viewer.mode == "series"
    assert monitor.last["step"] == 60 and np.isfinite(monitor.last["d_stsp"])
    x, codes = free_run(trainer, len(data.test) - 1, data.test[0])
    np.testing.assert_allclose(viewer.data.positions[viewer.data.series_of == 1][0],
                               x[:viewer.shape[1]], rtol=1e-5, atol=1e-6)
    if model == "alrnn":  # the symbolic code travels with the model series
        viewer.color_by = "codes"
        assert codes is not None and codes.shape == (len(data.test),)
        assert any(e["label"].startswith("code ") for e in viewer.legend)
    else:
        assert codes is None


def test_a_diverged_free_run_is_shown_up_to_the_divergence(data):
    trainer = GTFTrainer(data, GTFConfig(model="shplrnn", hidden_dim=8, seq_len=20, steps=1),
                         device="cpu")
    import torch

    model = trainer.model
    with torch.no_grad():
        model.A.fill_(3.0)  # every step triples the state: it runs away
    trainer.load_member(0, model=model.state_dict())
    viewer = AttractorViewer.from_series({"truth": data.test})
    monitor = ReconstructionMonitor(viewer, data.test, trainer=trainer, every=1)
    readout = monitor.update(0, {"loss": 1.0})
    assert "model diverged" in readout and "'model' diverged at sample" in viewer.message


def test_monitor_checks_its_input(data):
    viewer = AttractorViewer.from_series({"truth": data.test})
    with pytest.raises(ConfigError, match="every must be an int >= 1, got 0"):
        ReconstructionMonitor(viewer, data.test, every=0)
    with pytest.raises(DataError, match=r"must have shape \[time, dim\]"):
        ReconstructionMonitor(viewer, data.test[:, 0])
    with pytest.raises(ConfigError, match="has no trainer"):
        ReconstructionMonitor(viewer, data.test).update(0)


def test_train_gtf_binds_the_monitor(data):
    """``train_gtf(..., callbacks=[monitor])`` hands the monitor its trainer."""
    from labkit.dynamics import train_gtf

    cfg = GTFConfig(hidden_dim=16, seq_len=20, batch_size=8, steps=40)
    viewer = AttractorViewer.from_series({"truth": data.test})
    monitor = ReconstructionMonitor(viewer, data.test, every=20)
    result = train_gtf(data, cfg, device="cpu", callbacks=[monitor])
    assert result.status == "finished" and monitor.updates >= 2
    assert viewer.readout.startswith("step 40 · loss ")


def test_an_ensemble_run_binds_the_monitor_to_one_member(data):
    """``train_gtf_ensemble(..., callbacks=[monitor])``: the monitor follows member
    ``monitored`` (0), and its last free run is that member's."""
    from labkit.dynamics import train_gtf_ensemble

    cfg = GTFConfig(hidden_dim=16, seq_len=20, batch_size=8, steps=40)
    viewer = AttractorViewer.from_series({"truth": data.test})
    monitor = ReconstructionMonitor(viewer, data.test, every=20)
    result = train_gtf_ensemble(data, cfg, seeds=[5, 6], device="cpu", callbacks=[monitor])
    assert result.status == "finished" and monitor.updates >= 2
    x, _ = free_run(result[0].trainer, len(data.test) - 1, data.test[0])
    np.testing.assert_allclose(viewer.data.positions[viewer.data.series_of == 1][0],
                               x[:viewer.shape[1]], rtol=1e-5, atol=1e-6)
    other, _ = free_run(result[1].trainer, len(data.test) - 1, data.test[0])
    assert not np.allclose(other, x)
