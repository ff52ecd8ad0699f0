"""Reconstruction baselines: the echo state network fits one step and runs closed-loop,
SINDy recovers the Lorenz-63 equations, the neural ODE learns and resumes exactly, and
the common table puts a diverging model in a row that says where it diverged."""

from __future__ import annotations

import dataclasses
import math
import threading

import pytest
import torch

from labkit.core import linear_layer, make_generator, uniform
from labkit.dynamics import (
    BaselineTable,
    EchoStateNetwork,
    ESNConfig,
    NODEConfig,
    ReconstructionData,
    SINDyConfig,
    baseline_table,
    reconstruction_data,
    train_esn,
    train_node,
    train_sindy,
)
from labkit.errors import ConfigError, DataError, DivergenceError

#: Lorenz-63's parameters (Lorenz 1963): sigma, rho, beta.
SIGMA, RHO, BETA = 10.0, 28.0, 8.0 / 3.0
#: SINDy's coefficients from 4th-order finite differences at dt = 0.01 on clean data
#: (measured error ~0.1%): relative tolerance.
COEF_RTOL = 0.01


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def lorenz(one_thread) -> ReconstructionData:
    return reconstruction_data("Lorenz", n_steps=3000, dt=0.01, transient=500, n_test=1000,
                               seed=0)


@pytest.fixture(scope="module")
def lorenz_raw(lorenz) -> ReconstructionData:
    """The same series in the system's own units (not standardised)."""
    return ReconstructionData.from_array(lorenz.unscale(lorenz.train), dt=lorenz.dt,
                                         test=lorenz.unscale(lorenz.test), standardise=False,
                                         name="Lorenz")


# --------------------------------------------------------------------------- ESN

def test_esn_fits_one_step_and_runs_closed_loop(lorenz):
    res = train_esn(lorenz, ESNConfig(reservoir_size=200), seed=0)
    assert res.name == "ESN" and res.seconds > 0
    # teacher-forced one-step error, in units of the (unit) variance
    assert res.train_mse < 1e-4
    y = res.generate(1000)
    assert y.shape == (1001, 3) and y.dtype == torch.float64
    torch.testing.assert_close(y[0], lorenz.test[0])
    assert bool(torch.isfinite(y).all()) and float(y.abs().max()) < 5.0
    # the reservoir continues from the end of training: the first steps follow the data
    assert float((y[1:21] - lorenz.test[1:21]).abs().max()) < 0.05
    # both lobes are visited (x changes sign), as on the attractor
    assert float(y[:, 0].min()) < -0.5 < 0.5 < float(y[:, 0].max())
    assert res.as_dict() == {"name": "ESN", "reservoir_size": 200, "train_mse": res.train_mse,
                             "seconds": res.seconds}
    assert res.summary().startswith("ESN (D = 200): one-step training MSE ")
    # deterministic given the seed
    again = train_esn(lorenz, ESNConfig(reservoir_size=200), seed=0)
    torch.testing.assert_close(again.generate(50), res.generate(50), rtol=0, atol=0)
    # a context series re-synchronises the reservoir from zero
    yc = res.generate(10, lorenz.test[200], context=lorenz.test[:200])
    assert float((yc[1:] - lorenz.test[201:211]).abs().max()) < 0.05


def test_esn_draws_through_labkit_core_uniform_and_takes_a_dtype(lorenz):
    cfg = ESNConfig(reservoir_size=40, bias_scaling=0.2)
    esn = EchoStateNetwork(3, cfg, seed=4)
    gen = make_generator(4)
    mask = torch.rand(40, 40, generator=gen, dtype=torch.float64) < 6.0 / 40
    a = torch.where(mask, uniform((40, 40), 1.0, gen), 0.0)
    rho = float(torch.linalg.eigvals(a).abs().max())
    assert torch.equal(esn.A, a * (0.9 / rho))
    w_in = torch.zeros(40, 3, dtype=torch.float64)
    w_in[torch.arange(40), torch.randint(0, 3, (40,), generator=gen)] = uniform((40,), 0.5, gen)
    assert torch.equal(esn.W_in, w_in)
    assert torch.equal(esn.b, uniform((40,), 0.2, gen))
    single = EchoStateNetwork(3, cfg, seed=4, dtype=torch.float32)
    assert single.A.dtype == torch.float32 and torch.equal(single.b, esn.b.float())
    res = train_esn(lorenz, ESNConfig(reservoir_size=50), seed=0, dtype=torch.float32)
    assert res.esn.W_out is not None and res.esn.W_out.dtype == torch.float32
    assert res.generate(5).dtype == torch.float64
    with pytest.raises(ConfigError, match="dtype must be a floating torch.dtype"):
        EchoStateNetwork(3, cfg, dtype=torch.int32)


# --------------------------------------------------------------------------- SINDy

def test_sindy_recovers_the_lorenz_equations(lorenz_raw):
    res = train_sindy(lorenz_raw, SINDyConfig())
    assert res.name == "SINDy" and res.feature_names[:4] == ("1", "x0", "x1", "x2")
    expected = torch.zeros_like(res.coefficients)
    for dim, term, value in ((0, "x0", -SIGMA), (0, "x1", SIGMA),
                             (1, "x0", RHO), (1, "x1", -1.0), (1, "x0 x2", -1.0),
                             (2, "x2", -BETA), (2, "x0 x1", 1.0)):
        expected[dim, res.feature_names.index(term)] = value
        assert res.coefficient(dim, term) == pytest.approx(value, rel=COEF_RTOL), (dim, term)
    # every other library term is thresholded away
    assert bool(((expected == 0) == (res.coefficients == 0)).all()), res.equations
    assert res.as_dict() == {"name": "SINDy", "equations": list(res.equations), "n_terms": 7,
                             "seconds": res.seconds}
    lines = res.summary().splitlines()
    assert lines[0].startswith("SINDy: 7 terms, fitted in ") and len(lines) == 4
    assert lines[1] == f"  x0' = {res.equations[0]}"
    # the learned field is the Lorenz field
    x = lorenz_raw.train[:5]
    true = torch.stack([SIGMA * (x[:, 1] - x[:, 0]), x[:, 0] * (RHO - x[:, 2]) - x[:, 1],
                        x[:, 0] * x[:, 1] - BETA * x[:, 2]], -1)
    torch.testing.assert_close(res.vector_field(x), true, rtol=COEF_RTOL, atol=0.5)
    y = res.generate(500)
    assert y.shape == (501, 3) and bool(torch.isfinite(y).all())
    # short-term forecast follows the test data
    assert float((y[1:11] - lorenz_raw.test[1:11]).abs().max()) < 0.5


def test_sindy_generation_that_escapes_names_the_step(lorenz):
    res = train_sindy(lorenz)
    # dx0/dt = x0^2 from x0 = 1 blows up at t = 1, i.e. about step 100 at dt = 0.01
    xi = torch.zeros_like(res.coefficients)
    xi[0, res.feature_names.index("x0^2")] = 1.0
    blow = dataclasses.replace(res, coefficients=xi,
                               field=type(res.field)(res.field.powers, xi))
    with pytest.raises(DivergenceError, match=r"SINDy diverged at step (9\d|10\d) of 200"):
        blow.generate(200, torch.tensor([1.0, 0.0, 0.0]))


# --------------------------------------------------------------------------- neural ODE

NODE_SMALL = NODEConfig(hidden_dim=32, seq_len=5, batch_size=16, steps=80, lr_start=1e-2,
                        lr_end=1e-3)


def test_node_loss_decreases_and_generates(lorenz):
    res = train_node(lorenz, NODE_SMALL, seed=0, device="cpu")
    loss = res.history["loss"]
    assert res.status == "finished" and len(loss) == 80 and res.name == "NeuralODE"
    first, last = sum(loss[:10]) / 10, sum(loss[-10:]) / 10
    assert last < 0.3 * first, (first, last)
    y = res.generate(100)
    assert y.shape == (101, 3) and y.dtype == torch.float64 and bool(torch.isfinite(y).all())
    pred = res.forecast(lorenz.test[:4], 5)
    assert pred.shape == (4, 3)
    assert res.as_dict() == {"name": "NeuralODE", "status": "finished", "message": "",
                             "steps": 80, "loss": loss[-1], "seconds": res.seconds}
    assert res.summary().startswith("NeuralODE: finished after 80 steps in ")


def test_node_layers_are_labkit_core_linear_layers_in_the_dtype(lorenz):
    cfg = NODEConfig(hidden_dim=8, depth=2, steps=2, seq_len=4, batch_size=4)
    res = train_node(lorenz, cfg.replace(steps=1), seed=3, device="cpu", dtype=torch.float64)
    gen = make_generator(3)
    expected = [linear_layer(3, 8, gen, dtype=torch.float64),
                linear_layer(8, 8, gen, dtype=torch.float64),
                linear_layer(8, 3, gen, dtype=torch.float64)]
    halt = threading.Event()
    halt.set()  # stopped before the first step: the initial weights
    untrained = train_node(lorenz, cfg, seed=3, device="cpu", dtype=torch.float64, stop=halt)
    assert untrained.status == "stopped" and len(untrained.history) == 0
    layers = [m for m in untrained.field.net if isinstance(m, torch.nn.Linear)]
    assert len(layers) == 3
    for got, want in zip(layers, expected, strict=True):
        assert torch.equal(got.weight, want.weight) and torch.equal(got.bias, want.bias)
    assert all(p.dtype == torch.float64 for p in res.field.parameters())
    assert res.generate(3).dtype == torch.float64


def test_node_resumes_exactly(lorenz, tmp_path):
    cfg = NODE_SMALL.replace(steps=6, hidden_dim=8)
    whole = train_node(lorenz, cfg, seed=1, device="cpu")
    ckpt = tmp_path / "node.pt"
    part = train_node(lorenz, cfg, seed=1, device="cpu", checkpoint=ckpt,
                      callbacks=[lambda i, m, h: i == 2])
    assert part.status == "stopped" and len(part.history) == 3
    resumed = train_node(lorenz, cfg, seed=1, device="cpu", checkpoint=ckpt)
    assert resumed.status == "finished" and len(resumed.history) == 6
    assert resumed.history["loss"] == whole.history["loss"]
    for a, b in zip(whole.field.parameters(), resumed.field.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


# --------------------------------------------------------------------------- table

class _Diverging:
    name, seconds = "fake", 1.5

    def generate(self, n, x0=None):
        raise DivergenceError("fake diverged at step 7 of 999: [nan, nan, nan]")


class _NaNSeries:
    """Returns a series with NaNs from step 4 on, without raising."""

    def generate(self, n, x0=None):
        y = torch.zeros(n + 1, 3, dtype=torch.float64)
        y[4:] = math.nan
        return y


class _Truth:
    def __init__(self, data):
        self.data = data

    def generate(self, n, x0=None):
        return self.data.test[: n + 1]


def test_table_marks_diverging_models_and_reports_the_floor(lorenz):
    table = baseline_table(lorenz, {"truth": _Truth(lorenz), "blows up": _Diverging(),
                                    "nan": _NaNSeries()}, n_generate=499)
    assert isinstance(table, BaselineTable) and table.n_generate == 499
    truth, div, nan = table.rows
    assert truth.d_stsp == 0.0 and truth.d_h == 0.0 and truth.status == "ok"
    assert div.d_stsp is None and div.d_h is None and div.diverged_at == 7
    assert div.status == "diverged at step 7" and div.seconds == 1.5
    assert nan.status == "diverged at step 4" and nan.seconds is None
    # 1000 test samples hold two stretches of 500: the floor is test vs later test
    assert table.floor_source == "test vs later test"
    assert table.floor_d_stsp > 0 and 0 < table.floor_d_h < 1
    text = table.summary()
    assert str(table) == text and text.startswith("| model | D_stsp | D_H | train s | status |")
    assert "| blows up | - | - | 1.5 | diverged at step 7 |" in text
    assert "nan" not in text.replace("| nan |", "").lower()  # no NaN, only the label "nan"
    records = table.records()
    assert records[-1]["model"].startswith("floor") and len(records) == 4
    assert not any(isinstance(v, float) and math.isnan(v) for r in records for v in r.values())
    ds = table.to_xarray()
    assert list(ds["model"].values) == [r["model"] for r in records]
    assert math.isnan(float(ds["D_stsp"].sel(model="blows up")))  # None becomes NaN there
    assert float(ds["D_stsp"].sel(model="truth")) == 0.0
    assert ds.attrs == {"n_generate": 499, "floor_source": "test vs later test"}
    # the whole test series: the floor falls back on the end of the training series
    full = baseline_table(lorenz, {"truth": _Truth(lorenz)})
    assert full.n_generate == 999 and full.floor_source == "test vs end of training series"


def test_table_with_real_baselines(lorenz):
    esn = train_esn(lorenz, ESNConfig(reservoir_size=100), seed=0)
    sindy = train_sindy(lorenz)
    table = baseline_table(lorenz, {"ESN": esn, "SINDy": sindy}, n_generate=999, floor=False)
    assert [r.status for r in table.rows] == ["ok", "ok"]
    assert table.floor_d_stsp is None and all(math.isfinite(r.d_stsp) for r in table.rows)


# --------------------------------------------------------------------------- errors

@pytest.mark.parametrize(("make", "match"), [
    (lambda: ESNConfig(spectral_radius=-1.0), r"spectral_radius must be > 0, got -1.0"),
    (lambda: ESNConfig(leak=1.5), r"leak must be in \[0.0, 1.0\], got 1.5"),
    (lambda: ESNConfig(reservoir_size=0), r"reservoir_size must be an int >= 1, got 0"),
    (lambda: SINDyConfig(fd_order=0), r"fd_order must be an int >= 1, got 0"),
    (lambda: SINDyConfig(threshold=-0.1), r"threshold must be >= 0, got -0.1"),
    (lambda: NODEConfig(activation="relu"), r"activation must be one of .*got 'relu'"),
    (lambda: NODEConfig(lr_start=1e-3, lr_end=1e-2), r"lr_end must be <= lr_start=0.001"),
    (lambda: NODEConfig(steps=2.5), r"NODEConfig.steps must be int, got 2.5"),
])
def test_config_errors_quote_the_value(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


def test_bad_input_is_reported(lorenz):
    short = ReconstructionData.from_array(lorenz.train[:50], dt=0.01)
    with pytest.raises(DataError, match=r"50 samples; washout=100"):
        train_esn(short)
    with pytest.raises(DataError, match=r"20 samples; seq_len=30"):
        train_node(ReconstructionData.from_array(lorenz.train[:20], dt=0.01),
                   NODEConfig(seq_len=30), device="cpu")
    with pytest.raises(ConfigError, match="must be an ESNConfig"):
        train_esn(lorenz, NODEConfig())
    res = train_sindy(lorenz)
    with pytest.raises(DataError, match=r"x0 must have shape \(3,\), got \(2,\)"):
        res.generate(5, torch.zeros(2))
    with pytest.raises(ConfigError, match="n_steps must be an int >= 1, got 0"):
        res.generate(0)
    with pytest.raises(DataError, match="needs data with a test series"):
        baseline_table(short, {"sindy": res})
    with pytest.raises(DataError, match=r"n_generate=1000 needs 1001 test samples"):
        baseline_table(lorenz, {"sindy": res}, n_generate=1000)
