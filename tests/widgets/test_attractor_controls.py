"""The AttractorViewer's controls without a browser, both ways (Python -> the messages a
browser gets; the browser's ``update`` and custom messages -> Python): a user's own
system, the drawn variables, the colour bar's title and the status line, step and reset,
seeding on the Poincare section, and zooming the orbit diagram. In a real browser:
tests/browser/test_attractor.py."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import traitlets

from labkit.core import rk4
from labkit.dynamics import custom_system, get_system, lorenz
from labkit.errors import ConfigError
from labkit.widgets import AttractorViewer, attractor_view, orbit_view
from labkit.widgets import _attractor as attractor_module
from labkit.widgets._attractor import SEED_TRAJECTORIES, STEP_SAMPLES, status_text
from labkit.widgets._attractor_data import check_span, check_variables, color_quantity
from labkit.widgets._attractor_stream import Ensemble, parse_segment, section_seed

SETTINGS = {"n_ic": 12, "periods": 2.0, "samples": 120}


def _watch(viewer):
    sent: list[tuple[dict, list]] = []
    viewer.comm.send = lambda data=None, metadata=None, buffers=None: sent.append((data, buffers))
    viewer.sent = sent
    return viewer


def _front_end_update(widget, **state):
    """What a browser sends when the user changes a control."""
    widget._handle_msg({"content": {"data": {"method": "update", "state": state,
                                             "buffer_paths": []}}, "buffers": []})


def _browser_says(widget, **content):
    """A custom message from the browser (acknowledgements, clicks on the section)."""
    widget._handle_msg({"content": {"data": {"method": "custom", "content": content}},
                        "buffers": []})


def _segments(sent):
    out = []
    for data, buffers in list(sent):
        paths = data.get("buffer_paths", [])
        if ["segment"] in paths:
            raw = bytes(memoryview(buffers[paths.index(["segment"])]).cast("B"))
            out.append(parse_segment(raw))
    return out


def _state(sent):
    """Every state field sent, the last value of each."""
    return {k: v for data, _ in sent for k, v in data.get("state", {}).items()}


@pytest.fixture
def viewer():
    v = AttractorViewer(**SETTINGS, panels=False)
    assert v.wait(timeout=60)
    return _watch(v)


def lorenz_field(t, y, sigma=10.0, rho=28.0, beta=8 / 3):
    """Lorenz-63 as a user would write it (the catalogue's, written out)."""
    return lorenz(t, y, sigma=sigma, rho=rho, beta=beta)


# ---- a user's own system -------------------------------------------------------------

def test_a_users_callable_is_drawn_with_its_parameters_and_step():
    """``AttractorViewer(system=f, dim=..., dt=..., period=..., parameters=...)``: the
    samples are the RK4 flow of ``f`` with the user's step; its parameters get sliders,
    and a parameter change continues with the new value."""
    v = AttractorViewer(system=lorenz_field, dim=3, y0=[1.0, 1.0, 20.0], dt=0.005,
                        period=0.75, parameters={"sigma": 10.0, "rho": 28.0, "beta": 8 / 3},
                        **SETTINGS, panels=False)
    assert v.wait(timeout=60)
    assert v.system == "lorenz_field" and v.systems[0] == "lorenz_field"
    assert "Lorenz" in v.systems and v.dim == 3 and v.state_names == ["x0", "x1", "x2"]
    assert {s["name"] for s in v.param_specs} == {"sigma", "rho", "beta"}
    data = v.data
    assert data.system == "lorenz_field" and v.dt == 0.005
    gap = float(data.t[1] - data.t[0])
    y0 = torch.tensor(data.positions[:, 0], dtype=torch.float64)
    ref = rk4(get_system("Lorenz").vector_field(), y0, (0.0, gap), 0.005,
              save_every=round(gap / 0.005))
    np.testing.assert_allclose(data.positions[:, 1], ref.y[:, -1].numpy(), rtol=1e-4, atol=1e-4)
    _front_end_update(v, parameters={**v.parameters, "rho": 15.0})
    assert v.version == 2 and v.data.parameters["rho"] == 15.0
    v.color_by = "expansion"  # the Jacobian by autograd
    assert v.wait(timeout=60) and v.data.color_by == "expansion" and v.message == ""


def test_a_system_object_is_taken_and_a_bad_system_is_a_config_error_naming_it(viewer):
    own = custom_system(lorenz_field, y0=[1.0, 1.0, 20.0], name="mine")
    v = AttractorViewer(system=own, **SETTINGS, panels=False)
    assert v.system == "mine" and v.systems[0] == "mine" and v.version == 1
    assert AttractorViewer(system=get_system("Rossler"), **SETTINGS, panels=False).systems[0] \
        != "Rossler"  # the catalogue's own object: not listed twice
    viewer.system = own  # set from Python later: registered, then drawn
    assert viewer.system == "mine" and viewer.version == 2 and "mine" in viewer.systems
    cases = [
        (lambda: AttractorViewer(system=lorenz_field, **SETTINGS),
         "the callable system .*lorenz_field.* needs its dimension or initial state"),
        (lambda: AttractorViewer(system=lambda t, y: y[..., :2], dim=3, **SETTINGS),
         "the vector field 'custom' must return a tensor of the state's shape"),
        (lambda: AttractorViewer(system=3.5), "system must be a catalogue name, a "
                                              "labkit.dynamics System or a callable"),
        (lambda: AttractorViewer(system="Lorenz", dim=3), "\\['dim'\\] describe a callable"),
        (lambda: setattr(viewer, "system", lorenz_field), "needs its dimension"),
    ]
    for make, match in cases:
        with pytest.raises(ConfigError, match=match) as err:
            make()
        assert not isinstance(err.value, traitlets.TraitError)
    assert viewer.system == "mine"


def test_the_panel_component_takes_a_users_callable():
    from labkit.widgets._attractor_panel import attractor_panel_class

    p = attractor_panel_class()(system=lorenz_field, dim=3, dt=0.005, **SETTINGS, panels=False)
    assert p.system == "lorenz_field" and p.version == 1 and p.systems[0] == "lorenz_field"
    assert p.data.dt == 0.005
    with pytest.raises(ConfigError, match="needs its dimension"):
        attractor_panel_class()(system=lorenz_field)


# ---- the drawn variables ----------------------------------------------------------------

def test_the_drawn_variables_are_the_chosen_columns_of_the_state():
    default = attractor_view("Lorenz96", n_ic=6, periods=1.0, samples=40)
    chosen = attractor_view("Lorenz96", n_ic=6, periods=1.0, samples=40, variables=[3, 0, 2])
    np.testing.assert_array_equal(chosen.positions[..., 1], default.positions[..., 0])
    np.testing.assert_array_equal(chosen.positions[..., 2], default.positions[..., 2])
    assert chosen.var_names == ("x3", "x0", "x2")
    ens = Ensemble("Lorenz96", n_ic=6, periods=1.0, samples=40, variables=[3, 0, 2])
    while not ens.complete:
        ens.advance(100)
    np.testing.assert_allclose(ens.data().positions, chosen.positions, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(ens.full[:, :, 3].T, ens.data().positions[..., 0])


def test_variables_travel_both_ways_and_are_checked():
    v = AttractorViewer(system="Lorenz96", **SETTINGS, panels=False)
    assert v.wait(timeout=60)
    _watch(v)
    assert v.variables == [0, 1, 2] and v.dim == 4 and v.state_names[-1] == "x3"
    _front_end_update(v, variables=[3, 1, 0])
    assert v.variables == [3, 1, 0] and v.version == 2 and v.var_names == ["x3", "x1", "x0"]
    header, payload = _segments(v.sent)[0]
    assert header["reset"] and header["t0"] > 0  # a fresh ring, from the present states
    np.testing.assert_allclose(payload[0, :, 0], v.ensemble.full[0, :, 3])
    for bad in ([0, 0, 1], [0, 1, 4], [0, 1], ["x0", 1, 2]):
        with pytest.raises(ConfigError, match="variables must be three distinct variable "
                                              "indices in \\[0, 4\\)"):
            v.variables = bad
    assert v.variables == [3, 1, 0]
    v.system = "Henon"  # a 2-D map: the third axis has no variable
    assert v.variables == [0, 1, -1] and v.var_names == ["x0", "x1", "0"]
    assert check_variables([1, 0, -1], 2) == [1, 0, -1]
    with pytest.raises(ConfigError):
        check_variables([0, -1, -1], 2)


# ---- colour bar and status -----------------------------------------------------------------

def test_the_colour_bar_is_titled_and_the_status_says_what_its_numbers_are(viewer):
    assert viewer.color_quantity == "time since the change"
    every = round(float(viewer.data.t[1] - viewer.data.t[0]) / viewer.dt)
    steps = (viewer.shape[1] - 1) * every
    assert re.fullmatch(rf"integrated 12 × {steps} RK4 steps in [\d.e-]+ s of compute; "
                        r"first samples sent [\d.e-]+ s after the change", viewer.status)
    viewer.color_by = "speed"
    state = _state(viewer.sent)
    assert state["color_quantity"] == "speed |f(y)|" and state["color_label"] == "speed"
    assert viewer.wait(timeout=60)
    lo, hi = viewer.color_range
    assert 0 < lo < hi  # speeds, in their units (the ring's 2nd to 98th percentile)
    bar = viewer.figure(max_lines=3).data[0].line  # the static twin has the same colour bar
    assert bar.showscale and bar.colorbar.title.text == "speed |f(y)|"
    assert bar.colorbar.ticktext[0] == f"{lo:.4g}" and bar.colorbar.ticktext[-1] == f"{hi:.4g}"
    assert color_quantity("map", "speed") == "distance per iteration |y(n+1) - y(n)|"
    assert status_text("map", 4, 30, 0.5, 0.01).startswith("iterated 4 × 30 iterations in 0.5 s")


# ---- step and reset ----------------------------------------------------------------------

def test_step_pauses_and_continues_by_one_sample_and_reset_goes_back_to_t0(viewer):
    shown = viewer.data
    gap, t_last = float(shown.t[1] - shown.t[0]), float(shown.t[-1])
    viewer.step()
    assert viewer.playing is False and viewer.steps == 1 and viewer.version == 2
    [(header, payload)] = _segments(viewer.sent)
    assert not header["reset"] and header["count"] == STEP_SAMPLES and header["complete"]
    assert header["t0"] == pytest.approx(t_last + gap)
    lorenz63 = get_system("Lorenz")
    step = rk4(lorenz63.vector_field(), torch.tensor(shown.positions[:, -1], dtype=torch.float64),
               (t_last, t_last + gap), viewer.dt, save_every=round(gap / viewer.dt))
    np.testing.assert_allclose(payload[0, :, :3], step.y[:, -1].numpy(), rtol=1e-4, atol=1e-4)
    _front_end_update(viewer, steps=2)  # the browser's step button
    assert viewer.version == 3 and viewer.data.t[-1] == pytest.approx(t_last + 2 * gap)
    viewer.sent.clear()
    _front_end_update(viewer, resets=1)  # the browser's reset button
    assert viewer.version == 4
    header, payload = _segments(viewer.sent)[0]
    assert header["reset"] and header["t0"] == 0.0
    first = attractor_view("Lorenz", **SETTINGS)  # the initial conditions, as first drawn
    np.testing.assert_allclose(payload[0, :, :3], first.positions[:, 0], rtol=1e-6)
    viewer.reset()
    assert viewer.resets == 2 and viewer.wait(timeout=60) and viewer.data.t[0] == 0.0
    with pytest.raises(ConfigError, match="n must be an int >= 1, got 0"):
        viewer.step(0)


# ---- the Poincare section and seeding ----------------------------------------------------------

def test_section_crossings_lie_on_the_plane_going_upwards():
    ens = Ensemble("Lorenz", n_ic=16, periods=6.0, samples=600)
    while not ens.complete:
        ens.advance(1000)
    sec = ens.section(2, 27.0)
    assert sec.axes == (0, 1) and sec.value == 27.0 and len(sec.states) > 20
    np.testing.assert_allclose(sec.states[:, 2], 27.0, atol=1e-4)
    # Upward: dz/dt > 0 at every crossing; on the attractor (|x|, |y| < 25).
    dz = get_system("Lorenz").rhs(0.0, torch.tensor(sec.states))[:, 2]
    assert (dz > 0).all() and np.abs(sec.states[:, :2]).max() < 25
    assert (sec.groups == 0).all() and sec.points().shape == (len(sec.states), 3)
    median = ens.section(2)  # no value: the median of z over the held samples
    assert sec.span[0] < median.value < sec.span[1]
    assert "no trajectory crosses x2 = 1000 upwards" in ens.section(2, 1000.0).message
    henon = Ensemble("Henon", n_ic=4, periods=3.0)
    henon.advance(1000)
    assert henon.section(0).kind == "map" and len(henon.section(0).states) == 4 * 31


def test_a_click_on_the_section_seeds_trajectories_there(viewer):
    viewer.panels = True  # the section is a side panel
    assert viewer.wait(timeout=300)
    view = viewer.section_view
    assert view["kind"] == "flow" and view["names"] == ["x0", "x1"] and view["count"] > 0
    assert len(viewer.section_points) == 12 * view["count"]
    viewer.sent.clear()
    _browser_says(viewer, seed_at=[1.5, -2.0, 1])  # the browser's click, a custom message
    assert viewer.seeded == SEED_TRAJECTORIES and viewer.shape[0] == 12 + SEED_TRAJECTORIES
    y0 = viewer.ensemble.y0[12:].numpy()
    np.testing.assert_allclose(y0[0], [1.5, -2.0, viewer._section.value])
    assert np.abs(y0 - y0[0]).max() <= 1e-2 * np.abs(y0[0]).max()
    header, payload = _segments(viewer.sent)[0]
    assert header["reset"] and header["n_ic"] == 12 + SEED_TRAJECTORIES
    np.testing.assert_allclose(payload[0, 12:, :3], y0, rtol=1e-6)
    viewer.seed_section(0.5, 0.5)  # a second click: a second group
    assert viewer.wait(timeout=300)
    assert set(viewer.ensemble.group[12:].tolist()) == {1, 2}
    _front_end_update(viewer, section={"variable": 0, "value": 0.0})
    assert viewer.wait(timeout=60)  # the section is computed on a thread of its own
    assert viewer.section_view["axes"] == [1, 2] and viewer.section_view["value"] == 0.0
    viewer.reset()  # seeded trajectories go back to their seeds
    np.testing.assert_allclose(viewer.data.positions[12:, 0], viewer.ensemble.y0[12:].numpy(),
                               rtol=1e-6)
    viewer.restart()  # new initial conditions drop them
    assert viewer.seeded == 0 and viewer.shape[0] == 12
    with pytest.raises(ConfigError, match="section must be \\{'variable': k, 'value': c\\}"):
        viewer.section = {"variable": 5}
    with pytest.raises(ConfigError, match="seed states must be finite, of shape \\[k, 3\\]"):
        viewer.add_trajectories([[0.0, np.nan, 1.0]])
    with pytest.raises(ConfigError, match="u = nan"):
        viewer.seed_section(float("nan"), 0.0)


def test_section_seed_takes_the_unshown_variables_from_the_nearest_crossing():
    ens = Ensemble("Lorenz96", n_ic=8, periods=4.0, samples=200)
    while not ens.complete:
        ens.advance(1000)
    sec = ens.section(2)
    assert sec.axes == (0, 1)
    near = sec.states[3]
    state = section_seed(sec, float(near[0]) + 1e-6, float(near[1]), np.zeros(4))
    assert state[2] == sec.value and state[3] == pytest.approx(near[3])


# ---- the orbit diagram's zoom --------------------------------------------------------------

def test_orbit_zoom_recomputes_over_the_range_at_full_resolution():
    full = orbit_view("Henon", "a", n_values=16, periods=5.0)
    zoom = orbit_view("Henon", "a", n_values=16, periods=5.0, span=(1.0, 1.2))
    assert full.full == zoom.full == (0.0, 2.8) and zoom.span == (1.0, 1.2)
    np.testing.assert_allclose(zoom.values, np.linspace(1.0, 1.2, 16))
    assert 1.0 - 1e-6 <= zoom.points[:, 0].min() and zoom.points[:, 0].max() <= 1.2 + 1e-6
    assert len(np.unique(zoom.points[:, 0])) == 16  # every value drawn: none diverge there
    for bad in ([1.2, 1.0], [0.0, float("inf")], [1.0], "1, 2"):
        with pytest.raises(ConfigError, match="orbit_range must be \\[\\] .* got"):
            check_span(bad)


def test_orbit_range_travels_both_ways_and_recomputes_only_the_orbit(monkeypatch):
    calls: list[str] = []
    real = attractor_module.spectrum_view

    def counted(*args, **kwargs):
        calls.append("spectrum")
        return real(*args, **kwargs)

    monkeypatch.setattr(attractor_module, "spectrum_view", counted)
    v = AttractorViewer(system="Henon", **SETTINGS)
    assert v.wait(timeout=300) and calls == ["spectrum"]
    assert v.orbit["range"] == [0.0, 2.8] and not v.orbit["zoomed"]
    _front_end_update(v, orbit_range=[1.0, 1.2])  # a drag over the chart
    assert v.wait(timeout=300)
    assert v.orbit["range"] == [1.0, 1.2] and v.orbit["zoomed"] and calls == ["spectrum"]
    assert v.orbit["variable_name"] == "x0" and v.orbit["kind"] == "map"
    v.orbit_parameter = "b"  # another parameter: its whole range
    assert v.orbit_range == [] and v.wait(timeout=300) and v.orbit["parameter"] == "b"
    assert not v.orbit["zoomed"] and calls == ["spectrum"]
    with pytest.raises(ConfigError, match="orbit_range must be"):
        v.orbit_range = [2.0, 1.0]


def test_the_panel_component_reverts_a_bad_choice_with_a_message():
    from labkit.widgets._attractor_panel import attractor_panel_class

    p = attractor_panel_class()(**SETTINGS, panels=False)
    p.variables = [0, 0, 1]
    assert p.variables == [0, 1, 2] and "variables must be three distinct" in p.message
    p.orbit_range = [3.0, 1.0]
    assert p.orbit_range == [] and "orbit_range must be" in p.message
    p.steps = 1
    assert p.version == 2 and p.playing is True  # a step from the field (the button pauses)
