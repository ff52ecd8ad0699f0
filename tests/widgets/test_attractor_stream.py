"""The AttractorViewer's picture as a stream, without a browser: a parameter change continues
the trajectories from their present states, restart draws initial conditions again, a
newer change stops an older one between segments, only new float32 samples travel, the
stream keeps pace with the browser's acknowledgements, and the side panels never hold the
picture up."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from labkit.core import rk4
from labkit.dynamics import get_system
from labkit.widgets import AttractorViewer, attractor_view
from labkit.widgets import _attractor as attractor_module
from labkit.widgets._attractor import WINDOW
from labkit.widgets._attractor_stream import (
    FIRST_SEGMENT,
    Ensemble,
    Segment,
    parse_segment,
)
from labkit.widgets._worker import LatestJobWorker

SETTINGS = {"n_ic": 12, "periods": 2.0, "samples": 120}


def _watch(viewer):
    """Record what the viewer sends from now on (``viewer.sent``)."""
    sent: list[tuple[dict, list]] = []
    viewer.comm.send = lambda data=None, metadata=None, buffers=None: sent.append((data, buffers))
    viewer.sent = sent
    return viewer


def _segments(sent):
    out = []
    for data, buffers in list(sent):
        paths = data.get("buffer_paths", [])
        if ["segment"] in paths:
            raw = bytes(memoryview(buffers[paths.index(["segment"])]).cast("B"))
            out.append(parse_segment(raw))
    return out


def _front_end_update(widget, **state):
    widget._handle_msg({"content": {"data": {"method": "update", "state": state,
                                             "buffer_paths": []}}, "buffers": []})


@pytest.fixture
def viewer():
    v = AttractorViewer(**SETTINGS, panels=False)
    assert v.wait(timeout=60)
    return _watch(v)


def test_a_parameter_change_continues_from_the_present_states(viewer):
    """The first new sample is the RK4 flow, with the *new* parameters, of the last sample
    the browser was sent, one sample gap later; nothing restarts at t = 0."""
    shown = viewer.data
    last, t_last = shown.positions[:, -1].astype(np.float64), float(shown.t[-1])
    gap = float(shown.t[1] - shown.t[0])
    every = round(gap / viewer.dt)
    viewer.parameters = {**viewer.parameters, "rho": 15.0}
    header, payload = _segments(viewer.sent)[0]
    assert header["t0"] == pytest.approx(t_last + gap) and not header["reset"]
    lorenz = get_system("Lorenz")

    def step(**params):
        run = rk4(lorenz.vector_field(**params), torch.tensor(last), (t_last, t_last + gap),
                  viewer.dt, save_every=every)
        return run.y[:, -1].numpy()

    np.testing.assert_allclose(payload[0, :, :3], step(rho=15.0), rtol=1e-4, atol=1e-4)
    assert np.abs(payload[0, :, :3] - step(rho=28.0)).max() > 1e-2  # the new rho was used
    assert viewer.wait(timeout=60)
    data = viewer.data  # the ring: the state before the change, then the new stretch
    np.testing.assert_array_equal(data.positions[:, 0], shown.positions[:, -1])
    assert data.t[0] == t_last and data.parameters["rho"] == 15.0


def test_a_map_continues_from_its_present_states_too():
    v = AttractorViewer(system="Henon", n_ic=6, periods=5.0, samples=100, panels=False)
    assert v.wait(timeout=60)
    _watch(v)
    last = torch.tensor(v.data.positions[:, -1, :2], dtype=torch.float64)
    v.parameters = {"a": 1.2, "b": 0.3}
    _, payload = _segments(v.sent)[0]
    expected = get_system("Henon").iterate(last, 1, a=1.2).y[:, -1].numpy()
    np.testing.assert_allclose(payload[0, :, :2], expected, rtol=1e-5, atol=1e-6)


def test_restart_draws_the_initial_conditions_again(viewer):
    """restart() (and the browser's button, which adds one to ``restarts``) starts a fresh
    ring at t = 0 from the initial conditions a new viewer with these settings draws."""
    viewer.parameters = {**viewer.parameters, "rho": 15.0}
    assert viewer.wait(timeout=60)
    viewer.sent.clear()
    viewer.restart()
    assert viewer.restarts == 1 and viewer.version == 3
    header, payload = _segments(viewer.sent)[0]
    assert header["reset"] and header["start"] == 0 and header["t0"] == 0.0
    ref = attractor_view("Lorenz", parameters={"rho": 15.0}, **SETTINGS)
    np.testing.assert_allclose(payload[0, :, :3], ref.positions[:, 0], rtol=1e-6)
    assert viewer.wait(timeout=60)
    np.testing.assert_allclose(viewer.data.positions, ref.positions, rtol=1e-5, atol=1e-5)
    viewer.sent.clear()
    _front_end_update(viewer, restarts=2)  # the browser's restart button
    assert viewer.version == 4
    header, again = _segments(viewer.sent)[0]
    assert header["reset"] and header["t0"] == 0.0
    np.testing.assert_array_equal(again[0], payload[0])  # the same seed: the same draw


def test_length_and_colour_continue_into_a_fresh_ring(viewer):
    """``periods``, ``samples`` and ``color_by`` change what a sample is: the ring starts
    afresh, at the present states (not at t = 0)."""
    shown = viewer.data
    viewer.periods = 3.0
    header, payload = _segments(viewer.sent)[0]
    assert header["reset"] and header["start"] == 0 and header["t0"] == float(shown.t[-1])
    np.testing.assert_array_equal(payload[0, :, :3], shown.positions[:, -1])
    assert viewer.wait(timeout=60)
    assert viewer.shape == [12, attractor_view("Lorenz", **{**SETTINGS, "periods": 3.0}).t.size]


def test_when_every_trajectory_diverged_a_change_restarts():
    v = _watch(AttractorViewer(system="Henon", n_ic=8, periods=3.0, panels=False))
    v.parameters = {"a": 2.5, "b": 0.3}
    assert v.wait(timeout=60) and v.data.diverged.all()
    v.sent.clear()
    v.parameters = {"a": 1.4, "b": 0.3}  # nothing left to continue: new initial conditions
    header, _ = _segments(v.sent)[0]
    assert header["reset"] and header["t0"] == 0.0 and header["diverged"] == []
    assert v.wait(timeout=60)
    assert not v.data.diverged.any() and v.data.t[0] == 0.0 and "diverged" not in v.message


def test_a_superseded_version_stops_between_segments(monkeypatch):
    """A newer change stops the older version at its next segment: no segment of the old
    version follows the new one's first, the old never completes, and the new one goes on
    from exactly where the old one stopped."""
    real = Ensemble.advance

    def slow(self, count):
        time.sleep(0.05)  # each segment takes a while, as for a large ensemble
        return real(self, count)

    v = AttractorViewer(**SETTINGS, panels=False)
    assert v.wait(timeout=60)
    _watch(v)
    monkeypatch.setattr(Ensemble, "advance", slow)
    t = v.shape[1]
    v.parameters = {**v.parameters, "rho": 20.0}
    v.parameters = {**v.parameters, "rho": 30.0}
    assert v.wait(timeout=60)
    headers = [h for h, _ in _segments(v.sent)]
    versions = [h["version"] for h in headers]
    assert versions == sorted(versions) and set(versions) == {2, 3}
    old = [h for h in headers if h["version"] == 2]
    new = [h for h in headers if h["version"] == 3]
    assert sum(h["count"] for h in old) < t - 1 and not old[-1]["complete"]
    assert sum(h["count"] for h in new) == t - 1 and new[-1]["complete"]
    assert new[0]["start"] == old[-1]["start"] + old[-1]["count"] == new[0]["epoch_start"]


def test_the_worker_drops_pending_jobs_and_a_running_job_sees_it_is_stale():
    started, release = threading.Event(), threading.Event()
    steps: dict[str, int] = {}
    dropped: list[str] = []

    def run(generation, name):
        started.set()
        release.wait(10)
        steps[name] = 0
        while steps[name] < 1000 and not worker.stale(generation):
            steps[name] += 1
            time.sleep(0.001)

    worker = LatestJobWorker(run, "test-latest", on_drop=dropped.append)
    worker.submit("first")
    assert started.wait(10)
    worker.submit("second")  # pending: replaced by the third before it starts
    worker.submit("third")
    release.set()
    assert worker.wait(30) and worker.idle()
    assert dropped == ["second"] and "second" not in steps
    assert steps["first"] == 0 and steps["third"] == 1000  # first saw at once it was stale


def _browser_says(widget, **content):
    """A custom message from the browser (how anywidget's front end acknowledges)."""
    widget._handle_msg({"content": {"data": {"method": "custom", "content": content}},
                        "buffers": []})


def _settle_sent(viewer, quiet_s=0.5, timeout_s=20.0):
    """Headers of the segments sent so far, once none came for ``quiet_s``."""
    deadline = time.monotonic() + timeout_s
    count = -1
    while time.monotonic() < deadline:
        headers = [h for h, _ in _segments(viewer.sent)]
        if len(headers) == count:
            return headers
        count = len(headers)
        time.sleep(quiet_s)
    raise AssertionError("segments kept coming")


def test_the_stream_keeps_pace_with_the_browser():
    """Once a browser acknowledges segments, at most WINDOW are unacknowledged, and none
    goes beyond the last sample it wants (its animation's head plus a lead); a newer
    acknowledgement lets more go; wait() (a script) lets the rest go unpaced."""
    v = AttractorViewer(n_ic=12, periods=20.0, samples=2000, panels=False)
    assert v.wait(timeout=60)
    _watch(v)
    _browser_says(v, acked=[v._seq, v.ensemble.written - 1])  # has all it wants
    v.parameters = {**v.parameters, "rho": 20.0}
    [first] = _settle_sent(v)  # the first segment of a change always goes
    assert first["count"] == FIRST_SEGMENT
    _browser_says(v, acked=[first["seq"], 10**6])  # wants everything, then takes nothing
    headers = _settle_sent(v)
    assert len(headers) == 1 + WINDOW
    wanted = headers[-1]["start"] + headers[-1]["count"] + 100
    while headers[-1]["start"] + headers[-1]["count"] <= wanted:  # a browser playing along
        _browser_says(v, acked=[headers[-1]["seq"], wanted])
        headers = _settle_sent(v)
    assert headers[-1]["start"] + headers[-1]["count"] - 1 == wanted  # not one sample more
    assert not headers[-1]["complete"]
    _front_end_update(v, acked=[headers[-1]["seq"], -1])  # the same, as a state field (Panel)
    assert v._acked == headers[-1]["seq"] and v._wanted == -1
    assert v.wait(timeout=60)
    assert _segments(v.sent)[-1][0]["complete"]


def test_the_picture_never_waits_for_the_panels(monkeypatch):
    """The panels start once the picture's thread has nothing to compute (here: the whole
    first version is there), and while they compute a parameter change streams its whole
    version."""
    entered, release = threading.Event(), threading.Event()
    complete: list[bool] = []

    def blocked_spectrum(*args, **kwargs):
        complete.append(v.ensemble.complete)
        entered.set()
        release.wait(30)
        raise attractor_module.LabkitError("test: no spectrum")

    monkeypatch.setattr(attractor_module, "spectrum_view", blocked_spectrum)
    v = AttractorViewer(**SETTINGS, panels=True)
    try:
        assert entered.wait(30) and complete == [True]
        t0 = time.perf_counter()
        v.parameters = {**v.parameters, "rho": 20.0}
        assert v.version == 2 and time.perf_counter() - t0 < 5
        assert v._settle(30)  # the whole version, with the panels still busy
        assert not v._worker.idle() and v.data.parameters["rho"] == 20.0
    finally:
        release.set()
    assert v.wait(timeout=60)


def test_segments_round_trip_and_time_colours_span_the_version():
    ens = Ensemble("Lorenz", **SETTINGS)
    first = ens.advance(FIRST_SEGMENT)
    raw = first.to_bytes(7)
    header, payload = parse_segment(raw)
    assert header["seq"] == 7 and (4 + int.from_bytes(raw[:4], "little")) % 4 == 0
    assert payload.shape == (FIRST_SEGMENT + 1, 12, 4)  # the initial states, then 8 more
    np.testing.assert_array_equal(payload, first.payload)
    while not ens.complete:
        ens.advance(1000)
    data = ens.data()
    np.testing.assert_allclose(data.colors[0], np.linspace(0, 1, data.t.size), atol=1e-6)
    assert isinstance(ens.snapshot(), Segment) and ens.snapshot().header["count"] == data.t.size
