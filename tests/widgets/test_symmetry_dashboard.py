"""SymmetryDashboard without a browser: the payloads are right (each against an exact
expectation), training runs in the background while the caller stays free, and state
travels both ways (Python -> front end through comm messages; front end -> Python through
the same ``update`` messages a browser sends)."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from labkit.errors import ConfigError
from labkit.symmetry import Vector, so, so2_invariant, two_body
from labkit.widgets._symmetry_data import (
    align_generators,
    equivariance_curve,
    generator_scores,
    heatmap_payload,
    orbit_at,
    orbit_paths,
    orbit_payload,
    spectrum_payload,
    trace_payload,
    unit_generator,
)

J = so(2).basis[0]  # [[0, 1], [-1, 0]]: exp(tJ) turns x by -t


def rotation(t: float) -> np.ndarray:
    """exp(t J) in closed form."""
    return np.array([[math.cos(t), math.sin(t)], [-math.sin(t), math.cos(t)]])


# ---- pure payloads ------------------------------------------------------------------------

def test_heatmaps_are_scaled_sign_aligned_and_scored_against_the_truth():
    learned = np.stack([-3.0 * J.numpy(), np.array([[0.0, 2.0], [0.0, 0.0]])])  # so(2), shear
    h = heatmap_payload(learned, so(2).basis, threshold=0.99, labels=["a", "b"])
    assert h["n"] == 2 and h["labels"] == ["a", "b"] and h["threshold"] == 0.99
    np.testing.assert_allclose(h["learned"][0], J.numpy())  # -3J -> J: largest entry 1, sign of J
    np.testing.assert_allclose(h["reference"][0], J.numpy())
    # The shear [[0, 1], [0, 0]] meets J at <S, J> / (|S| |J|) = 1 / sqrt 2.
    assert h["scores"] == [pytest.approx(1.0), pytest.approx(1 / math.sqrt(2))]
    assert h["passed"] == [True, False]
    assert h["score"] == pytest.approx(1.0)  # the smallest principal cosine: so(2) is in the span
    none = heatmap_payload(learned[:1], None)
    assert none["reference"] == [] and none["scores"] == [None] and none["passed"] == [False]


def test_a_generator_inside_a_larger_algebra_scores_one():
    basis = so(3).basis.numpy()
    inside = 0.3 * basis[0] - 2.0 * basis[2]
    assert generator_scores(inside, basis) == [pytest.approx(1.0)]
    aligned = align_generators(inside[None], basis)[0]
    assert np.abs(aligned).max() == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="differ in matrix size"):
        generator_scores(inside, so(2).basis)
    with pytest.raises(ConfigError, match=r"matrices \[k, n, n\] or one \[n, n\], got shape \(2, 3\)"):
        heatmap_payload(np.zeros((2, 3)))


def test_orbit_points_are_the_rotated_points():
    x = np.array([[1.0, 0.0], [0.5, -2.0], [0.0, 3.0]])
    ts = [0.0, 0.4, math.pi / 2, 2 * math.pi]
    paths = orbit_paths(Vector(2), x, unit_generator(-5.0 * J), ts)
    assert paths.shape == (4, 3, 2)
    for j, t in enumerate(ts):  # unit_generator(-5J) = -J, so exp(t(-J)) = rotation(-t)
        np.testing.assert_allclose(paths[j], x @ rotation(-t).T, atol=1e-12)
    np.testing.assert_allclose(paths[-1], x, atol=1e-12)  # a closed orbit at t = 2 pi
    np.testing.assert_allclose(orbit_at(Vector(2), x, J, 0.4), x @ rotation(0.4).T, atol=1e-12)


def test_orbit_moves_every_block_of_a_multi_body_state():
    data = two_body(32, seed=1)
    x = data.x[:5].numpy()
    moved = orbit_at(data.rep, x, J, 0.7)
    blocks = x.reshape(5, 8, 2) @ rotation(0.7).T
    np.testing.assert_allclose(moved, blocks.reshape(5, 16), atol=1e-12)


def test_orbit_payload_projects_on_two_axes_as_float32():
    data = two_body(16, seed=0)
    meta, buf = orbit_payload(data.rep, data.x[:6], J, t_max=1.0, n_t=5, axes=[2, 3])
    assert meta["shape"] == [5, 6] and meta["ts"] == pytest.approx([-1, -0.5, 0, 0.5, 1])
    assert meta["axes"] == [2, 3] and meta["labels"] == ["x2", "x3"]
    pts = np.frombuffer(buf, np.float32).reshape(5, 6, 2)
    full = orbit_paths(data.rep, data.x[:6], J, meta["ts"])
    np.testing.assert_allclose(pts, full[..., [2, 3]], rtol=1e-6, atol=1e-6)
    lo_x, hi_x, lo_y, hi_y = meta["bounds"]
    assert lo_x == pytest.approx(pts[..., 0].min()) and hi_y == pytest.approx(pts[..., 1].max())
    with pytest.raises(ConfigError, match=r"axes must be two different coordinates in \[0, 16\)"):
        orbit_payload(data.rep, data.x[:6], J, axes=[0, 16])
    with pytest.raises(ConfigError, match="generator must be finite and non-zero"):
        unit_generator(np.zeros((2, 2)))


def test_equivariance_curve_is_zero_for_an_invariant_model_and_exact_for_one_that_is_not():
    x = so2_invariant(64, seed=0).x

    def radius(p):
        return p.square().sum(-1, keepdim=True)

    def first(p):
        return p[:, :1]

    shear = np.array([[0.0, 1.0], [0.0, 0.0]])
    c = equivariance_curve(radius, Vector(2), x, {"truth": J, "shear": shear}, t_max=1.0, n_t=5)
    assert c["t"] == pytest.approx([0, 0.25, 0.5, 0.75, 1.0])
    assert max(c["curves"]["truth"]["max"]) < 1e-12  # |x|^2 is rotation-invariant
    shear_err = c["curves"]["shear"]["mean"]
    assert shear_err[0] == 0 and all(b > a for a, b in zip(shear_err, shear_err[1:], strict=False))
    # f(x) = x0 under exp(tJ): |x0 - (cos t x0 + sin t x1)|, relative to max |x0|.
    d = equivariance_curve(first, Vector(2), x, {"truth": J}, t_max=1.0, n_t=5)
    xs = x.numpy()
    for t, mean in zip(d["t"], d["curves"]["truth"]["mean"], strict=True):
        expected = np.abs(xs[:, 0] - (math.cos(t) * xs[:, 0] + math.sin(t) * xs[:, 1]))
        assert mean == pytest.approx(expected.mean() / np.abs(xs[:, 0]).max(), rel=1e-9)


def test_spectrum_payload_marks_the_largest_gap():
    s = spectrum_payload([2.0, 1e-7, 1.0, 3e-7])
    assert s["values"] == [1e-7, 3e-7, 1.0, 2.0]
    assert s["gap"] == 2 and s["ratio"] == pytest.approx(1.0 / 3e-7)
    assert spectrum_payload([1e-7, 1.0, 2.0], n_symmetries=2)["gap"] == 2
    assert spectrum_payload([])["gap"] is None
    assert spectrum_payload([1.0], n_symmetries=1)["gap"] is None


def test_trace_payload_thins_the_history_and_finds_the_sustained_crossing():
    n = 1000
    cosine = [math.nan] * n
    readings = {}
    for i in range(0, n, 10):  # one evaluation every 10 steps
        readings[i] = 0.995 if i in (100, 300, 310, 320, 330) or i >= 500 else 0.5
        cosine[i] = readings[i]
    snap = {"steps": list(range(n)), "wall": [0.0] * n,
            "metrics": {"loss_d": [1.0 / (i + 1) for i in range(n)],
                        "loss_g": [math.inf] + [0.5] * (n - 1), "cosine": cosine}}
    tr = trace_payload(snap, threshold=0.99, window=5, max_points=100)
    assert len(tr["steps"]) <= 100 and tr["steps"][0] == 0 and tr["steps"][-1] == n - 1
    assert tr["loss_d"][-1] == pytest.approx(1.0 / n)
    assert tr["loss_g"][0] is None  # JSON has no infinity
    assert tr["reg_ortho"] == [None] * len(tr["steps"])  # not recorded
    assert tr["cosine_steps"] == list(range(0, n, 10)) and len(tr["cosine"]) == 100
    # 100 is one reading, 300..330 four: neither lasts the window of 5; 500 onwards does.
    assert tr["sustained_step"] == 500 and tr["last_step"] == n - 1
    assert tr["last"]["loss_d"] == pytest.approx(1.0 / n) and tr["last"]["cosine"] is None
    empty = trace_payload({"steps": [], "metrics": {}})
    assert empty["cosine"] == [] and empty["sustained_step"] is None and empty["last"] == {}


# ---- the widget -------------------------------------------------------------------------

from labkit.widgets import SymmetryDashboard  # noqa: E402

FAST = {"steps": 400, "n_permutations": 50}


def _capture(widget):
    sent: list[tuple[dict, list]] = []
    widget.comm.send = lambda data=None, metadata=None, buffers=None: sent.append((data, buffers))
    widget.sent = sent
    return widget


@pytest.fixture
def dash():
    d = _capture(SymmetryDashboard(config=FAST, device="cpu", analysis=False))
    yield d
    d.stop()
    d.wait(60)


def _front_end_update(widget, **state):
    """What a browser sends when the user changes a control."""
    widget._handle_msg({"content": {"data": {"method": "update", "state": state,
                                             "buffer_paths": []}}, "buffers": []})


def _sent_states(widget):
    return [data["state"] for data, _ in widget.sent if data and data.get("method") == "update"]


def test_initial_state_shows_the_data_the_truth_and_the_untrained_generator(dash):
    assert dash.datasets[0] == "so2_invariant" and "two_body" in dash.datasets
    assert (dash.n, dash.dim, dash.kind) == (2, 2, "continuous")
    assert dash.status == "idle" and dash.step == 0 and dash.total == 400 and dash.version >= 1
    np.testing.assert_allclose(dash.heatmap["reference"][0], J.numpy())
    learned = dash.generators()
    assert learned.shape == (1, 2, 2)
    assert dash.heatmap["scores"] == [pytest.approx(generator_scores(learned, so(2).basis)[0])]
    # The orbit buffer holds exp(t L) x for the learned L (unit norm) on the grid of t.
    meta = dash.orbit
    assert meta["shape"] == [73, 48] and meta["source"] == "learned"
    pts = np.frombuffer(dash.orbit_points, np.float32).reshape(73, 48, 2)
    expected = orbit_paths(dash.data.rep, dash.data.x[:48], unit_generator(learned[0]),
                           meta["ts"])
    np.testing.assert_allclose(pts, expected, rtol=1e-5, atol=1e-5)


def test_training_runs_in_the_background_while_the_caller_keeps_working(dash):
    began = time.perf_counter()
    dash.start()
    assert time.perf_counter() - began < 0.5  # start() returns at once
    assert dash.status == "running" and dash.running
    # The caller's thread stays free: it computes while steps are published.
    seen, spins = set(), 0
    while dash.status in ("running", "stopping") and time.perf_counter() - began < 120:
        spins += 1
        seen.add(dash.step)
        time.sleep(0.01)
    assert spins > 20 and len(seen) >= 3  # several intermediate publications seen
    assert dash.wait(120)
    elapsed = time.perf_counter() - began
    assert dash.status == "finished" and not dash.running
    r = dash.result
    assert r.verdict.symmetric and dash.verdict["label"] == "symmetry found"
    assert dash.verdict["sustained_step"] == r.verdict.sustained_step
    assert dash.traces["sustained_step"] == r.verdict.sustained_step  # same rule, same step
    assert dash.heatmap["scores"][0] == pytest.approx(r.scores["cosine"])
    assert dash.heatmap["scores"][0] >= 0.99 and dash.heatmap["passed"] == [True]
    # Steps are numbered once each and the history is the trainer's.
    assert dash.history.steps == list(range(len(dash.history.steps)))
    assert dash.step == len(dash.history.steps) == dash.traces["last_step"] + 1
    # Throttled: at most one training publication per publish_every (plus the last few).
    trained = [s for s in _sent_states(dash) if "traces" in s]
    assert 3 <= len(trained) <= elapsed / dash.publish_every + 4


def test_front_end_buttons_start_stop_resume_and_reset(dash):
    _front_end_update(dash, running=True)
    deadline = time.monotonic() + 60
    while dash.step < 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    _front_end_update(dash, running=False)
    assert dash.wait(60) and dash.status == "stopped" and not dash.running
    stopped_at = dash.step
    assert 20 <= stopped_at < 400 and dash.history.steps[-1] == stopped_at - 1
    _front_end_update(dash, config={**FAST, "early_stop": False, "steps": stopped_at + 30})
    assert dash.step == 0  # a new config is a new run
    _front_end_update(dash, running=True)
    assert dash.wait(60) and dash.status == "finished" and dash.step == stopped_at + 30
    before = dash.trainer
    _front_end_update(dash, resets=1)
    assert dash.trainer is not before and dash.step == 0 and dash.status == "idle"
    assert dash.traces["steps"] == [] and len(dash.history) == 0


def test_a_stopped_run_resumes_where_it_stopped():
    d = SymmetryDashboard(config={**FAST, "early_stop": False, "steps": 120}, device="cpu",
                          analysis=False)
    d.start()
    while d.step < 10:
        time.sleep(0.01)
    d.stop()
    assert d.wait(60) and d.status == "stopped"
    first = d.step
    d.start()
    assert d.wait(60) and d.status == "finished"
    assert d.history.steps == list(range(120)) and first < 120  # no step twice, none left out


def test_the_orbit_slider_reaches_python_and_python_moves_the_slider(dash):
    _front_end_update(dash, orbit_t=0.75)
    assert dash.orbit_t == 0.75
    L = unit_generator(dash.generators()[0])
    x = dash.data.x[:48].numpy()
    np.testing.assert_allclose(dash.orbit_points_at(), orbit_at(dash.data.rep, x, L, 0.75))
    _front_end_update(dash, orbit_source="reference")
    assert dash.orbit["source"] == "reference"
    # With the true generator the points turn rigidly: exp(0.75 J) x.
    np.testing.assert_allclose(dash.orbit_points_at(), x @ rotation(0.75).T, atol=1e-12)
    dash.sent.clear()
    dash.orbit_t = -1.5
    assert _sent_states(dash)[-1] == {"orbit_t": -1.5}
    with pytest.raises(Exception, match="orbit_source must be 'learned' or 'reference'"):
        dash.orbit_source = "random"


def test_choosing_a_data_set_reloads_and_unknown_names_are_refused(dash):
    dash.sent.clear()
    _front_end_update(dash, dataset="two_body")
    assert (dash.n, dash.dim) == (2, 16) and "Kepler" in dash.description
    assert dash.orbit["shape"] == [73, 48]
    buffers = [data["buffer_paths"] for data, _ in dash.sent if data.get("buffer_paths")]
    assert [["orbit_points"]] in buffers  # the new orbit travelled as a binary buffer
    _front_end_update(dash, dataset="three_body")
    assert dash.dataset == "two_body" and "unknown data set 'three_body'" in dash.message


def test_options_are_checked():
    with pytest.raises(ConfigError, match=r"unknown SymmetryDashboard option\(s\) \['step'\]"):
        SymmetryDashboard(step=3)
    d = SymmetryDashboard(config={"stepz": 3}, analysis=False)
    assert d.status == "error" and "stepz" in d.message
    with pytest.raises(Exception, match=r"publish_every must be in \[0.02, 10\] s"):
        d.publish_every = 0.0


def test_static_figure_shows_the_panels(dash):
    dash.orbit_t = 0.5
    fig = dash.figure()
    kinds = [t.type for t in fig.data]
    assert kinds.count("heatmap") == 2
    orbit = [t for t in fig.data if t.name and t.name.startswith("exp(")][0]
    np.testing.assert_allclose(orbit.x, dash.orbit_points_at()[:, 0])


def test_the_panel_component_shares_the_state_and_behaviour():
    from labkit.widgets import symmetry_app
    from labkit.widgets._symmetry_panel import symmetry_panel_class

    cls = symmetry_panel_class()
    p = cls(config=FAST, device="cpu", analysis=False)
    assert p.status == "idle" and p.orbit["shape"] == [73, 48]
    p.running = True
    assert p.wait(120) and p.status == "finished" and p.verdict["symmetric"]
    p.dataset = "nope"
    assert p.dataset == "so2_invariant" and "unknown data set" in p.message
    assert symmetry_app(config=FAST, analysis=False) is not None
    with pytest.raises(ConfigError, match="unknown SymmetryPanel option"):
        cls(colour="x")


def test_equivariance_curve_of_a_chosen_model_is_computed_in_the_background():
    def radius(x):
        return x.square().sum(-1, keepdim=True)

    def first(x):
        return x[:, :1]

    d = SymmetryDashboard(config=FAST, device="cpu", models={"radius": radius, "x0": first},
                          model="radius")
    assert d.models == ["regressor", "radius", "x0"]
    assert d.wait(120)
    c = d.curve
    assert c["model"] == "radius" and set(c["curves"]) == {"truth", "random direction"}
    assert max(c["curves"]["truth"]["max"]) < 1e-12  # |x|^2 is rotation-invariant
    assert c["curves"]["random direction"]["mean"][-1] > 0.1
    # LieGG on the same worker: gl(2) has 4 directions, one of them (so(2)) below the gap.
    s = d.spectrum
    assert len(s["values"]) == 4 and s["values"] == sorted(s["values"]) and s["gap"] == 1
    assert s["values"] == pytest.approx(d.liegg_result.singular_values.tolist())
    assert s["ratio"] == pytest.approx(s["values"][1] / s["values"][0])
    assert generator_scores(d.liegg_result.generators, so(2).basis)[0] > 0.95
    d.model = "x0"  # from Python; the front end sends the same update
    assert d.wait(120) and d.curve["model"] == "x0"
    assert d.curve["curves"]["truth"]["mean"][-1] > 0.1  # x0 is not invariant
    _front_end_update(d, model="regressor")  # LieGG's fitted network: nearly invariant
    assert d.wait(120) and d.curve["model"] == "regressor"
    reg = d.curve["curves"]
    assert max(reg["truth"]["mean"]) < 0.05 < 0.2 < reg["random direction"]["mean"][-1]
    d.start()
    assert d.wait(120) and d.status == "finished"
    assert "learned" in d.curve["curves"]  # after training, the learned generator too
