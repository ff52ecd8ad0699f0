"""AttractorViewer without a browser: the data it sends are right, and state travels both
ways (Python -> front end through comm messages; front end -> Python through the same
``update`` messages a browser sends). Continuation, restart, cancellation and pacing of
the picture's stream: tests/widgets/test_attractor_stream.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from labkit.core import rk4
from labkit.dynamics import get_system
from labkit.errors import ConfigError, DataError
from labkit.widgets import (
    AttractorViewer,
    attractor_figure,
    attractor_view,
    orbit_view,
    parameter_specs,
    series_view,
    spectrum_view,
)
from labkit.widgets._attractor_data import integration_step
from labkit.widgets._attractor_stream import FIRST_SEGMENT, parse_segment


@pytest.fixture(scope="module")
def lorenz_view():
    return attractor_view("Lorenz", n_ic=24, periods=3.0, samples=200, seed=3)


def test_view_buffers_have_the_declared_shapes_and_types(lorenz_view):
    d = lorenz_view
    n, t = d.colors.shape
    assert (n, t) == (24, len(d.t)) and d.positions.shape == (n, t, 3)
    assert d.positions.dtype == np.float32 and d.colors.dtype == np.float32
    assert d.valid.dtype == np.int32 and (d.valid == t).all() and d.n_diverged == 0
    assert 0 <= d.colors.min() and d.colors.max() <= 1
    assert (d.bounds[0] <= d.positions.min((0, 1))).all()
    assert (d.positions.max((0, 1)) <= d.bounds[1]).all()
    # On the Lorenz attractor (rho = 28): |x| < 25, 0 < z < 50.
    assert np.abs(d.positions[..., 0]).max() < 25 and 0 < d.positions[..., 2].min()
    assert d.positions[..., 2].max() < 50 and d.message == ""


def test_view_samples_are_the_flow_of_the_system(lorenz_view):
    """Each saved sample is the RK4 flow of the previous one (float32 rounding aside)."""
    d = lorenz_view
    lorenz = get_system("Lorenz")
    y0 = torch.tensor(d.positions[:, 0], dtype=torch.float64)
    gap = float(d.t[1] - d.t[0])
    ref = rk4(lorenz.vector_field(), y0, (0.0, gap), d.dt, save_every=round(gap / d.dt))
    np.testing.assert_allclose(ref.y[:, -1].numpy(), d.positions[:, 1], rtol=1e-4, atol=1e-4)


def test_view_is_reproducible_with_a_seed_and_changes_with_a_parameter(lorenz_view):
    again = attractor_view("Lorenz", n_ic=24, periods=3.0, samples=200, seed=3)
    np.testing.assert_array_equal(again.positions, lorenz_view.positions)
    other = attractor_view("Lorenz", parameters={"rho": 99.0}, n_ic=24, periods=3.0,
                           samples=200, seed=3)
    assert other.parameters["rho"] == 99.0
    assert other.bounds[1, 2] > 80  # z grows with rho


def test_speed_colours_follow_the_vector_field(lorenz_view):
    d = attractor_view("Lorenz", n_ic=8, periods=2.0, samples=100, color_by="speed")
    speed = get_system("Lorenz").rhs(0.0, torch.tensor(d.positions, dtype=torch.float64))
    speed = speed.norm(dim=-1).numpy()
    inside = (d.colors > 0.05) & (d.colors < 0.95)  # away from the clipped tails
    lo, hi = d.color_range
    np.testing.assert_allclose(d.colors[inside], (speed[inside] - lo) / (hi - lo), atol=1e-3)


def test_expansion_colours_are_the_top_eigenvalue_of_the_symmetric_jacobian():
    d = attractor_view("Lorenz", n_ic=4, periods=2.0, samples=50, color_by="expansion")
    y = torch.tensor(d.positions, dtype=torch.float64)
    jac = get_system("Lorenz").jacobian(0.0, y)
    rate = torch.linalg.eigvalsh((jac + jac.transpose(-1, -2)) / 2)[..., -1].numpy()
    inside = (d.colors > 0.05) & (d.colors < 0.95)
    lo, hi = d.color_range
    np.testing.assert_allclose(d.colors[inside], (rate[inside] - lo) / (hi - lo), atol=2e-3)


def test_diverging_parameters_are_flagged_and_named():
    d = attractor_view("Henon", parameters={"a": 2.5}, n_ic=16, periods=5.0)
    assert d.n_diverged == 16 and (d.valid < d.positions.shape[1]).all()
    assert np.isfinite(d.positions).all()  # held at the last finite sample, never NaN
    assert "16 of 16 trajectories diverged" in d.message
    assert "diverged with these parameters" in d.message  # even the reference orbit did


def test_maps_are_shown_as_points_padded_to_three_dimensions():
    d = attractor_view("Henon", n_ic=10, periods=3.0)
    assert d.kind == "map" and d.positions.shape == (10, 31, 3)
    assert (d.positions[..., 2] == 0).all() and d.var_names == ("x0", "x1", "0")
    fig = attractor_figure(d)
    assert fig.data[0].mode == "markers"


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"system": "Lorenzz"}, "closest names: Lorenz"),
    ({"n_ic": 0}, "n_ic must be an int in \\[1, 8192\\], got 0"),
    ({"samples": 1}, "samples must be an int in \\[2, 4000\\], got 1"),
    ({"periods": -1.0}, "periods must be a number in .*got -1.0"),
    ({"color_by": "mood"}, "color_by must be one of .*got 'mood'"),
    ({"parameters": {"rh": 1.0}}, "unknown parameter\\(s\\) \\['rh'\\] for Lorenz"),
])
def test_bad_input_names_the_value(kwargs, match):
    args = {"system": "Lorenz", "n_ic": 2, "periods": 1.0} | kwargs
    system = args.pop("system")
    with pytest.raises(ConfigError, match=match):
        attractor_view(system, **args)


def test_parameter_specs_bracket_the_defaults():
    specs = {s["name"]: s for s in parameter_specs("Lorenz")}
    assert specs["rho"] == {"name": "rho", "value": 28.0, "min": 0.0, "max": 56.0,
                            "step": pytest.approx(0.28)}
    neg = {s["name"]: s for s in parameter_specs("Chua")}["m0"]
    assert neg["min"] < neg["value"] < neg["max"] == 0.0


def test_integration_step_is_stable_and_no_finer_than_needed():
    lorenz = get_system("Lorenz")
    assert integration_step("lorenz") == pytest.approx(lorenz.period / 200)
    assert integration_step("Henon") == 1.0


def test_spectrum_panel_matches_the_literature_for_lorenz():
    s = spectrum_view("Lorenz", n_ics=4, periods=15.0)
    assert len(s.exponents) == 3 and s.message == ""
    # Sprott's 0.9056 and the exact sum -(sigma + 1 + beta) = -13.667.
    assert s.exponents[0] == pytest.approx(0.9056, abs=0.05 + 3 * s.stderr[0])
    assert sum(s.exponents) == pytest.approx(-13.667, rel=0.01)
    assert 2.0 < s.kaplan_yorke < 2.1


def test_spectrum_panel_says_why_for_maps_and_divergence():
    assert "flows" in spectrum_view("Henon").message
    s = spectrum_view("Lorenz", parameters={"beta": -1.0}, n_ics=2, periods=10.0)
    assert s.exponents == [] and "diverged" in s.message


def test_orbit_panel_marks_the_current_value_and_lists_diverged_values():
    od = orbit_view("Henon", "a", parameters={"a": 1.2}, n_values=16, periods=5.0)
    assert od.current == 1.2 and od.points.shape[1] == 2
    assert set(np.unique(od.points[:, 0])) <= {float(np.float32(v)) for v in od.values}
    # Henon's orbits escape for a beyond ~1.43 (b = 0.3).
    assert od.diverged_values and min(od.diverged_values) > 1.4
    assert "left out" in od.message
    with pytest.raises(ConfigError, match="no scalar parameter 'q'"):
        orbit_view("Henon", "q")


# ---- the widget -------------------------------------------------------------------------

@pytest.fixture
def viewer():
    v = AttractorViewer(n_ic=12, periods=2.0, samples=120, panels=False)
    assert v.wait(timeout=60)  # the first version has all its samples
    sent: list[tuple[dict, list]] = []
    v.comm.send = lambda data=None, metadata=None, buffers=None: sent.append((data, buffers))
    v.sent = sent
    return v


def _front_end_update(widget, **state):
    """What a browser sends when the user changes a control."""
    widget._handle_msg({"content": {"data": {"method": "update", "state": state,
                                             "buffer_paths": []}}, "buffers": []})


def _segments(sent):
    """Headers and payloads of the segments in the comm messages ``sent``."""
    out = []
    for data, buffers in sent:
        paths = data.get("buffer_paths", [])
        if ["segment"] in paths:
            raw = bytes(memoryview(buffers[paths.index(["segment"])]).cast("B"))
            out.append(parse_segment(raw))
    return out


def test_initial_state_matches_the_computed_view(viewer):
    """The first version is attractor_view's picture (same initial conditions, same
    sampling), and the whole ring the browser can ask for holds exactly it."""
    n, t = viewer.shape
    assert viewer.system == "Lorenz" and viewer.kind == "flow" and viewer.version == 1
    assert viewer.positions == b"" and viewer.colors == b""  # catalogue systems stream
    assert viewer.orbit_parameter == "rho"
    assert {s["name"] for s in viewer.param_specs} == {"beta", "rho", "sigma"}
    assert len(viewer.systems) > 150 and "BlinkingVortexMap" in viewer.systems
    ref = attractor_view("Lorenz", n_ic=12, periods=2.0, samples=120)
    assert ref.positions.shape == (n, t, 3) == viewer.data.positions.shape
    np.testing.assert_allclose(viewer.data.positions, ref.positions, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(viewer.data.t, ref.t)
    _front_end_update(viewer, resync=1)  # a reloaded page asks for the whole ring
    [(header, payload)] = _segments(viewer.sent)
    assert header["reset"] and header["snapshot"] and (header["start"], header["count"]) == (0, t)
    np.testing.assert_array_equal(payload[..., :3].transpose(1, 0, 2), viewer.data.positions)


def test_python_changes_reach_the_front_end_as_new_float32_samples_only(viewer):
    """A parameter change sends segments of new samples only, appended after the ring's
    newest sample, as float32; the first message also moves ``version``."""
    n, t = viewer.shape
    viewer.parameters = {**viewer.parameters, "rho": 15.0}
    assert viewer.version == 2
    assert viewer.wait(timeout=60)
    assert all(["positions"] not in data.get("buffer_paths", []) for data, _ in viewer.sent)
    segments = _segments(viewer.sent)
    first, _ = segments[0]
    assert not first["reset"] and first["start"] == first["epoch_start"] == t
    assert first["count"] == FIRST_SEGMENT and first["version"] == 2
    carrying = [data for data, _ in viewer.sent if ["segment"] in data["buffer_paths"]]
    assert carrying[0]["state"]["version"] == 2  # one message: the samples and the version
    starts = [h["start"] for h, _ in segments]
    assert starts == [t + sum(h["count"] for h, _ in segments[:i]) for i in range(len(segments))]
    assert sum(h["count"] for h, _ in segments) == t - 1 and segments[-1][0]["complete"]
    for header, payload in segments:
        assert payload.dtype == np.float32 and payload.shape == (header["count"], n, 4)
    new = np.concatenate([p for _, p in segments])[..., :3].transpose(1, 0, 2)
    np.testing.assert_array_equal(new, viewer.data.positions[:, 1:])  # the ring's newest
    viewer.sent.clear()
    viewer.color_by = "speed"  # a fresh ring: the present state, then new samples
    data = next(d for d, _ in viewer.sent if ["segment"] in d["buffer_paths"])
    assert data["state"]["version"] == 3 and data["state"]["color_label"] == "speed"
    header, _ = _segments(viewer.sent)[0]
    assert header["reset"] and header["start"] == 0


def test_front_end_changes_reach_python_and_reintegrate(viewer):
    _front_end_update(viewer, parameters={**viewer.parameters, "rho": 20.0})
    assert viewer.parameters["rho"] == 20.0 and viewer.version == 2
    assert viewer.data.parameters["rho"] == 20.0
    assert _segments(viewer.sent)[0][0]["version"] == 2
    _front_end_update(viewer, n_ic=5)
    assert viewer.shape[0] == 5 and viewer.version == 3
    _front_end_update(viewer, speed=3.0, tail=10, playing=False)
    assert viewer.version == 3  # animation settings do not re-integrate
    assert (viewer.speed, viewer.tail, viewer.playing) == (3.0, 10, False)


def test_choosing_a_system_resets_its_parameters_and_unknown_names_are_refused(viewer):
    _front_end_update(viewer, system="henon")
    assert viewer.system == "Henon" and viewer.kind == "map"
    assert viewer.parameters == {"a": 1.4, "b": 0.3} and viewer.orbit_parameter == "a"
    _front_end_update(viewer, system="Henonn")
    assert viewer.system == "Henon" and "closest names: Henon" in viewer.message


def test_a_diverging_parameter_is_reported_in_the_widget(viewer):
    viewer.system = "Henon"
    viewer.parameters = {"a": 2.5, "b": 0.3}
    assert viewer.wait(timeout=60)
    assert "diverged" in viewer.message and "restart" in viewer.message
    assert viewer.data.diverged.all() and (viewer.data.valid < viewer.shape[1]).all()
    assert np.isfinite(viewer.data.positions).all()  # held at the last finite sample
    header, _ = _segments(viewer.sent)[-1]
    assert header["diverged"] == list(range(12)) or "diverged" not in header


def test_panels_are_computed_in_the_background_and_newest_wins():
    v = AttractorViewer(system="Rossler", n_ic=4, periods=2.0, samples=50)
    v.parameters = {**v.parameters, "c": 4.0}  # supersedes the first request
    assert v.wait(timeout=300)
    assert len(v.spectrum["exponents"]) == 3 and v.spectrum["exponents"][0] > -0.1
    assert v.orbit["parameter"] == "c" and v.orbit["current"] == 4.0
    assert len(v.orbit_points) > 0 and len(v.orbit_points) % 8 == 0
    assert v.spectrum["kaplan_yorke"] is None or math.isfinite(v.spectrum["kaplan_yorke"])


def test_widget_options_are_checked():
    with pytest.raises(ConfigError, match="unknown AttractorViewer option\\(s\\) \\['colour'\\]"):
        AttractorViewer(colour="time")
    v = AttractorViewer(n_ic=2, periods=1.0, samples=10, panels=False)
    with pytest.raises(Exception, match="color_by must be one of"):
        v.color_by = "mood"
    with pytest.raises(Exception, match="n_ic must be in \\[1, 8192\\], got 0"):
        v.n_ic = 0


def test_static_figure_draws_what_the_widget_shows(viewer):
    fig = viewer.figure(max_lines=5)
    assert len(fig.data) == 5 and fig.data[0].mode == "lines"
    np.testing.assert_allclose(fig.data[1].x, viewer.data.positions[1, :, 0])
    assert "Lorenz" in fig.layout.title.text


def test_the_panel_component_shares_the_state_and_behaviour():
    from labkit.widgets._attractor_panel import attractor_app, attractor_panel_class

    cls = attractor_panel_class()
    p = cls(n_ic=6, periods=2.0, samples=60, panels=False)
    assert p.version == 1 and p.shape[0] == 6
    p.parameters = {**p.parameters, "rho": 10.0}
    assert p.version == 2 and p.data.parameters["rho"] == 10.0
    p.system = "Nope"
    assert p.system == "Lorenz" and "closest names" in p.message
    assert attractor_app(n_ic=2, periods=1.0, samples=10, panels=False) is not None
    with pytest.raises(ConfigError, match="unknown AttractorPanel option"):
        cls(colour="x")


# ---- given series (truth beside a model) ------------------------------------------------

def _pair(n_true=400, n_model=300, diverge_at=None):
    t = np.linspace(0, 20, n_true)
    truth = np.stack([np.sin(t), np.cos(t), 0.1 * t], -1)
    model = truth[:n_model] + 0.05
    if diverge_at is not None:
        model = model.copy()
        model[diverge_at:] = np.nan
    return truth, model


@pytest.fixture
def series_viewer():
    truth, model = _pair()
    codes = np.arange(len(model)) % 3
    v = AttractorViewer.from_series({"truth": truth, "model": model}, codes={"model": codes},
                                    readout="D_stsp 0.41 (floor 0.23) · D_H 0.06", chunks=4)
    sent: list[tuple[dict, list]] = []
    v.comm.send = lambda data=None, metadata=None, buffers=None: sent.append((data, buffers))
    v.sent = sent
    return v


def test_series_view_cuts_each_series_into_comets_in_its_own_colour():
    truth, model = _pair()
    d = series_view({"truth": truth, "model": model}, chunks=4)
    length = 300 // 4  # the shortest series sets the stretch length
    assert d.positions.shape == (400 // length + 300 // length, length, 3)
    assert d.series == ("truth", "model") and d.series_of.tolist() == [0] * 5 + [1] * 4
    np.testing.assert_allclose(d.positions[1], truth[length:2 * length], rtol=1e-6)
    np.testing.assert_allclose(d.positions[5], model[:length], rtol=1e-6)
    assert set(np.unique(d.colors[:5])) == {2.0} and set(np.unique(d.colors[5:])) == {3.0}
    assert (d.valid == length).all() and d.message == ""


def test_series_view_codes_time_and_hidden():
    truth, model = _pair()
    codes = np.arange(300) % 12
    d = series_view({"truth": truth, "model": model}, codes={"model": codes}, chunks=4,
                    color_by="codes")
    assert (d.colors[:5] == 2 + 10).all()  # no codes: the grey palette entry
    np.testing.assert_array_equal(d.colors[5:].ravel(), 2 + codes[:300] % 10)
    d = series_view({"truth": truth, "model": model}, chunks=4, color_by="time",
                    hidden=["truth"])
    assert d.series_of.tolist() == [1] * 4 and 0 <= d.colors.min() and d.colors.max() <= 1
    assert d.bounds[1, 2] == pytest.approx(2.0, rel=1e-3)  # hidden series keep the camera


def test_series_view_draws_a_diverged_series_up_to_the_divergence():
    truth, model = _pair(diverge_at=100)
    d = series_view({"truth": truth, "model": model}, chunks=4)
    assert d.valid[5:].tolist() == [75, 25, 0, 0] and np.isfinite(d.positions).all()
    assert "'model' diverged at sample 100 of 300" in d.message


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"series": {"truth": np.zeros((10, 3)), "model": np.zeros((10, 2))}},
     r"'truth' has 3 dimensions but 'model' has 2: shapes \(10, 3\) and \(10, 2\)"),
    ({"codes": {"model": np.zeros(9, int)}},
     r"codes of 'model' must have shape \[time\] = \(10,\) like the series, got \(9,\)"),
    ({"codes": {"model": np.zeros(10)}}, "codes of 'model' must be integers"),
    ({"codes": {"other": np.zeros(10, int)}}, "codes given for 'other'"),
    ({"series": {"truth": np.zeros(10)}}, r"'truth' must have shape \[time, dim\].*\(10,\)"),
    ({"series": {}}, "non-empty mapping"),
])
def test_series_bad_input_raises_data_error_naming_the_shapes(kwargs, match):
    args = {"series": {"truth": np.zeros((10, 3)), "model": np.ones((10, 3))}} | kwargs
    with pytest.raises(DataError, match=match):
        series_view(**args)
    with pytest.raises(DataError, match=match):
        AttractorViewer.from_series(**args)


def test_series_mode_state_is_synced(series_viewer):
    v = series_viewer
    assert v.mode == "series" and v.series_names == ["truth", "model"]
    assert v.readout.startswith("D_stsp 0.41") and v.color_by == "series"
    n, t = v.shape
    assert len(v.positions) == n * t * 12 and len(v.colors) == n * t * 4
    assert v.legend == [{"label": "truth", "colour": 0}, {"label": "model", "colour": 1}]
    assert v.spectrum == {} and v.orbit == {}  # no catalogue panels in series mode
    v.readout = "D_stsp 0.30"
    data, _ = v.sent[-1]
    assert data["state"] == {"readout": "D_stsp 0.30"}
    before = len(v.sent)
    v.show_series({"truth": _pair()[0]}, readout="truth only")
    state = {k: val for data, _ in v.sent[before:] for k, val in data["state"].items()}
    paths = [p for data, _ in v.sent[before:] for p in data["buffer_paths"]]
    assert state["series_names"] == ["truth"] and state["readout"] == "truth only"
    assert ["positions"] in paths and v.sent[-1][0]["state"]["version"] == v.version


def test_series_mode_front_end_changes_reach_python(series_viewer):
    v = series_viewer
    version = v.version
    _front_end_update(v, color_by="codes")
    assert v.color_by == "codes" and v.version == version + 1
    assert v.data.color_by == "codes" and {"label": "no code: truth", "colour": 10} in v.legend
    _front_end_update(v, hidden=["truth"])
    assert v.hidden == ["truth"] and set(v.data.series_of.tolist()) == {1}
    # catalogue inputs do not re-integrate in series mode; show_system() goes back
    _front_end_update(v, parameters={"rho": 20.0, "sigma": 10.0, "beta": 8 / 3}, n_ic=4)
    assert v.mode == "series" and v.data.system == "series"
    v.panels = False
    v.show_system()
    assert v.mode == "system" and v.color_by == "time" and v.shape[0] == 4
    assert v.data.parameters["rho"] == 20.0 and v.readout == "" and v.legend == []


def test_codes_without_codes_is_a_message_not_a_crash(series_viewer):
    v = series_viewer
    v.show_series({"a": np.zeros((10, 2)) + np.arange(10)[:, None]}, color_by="series")
    _front_end_update(v, color_by="codes")
    assert "color_by='codes' needs codes" in v.message


def test_the_panel_component_shows_series_too(series_viewer):
    """Truth beside a model in a Panel app: the same controller, the same buffers."""
    from labkit.widgets._attractor_panel import attractor_panel_class

    truth, model = _pair()
    p = attractor_panel_class()(n_ic=2, periods=1.0, samples=10, panels=False)
    p.show_series({"truth": truth, "model": model}, codes={"model": np.arange(len(model)) % 3},
                  readout="D_stsp 0.41 (floor 0.23) · D_H 0.06", chunks=4)
    assert p.mode == "series" and p.series_names == ["truth", "model"]
    assert p.readout.startswith("D_stsp 0.41")
    np.testing.assert_array_equal(p.data.positions, series_viewer.data.positions)
    p.color_by = "codes"  # a front-end change, through the Panel parameter
    assert p.data.color_by == "codes" and p.mode == "series"


def test_series_static_figure_puts_truth_beside_model(series_viewer):
    fig = series_viewer.figure()
    assert len(fig.data) >= 2
