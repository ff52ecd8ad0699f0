"""AttractorViewer: thousands of trajectories of any catalogue system, live in the browser.

The state is declared once (:data:`INPUTS`, :data:`OUTPUTS`); :class:`AttractorController`
turns input changes into outputs by calling the pure code of
:mod:`labkit.widgets._attractor_data` and :mod:`labkit.widgets._attractor_stream`;
:class:`AttractorViewer` is the anywidget view (ES module ``widgets/common.js`` and
``widgets/attractor*.js``, see :func:`~labkit.widgets._assets.widget_module`) and
:func:`attractor_app` the same module in a Panel app.

The picture is a stream. A parameter change continues every trajectory from its present
state with the new parameters (the picture bends, as in DynamicalSystems.jl's interactive
apps) instead of integrating again from ``t = 0``; a change of ``periods``, ``samples`` or
``color_by`` continues too, into a fresh ring. Only a change of system, ``n_ic``, ``seed``
or ``device``, or :meth:`AttractorController.restart` (the browser's restart button),
draws initial conditions again. Each change starts a *version*: a background thread
integrates it in segments, short first, and sends each segment's new float32 samples only
(the ``segment`` output; the browser appends them to its ring of samples). A newer change
stops the older version between two segments. The stream paces itself by the browser's
acknowledgements (``acked``): at most :data:`WINDOW` segments in flight, and no further
ahead than the animation will draw soon (its head plus a lead), so the stream runs at the
speed of the picture and a change never queues behind a backlog of messages; with no
browser (scripts, tests) it runs unpaced. The Lyapunov spectrum and orbit diagram panels
run on a second thread that waits while the picture is being computed.

The viewer can also show *given* trajectories instead of a catalogue system
(:meth:`AttractorViewer.from_series`, :meth:`AttractorController.show_series`): a true
series beside a model's free run, overlaid in their own colours or coloured by a
per-sample code (an AL-RNN's symbolic code), with a metric ``readout`` line. In that
"series" mode the catalogue controls are hidden, the whole view travels at once in the
``positions``/``colors``/``valid`` buffers, and changes of the catalogue inputs are kept
for :meth:`AttractorController.show_system`, which returns to the catalogue.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import anywidget
import numpy as np
import traitlets

from labkit.errors import ConfigError, LabkitError
from labkit.widgets._assets import widget_module, widget_style
from labkit.widgets._attractor_data import (
    COLOR_MODES,
    MAX_IC,
    NO_CODE,
    PALETTE_SIZE,
    SERIES_COLOR_MODES,
    AttractorData,
    default_orbit_parameter,
    orbit_view,
    parameter_specs,
    spectrum_view,
    viewer_systems,
)
from labkit.widgets._attractor_stream import Ensemble, Segment, segment_lengths
from labkit.widgets._series_view import series_view
from labkit.widgets._toolkits import AnyWidgetState, finite_or_none, traitlet_fields
from labkit.widgets._worker import LatestJobWorker

__all__ = ["INPUTS", "OUTPUTS", "PROTOCOL", "AttractorController", "AttractorViewer"]

#: Inputs (set by the browser or by Python) and their defaults. ``parameters`` continues
#: the trajectories from their present states; ``periods``, ``samples`` and ``color_by``
#: continue them into a fresh ring; ``system``, ``n_ic``, ``seed``, ``device`` and
#: ``restarts`` (a counter: the restart button adds one) draw initial conditions again;
#: ``speed``, ``tail`` and ``playing`` only change the animation; ``orbit_parameter``
#: recomputes the orbit diagram. ``hidden`` (names of given series not drawn) and
#: ``color_by`` repack given series.
INPUTS: dict[str, Any] = {
    "system": "Lorenz", "parameters": {}, "n_ic": 256, "periods": 10.0, "samples": 800,
    "color_by": "time", "seed": 0, "device": "auto",
    "speed": 1.0, "tail": 60, "playing": True,
    "orbit_parameter": "", "panels": True, "hidden": [], "restarts": 0,
}
#: Set by the browser only (as custom messages where the toolkit has them, else as these
#: fields): ``resync`` (a counter) asks for the whole ring, for a view that missed segments
#: (a reloaded page); ``acked`` is ``[seq, wanted]``: the newest segment the browser has
#: taken, and the ring index of the last sample its views want (the animation's head plus
#: a lead; -1 while no view wants any).
PROTOCOL: dict[str, Any] = {"resync": 0, "acked": [0, -1]}
#: Inputs that draw initial conditions again, continue into the same ring, continue into a
#: fresh ring, and that the side panels depend on.
RESTART = ("system", "n_ic", "seed", "device", "restarts")
RETUNE = ("parameters",)
RESAMPLE = ("periods", "samples", "color_by")
PANEL_INPUTS = ("system", "parameters", "device")
#: Outputs (set by Python only). ``segment`` carries the newest samples of a catalogue
#: system (see :class:`~labkit.widgets._attractor_stream.Segment`); ``positions``,
#: ``colors`` and ``valid`` a whole view of given series; ``shape`` is ``[n_ic, samples
#: per trajectory]`` either way; ``version`` counts the pictures (one per change); ``uid``
#: names this widget's ring in the browser; ``max_ic`` is :data:`MAX_IC`, the most
#: trajectories, where the browser's slider ends (the ``n_ic`` checks use the same constant).
OUTPUTS: dict[str, Any] = {
    "systems": [], "param_specs": [], "kind": "flow", "segment": b"", "uid": "", "max_ic": MAX_IC,
    "positions": b"", "colors": b"", "valid": b"", "shape": [0, 0], "bounds": [0.0] * 6,
    "var_names": ["x0", "x1", "x2"], "t_end": 0.0, "dt": 0.0, "color_range": [0.0, 1.0],
    "color_label": "", "seconds": 0.0, "message": "", "busy": "", "version": 0,
    "spectrum": {}, "orbit": {}, "orbit_points": b"",
    # given series: "system" (a catalogue system) or "series"; their names; the legend
    # ({"label", "colour": palette index}); a line of metrics set by Python
    "mode": "system", "series_names": [], "legend": [], "readout": "",
}
#: All colour modes the ``color_by`` input accepts (catalogue and given series).
ALL_COLOR_MODES = tuple(dict.fromkeys(COLOR_MODES + SERIES_COLOR_MODES))
#: Keyword arguments of :meth:`AttractorController.show_series` the constructor takes.
SERIES_OPTIONS = ("codes", "readout", "chunks", "dt")
#: Most codes listed one by one in the legend.
LEGEND_CODES = 16
#: Segments sent but not yet acknowledged by the browser before the stream waits: two
#: keep the browser busy while the next is integrated, and bound what a newer change
#: queues behind.
WINDOW = 2
#: Seconds the stream waits for an acknowledgement before it decides no browser is taking
#: segments (a closed tab) and runs unpaced until the next one. Generous: a browser that
#: draws in software can take a second per segment, and flooding it would queue the next
#: change's first segment behind the whole backlog.
ACK_TIMEOUT = 10.0
#: Most seconds a change waits for its first segment before returning (a safety net: the
#: first segment normally takes milliseconds).
FIRST_PICTURE_TIMEOUT = 60.0
#: Seconds between the panels thread's checks whether the picture's thread is idle.
PANEL_POLL = 0.05


def new_uid() -> str:
    """A name for one widget's ring of samples in the browser (unique per page)."""
    return secrets.token_hex(8)


@dataclasses.dataclass
class _Change:
    """One change for the stream thread: the settings it must show, and an event set once
    its first segment is sent (or it was superseded before it started)."""

    settings: dict[str, Any]
    shown: threading.Event = dataclasses.field(default_factory=threading.Event)


class AttractorController:
    """The viewer's behaviour, independent of the widget toolkit.

    Subclasses provide ``_get(name)`` and ``_set(values)`` (set several state fields at
    once; ``version`` last), and call :meth:`_start` once and :meth:`_changed` for each
    changed input.
    """

    _get: Callable[[str], Any]
    _set: Callable[[dict[str, Any]], None]

    def _start(self, series: Mapping[str, Any] | None = None, **series_options: Any) -> None:
        self.ensemble: Ensemble | None = None
        self._built: dict[str, Any] | None = None
        self._series_data: AttractorData | None = None
        self._quiet = False
        # Three threads publish (the kernel's, the stream's, the panels'): one at a time,
        # so ipywidgets' hold_sync batches never interleave. The ensemble has one writer
        # at a time too (the stream; the kernel's thread for a snapshot).
        self._emit_lock = threading.RLock()
        self._ring_lock = threading.Lock()
        self._acks = threading.Condition()
        self._seq = self._acked = 0
        self._ring_seq = 0  # the first segment of the browser's current ring
        self._wanted: int | None = None  # the browser's last wanted ring index, if known
        self._paced = self._flush = False
        # Clear while the picture's thread computes; the panels' thread waits for it.
        self._picture_idle = threading.Event()
        self._picture_idle.set()
        self._stream = LatestJobWorker(self._stream_job, "labkit-attractor-stream",
                                       on_drop=lambda job: job and job.shown.set())
        self._worker = LatestJobWorker(self._panels, "labkit-attractor")
        self._series: dict[str, Any] = {}
        system = self._get("system")
        values: dict[str, Any] = {"systems": viewer_systems()}
        if not self._get("uid"):
            values["uid"] = new_uid()
        self._emit(values)
        self._load_system(system, keep_parameters=True)
        if series is not None:
            self.show_series(series, **series_options)
            return
        self._change()
        self._request_panels()

    def _emit(self, values: dict[str, Any]) -> None:
        with self._emit_lock:
            self._set(values)

    @property
    def data(self) -> AttractorData | None:
        """What the view shows: the given series, or the ring of the catalogue system
        (oldest sample first; the newest samples may still be streaming, see
        :meth:`wait`); None before anything was computed."""
        if self._get("mode") == "series":
            return self._series_data
        with self._ring_lock:
            return None if self.ensemble is None else self.ensemble.data()

    # ---- inputs -------------------------------------------------------------------------
    def _changed(self, name: str, old: Any, new: Any) -> None:
        if name == "acked":
            self._on_ack(new)
            return
        if name == "resync":
            self._resync()
            return
        if self._quiet:
            return
        if self._get("mode") == "series":
            if name in ("color_by", "hidden"):
                self._pack()
            return  # catalogue inputs wait for show_system()
        if name == "system":
            try:
                self._load_system(new, keep_parameters=False)
            except ConfigError as exc:
                self._quiet = True
                try:
                    self._emit({"system": old, "message": str(exc)})
                finally:
                    self._quiet = False
                return
        if name in RESTART or name in RETUNE or name in RESAMPLE:
            self._change()
        if name in PANEL_INPUTS or name == "orbit_parameter" or (name == "panels" and new):
            self._request_panels()

    def _load_system(self, name: str, *, keep_parameters: bool) -> None:
        specs = parameter_specs(name)  # raises ConfigError for unknown names
        from labkit.dynamics import get_system

        canonical = get_system(name).name
        given = dict(self._get("parameters") or {}) if keep_parameters else {}
        values = {s["name"]: s["value"] for s in specs} | given
        orbit = self._get("orbit_parameter") if keep_parameters else ""
        if orbit not in values:
            orbit = default_orbit_parameter(canonical)
        self._quiet = True
        try:
            self._emit({"system": canonical, "param_specs": specs, "parameters": values,
                        "orbit_parameter": orbit})
        finally:
            self._quiet = False

    def _settings(self) -> dict[str, Any]:
        return {name: self._get(name) for name in INPUTS}

    def restart(self) -> None:
        """Draw the initial conditions again (from ``seed``, with the current parameters,
        as a fresh viewer would) and start the trajectories at ``t = 0``: what the
        browser's restart button does (it adds one to ``restarts``)."""
        self._quiet = True
        try:
            self._emit({"restarts": self._get("restarts") + 1})
        finally:
            self._quiet = False
        if self._get("mode") != "series":
            self._change()

    # ---- the picture: a stream of segments ---------------------------------------------------
    def _change(self) -> None:
        """Hand the current settings to the stream thread and wait for their first
        segment, so that after a change returns the new version is shown (``version``,
        ``data.parameters``); the rest follows in the background."""
        change = _Change(self._settings())
        self._flush = False
        self._picture_idle.clear()
        self._stream.submit(change)
        with self._acks:
            self._acks.notify_all()  # a stream waiting for the browser gives up at once
        change.shown.wait(FIRST_PICTURE_TIMEOUT)

    def _stream_job(self, generation: int, change: _Change | None) -> None:
        self._picture_idle.clear()
        try:
            if change is not None:  # None: _stop_stream(), a newer job that does nothing
                self._stream_version(generation, change)
        finally:
            self._picture_idle.set()

    def _stream_version(self, generation: int, change: _Change) -> None:
        try:
            with self._ring_lock:
                if self._stream.stale(generation):
                    return
                try:
                    ens = self._begin_version(change.settings)
                except LabkitError as exc:
                    self._emit({"busy": "", "message": str(exc)})
                    return
                if ens is None:
                    return
                size, longest = segment_lengths(ens.n_ic)
                self._send_segment(ens, ens.advance(size), first=True)
        finally:
            change.shown.set()
        while not ens.complete:
            if not self._wait_for_room(generation, ens):
                return
            with self._ring_lock:
                if self._stream.stale(generation):
                    return  # superseded: the newer change continues from here
                size = min(2 * size, longest)
                wanted = self._wanted
                if self._paced and not self._flush and wanted is not None:
                    size = max(1, min(size, wanted - ens.written + 1))
                self._send_segment(ens, ens.advance(size))

    def _begin_version(self, s: dict[str, Any]) -> Ensemble | None:
        """Bring the ensemble to the settings ``s`` with the least work: new initial
        conditions, a fresh ring, or new parameters in the same ring (all the settings are
        compared, since a change that was superseded before it started never ran). None
        when nothing changed (a change undone before it started)."""
        version = self._get("version") + 1
        built, ens = self._built, self.ensemble
        if ens is None or built is None or any(s[k] != built[k] for k in RESTART):
            ens = self.ensemble = Ensemble(
                s["system"], parameters=s["parameters"], n_ic=s["n_ic"], periods=s["periods"],
                samples=s["samples"], color_by=s["color_by"], seed=s["seed"],
                device=s["device"], version=version)
        elif any(s[k] != built[k] for k in RESAMPLE):
            ens.resample(parameters=s["parameters"], periods=s["periods"],
                         samples=s["samples"], color_by=s["color_by"], version=version)
        elif s["parameters"] != built["parameters"]:
            ens.retune(s["parameters"], version=version)
        else:
            return None
        self._built = dict(s)
        return ens

    def _send_segment(self, ens: Ensemble, segment: Segment, *, first: bool = False) -> None:
        """Publish one segment of ``ens`` (and, with the first of a version or the last,
        the state that describes the whole picture)."""
        with self._acks:
            self._seq += 1
            seq = self._seq
        values: dict[str, Any] = {"segment": segment.to_bytes(seq)}
        header = segment.header
        if header["reset"]:
            with self._acks:  # a new ring: what the browser wanted was about the old one
                self._ring_seq, self._wanted = seq, None
        if first or header["complete"]:
            values.update({
                "shape": [ens.n_ic, ens.capacity], "kind": ens.system.kind,
                "var_names": list(ens.var_names), "t_end": ens.t, "dt": float(ens.dt),
                "bounds": header["bounds"], "color_range": header["range"],
                "color_label": ens.color_by,
                "busy": "" if header["complete"] else "streaming…",
            })
        if header["complete"]:
            values["seconds"] = round(ens.seconds, 3)
        message = ens.message()
        if message != self._get("message"):
            values["message"] = message
        if first:
            values["version"] = ens.version
        self._emit(values)

    def _wait_for_room(self, generation: int, ens: Ensemble) -> bool:
        """While a browser acknowledges segments, wait until it has taken all but
        :data:`WINDOW` - 1 of them and wants samples beyond those sent (its animation came
        near the newest); False once the job is stale. Waiting for the browser to want more
        has no time limit: a paused or hidden page simply takes nothing."""
        deadline = time.monotonic() + ACK_TIMEOUT
        with self._acks:
            while self._paced and not self._flush:
                if self._stream.stale(generation):
                    return False
                behind = self._seq - self._acked >= WINDOW
                ahead = self._wanted is not None and ens.written > self._wanted
                if not behind and not ahead:
                    break
                left = deadline - time.monotonic()
                if behind and left <= 0:
                    self._paced = False  # nobody is taking segments: stop waiting for them
                    break
                self._picture_idle.set()
                self._acks.wait(left if behind else None)
                self._picture_idle.clear()
        return not self._stream.stale(generation)

    def _on_ack(self, value: Any) -> None:
        """``[seq, wanted]`` from the browser (see :data:`PROTOCOL`)."""
        seq, wanted = (int(v) for v in value)
        with self._acks:
            self._acked = max(self._acked, seq)
            if seq >= self._ring_seq:
                self._wanted = wanted
            self._paced = True
            self._acks.notify_all()

    def _message(self, content: Mapping[str, Any]) -> None:
        """A custom message from the browser: the same requests as :data:`PROTOCOL`'s
        fields, without a state update (so without echoes or ipywidgets' one-message-at-a-
        time throttle, which would hold a parameter change behind an acknowledgement)."""
        if "acked" in content:
            self._on_ack(content["acked"])
        if content.get("resync"):
            self._resync()

    def _resync(self) -> None:
        """A view missed segments (a reloaded page): send it the whole ring once."""
        if self._get("mode") == "series":
            return
        with self._ring_lock:
            if self.ensemble is not None:
                self._send_segment(self.ensemble, self.ensemble.snapshot())

    def _stop_stream(self) -> None:
        """Stop the picture's stream (a newer job that does nothing) and wait for it."""
        self._stream.submit(None)
        with self._acks:
            self._acks.notify_all()
        self._stream.wait(FIRST_PICTURE_TIMEOUT)

    def _settle(self, timeout: float) -> bool:
        """Let the stream finish unpaced (a script or test, not the browser, waits for
        it); True when it did within ``timeout``."""
        self._flush = True
        with self._acks:
            self._acks.notify_all()
        return self._stream.wait(timeout)

    # ---- given series ----------------------------------------------------------------------
    def show_series(self, series: Mapping[str, Any], *, codes: Mapping[str, Any] | None = None,
                    readout: str | None = None, chunks: int = 16, dt: float = 1.0,
                    color_by: str | None = None) -> None:
        """Show given trajectories instead of a catalogue system (see
        :func:`~labkit.widgets._series_view.series_view` for ``series``, ``codes``,
        ``chunks``, ``dt``).

        Args:
            readout: the text line above the picture (e.g. the metrics); ``None`` keeps it.
            color_by: one of ``("series", "time", "codes")``; ``None`` keeps the current
                mode when it applies to series, else ``"series"``.

        Raises:
            DataError: bad series or codes (nothing shown changes).
        """
        mode = color_by if color_by is not None else self._get("color_by")
        if mode not in SERIES_COLOR_MODES or (mode == "codes" and not codes):
            mode = "series" if color_by is None else mode
        data = series_view(series, codes=codes, color_by=mode, hidden=self._get("hidden"),
                           chunks=chunks, dt=dt)  # checks everything before any state changes
        self._stop_stream()
        with self._ring_lock:
            self.ensemble, self._built = None, None  # show_system() starts afresh
        self._series = {"series": series, "codes": codes, "chunks": chunks, "dt": dt}
        values: dict[str, Any] = {"mode": "series", "series_names": list(data.series),
                                  "color_by": mode, "busy": ""}
        if readout is not None:
            values["readout"] = str(readout)
        self._quiet = True
        try:
            self._emit(values)
        finally:
            self._quiet = False
        self._publish(data)

    def show_system(self) -> None:
        """Back from given series to the catalogue system (initial conditions drawn afresh
        with the current inputs)."""
        color = self._get("color_by")
        self._series = {}
        self._quiet = True
        try:
            self._emit({"mode": "system", "series_names": [], "legend": [], "readout": "",
                        "color_by": color if color in COLOR_MODES else "time",
                        "positions": b"", "colors": b"", "valid": b""})
        finally:
            self._quiet = False
        self._series_data = None
        self._load_system(self._get("system"), keep_parameters=True)
        self._change()
        self._request_panels()

    def _pack(self) -> None:
        s = self._series
        try:
            data = series_view(s["series"], codes=s["codes"], color_by=self._get("color_by"),
                               hidden=self._get("hidden"), chunks=s["chunks"], dt=s["dt"])
        except LabkitError as exc:
            self._emit({"message": str(exc)})
            return
        self._publish(data)

    def _legend(self, data: AttractorData) -> list[dict[str, Any]]:
        if data.color_by == "series":
            return [{"label": n, "colour": i % PALETTE_SIZE} for i, n in enumerate(data.series)]
        if data.color_by != "codes":
            return []
        codes = self._series.get("codes") or {}
        seen = sorted({int(c) for v in codes.values() for c in np.unique(np.asarray(v))})
        legend = [{"label": f"code {c}", "colour": c % PALETTE_SIZE}
                  for c in seen[:LEGEND_CODES]]
        if len(seen) > LEGEND_CODES:
            legend.append({"label": f"… {len(seen)} codes (colours repeat every "
                                    f"{PALETTE_SIZE})", "colour": seen[LEGEND_CODES] % PALETTE_SIZE})
        plain = [n for n in data.series if n not in codes]
        if plain:
            legend.append({"label": f"no code: {', '.join(plain)}", "colour": NO_CODE})
        return legend

    def _publish(self, data: AttractorData) -> None:
        self._series_data = data
        n, t = data.colors.shape
        self._emit({
            "positions": data.positions.tobytes(), "colors": data.colors.tobytes(),
            "valid": data.valid.tobytes(), "shape": [n, t], "kind": data.kind,
            "bounds": [float(v) for v in data.bounds.flatten()],
            "var_names": list(data.var_names), "t_end": float(data.t[-1]), "dt": data.dt,
            "color_range": list(data.color_range), "color_label": data.color_by,
            "seconds": round(data.seconds, 3), "message": data.message,
            "legend": self._legend(data), "version": self._get("version") + 1,
        })

    # ---- linked panels on a background thread ---------------------------------------------
    def _request_panels(self) -> None:
        if not self._get("panels") or self._get("mode") == "series":
            return
        self._worker.submit(self._settings())

    def _stale(self, generation: int) -> bool:
        return self._worker.stale(generation)

    def _panels(self, generation: int, s: dict[str, Any]) -> None:
        # The picture first: the panels start once its thread has nothing to compute (it
        # is done, or waits for the browser), so they never take the CPU (or the GIL) from
        # a segment someone is waiting to see.
        while not self._picture_idle.wait(PANEL_POLL):
            if self._stale(generation):
                return
        params = s["parameters"]
        self._emit({"spectrum": {}, "orbit": {}, "orbit_points": b""})
        try:
            spec = spectrum_view(s["system"], parameters=params, device=s["device"])
            spectrum = {"exponents": spec.exponents, "stderr": spec.stderr,
                        "kaplan_yorke": finite_or_none(spec.kaplan_yorke), "time": spec.time,
                        "n_ics": spec.n_ics, "message": spec.message}
        except LabkitError as exc:
            spectrum = {"exponents": [], "stderr": [], "message": str(exc)}
        if self._stale(generation):
            return
        self._emit({"spectrum": spectrum})
        if not s["orbit_parameter"]:
            self._emit({"orbit": {"message": "this system has no scalar parameter"}})
            return
        try:
            od = orbit_view(s["system"], s["orbit_parameter"], parameters=params,
                            device=s["device"])
            orbit = {"parameter": od.parameter, "variable": od.variable,
                     "values": [float(v) for v in od.values], "current": od.current,
                     "diverged_values": od.diverged_values, "message": od.message}
            points = od.points.tobytes()
        except LabkitError as exc:
            orbit, points = {"parameter": s["orbit_parameter"], "message": str(exc)}, b""
        if self._stale(generation):
            return
        self._emit({"orbit_points": points, "orbit": orbit})

    def wait(self, timeout: float = 120.0) -> bool:
        """Block until the picture's stream has all its samples and the panels are computed
        (for scripts and tests; the stream stops waiting for the browser meanwhile); True
        when both are idle within ``timeout``."""
        deadline = time.monotonic() + timeout
        return self._settle(timeout) and self._worker.wait(deadline - time.monotonic())

    # ---- static view ---------------------------------------------------------------------
    def figure(self, *, max_lines: int = 64) -> Any:
        """The current view as a static plotly figure (for papermill and HTML reports),
        once the picture's stream has all its samples."""
        from labkit.widgets._plots import attractor_figure

        self._settle(FIRST_PICTURE_TIMEOUT)
        data = self.data
        if data is None:
            raise LabkitError("nothing integrated yet")
        given = self._series.get("series") or {}
        if self._get("mode") == "series" and len(given) >= 2:
            from labkit.widgets._reconstruction_plots import reconstruction_figure

            (a, xa), (b, xb) = list(given.items())[:2]
            return reconstruction_figure(xa, xb, names=(a, b))
        return attractor_figure(data, max_lines=max_lines)


class AttractorViewer(AnyWidgetState, anywidget.AnyWidget, AttractorController):
    """Live view of an ensemble of a catalogue flow or map (JupyterLab, Notebook, VS Code).

    Thousands of trajectories are animated from float32 samples with WebGL (fading comet
    tails), coloured by time, speed or local expansion rate. The system (with search),
    parameters, number of trajectories, length, speed and tail are controls. A parameter
    change continues the trajectories from their present states with the new parameters
    (integrated in the kernel, on CUDA when present, and streamed to the browser in short
    segments of new samples); the restart button (:meth:`restart`) and a change of system,
    ``n_ic``, ``seed`` or ``device`` draw initial conditions again. Linked panels show a
    time series, the Lyapunov spectrum with error bars and an orbit diagram with the
    current value marked; they follow once the picture is up. Diverged trajectories are
    drawn in red and named in a message.

    Given trajectories (a true series and a model's free run) are shown instead with
    :meth:`from_series` / :meth:`show_series`: each series its own set of comets in its own
    colour (or coloured by time, or by a per-sample integer code such as an AL-RNN's
    symbolic code), with a ``readout`` text line; the catalogue controls are hidden until
    :meth:`show_system`. The ``hidden`` input lists series not drawn (the browser's
    check boxes set it).

    Example::

        from labkit.widgets import AttractorViewer
        viewer = AttractorViewer(system="Lorenz", n_ic=512)
        viewer  # in a notebook cell
        viewer.parameters = {**viewer.parameters, "rho": 99.0}  # continues with rho = 99
        viewer.restart()  # new initial conditions at t = 0
        viewer.figure()  # the same view as a static plotly figure
        pair = AttractorViewer.from_series({"truth": x_true, "model": x_model},
                                           codes={"model": codes}, readout="D_stsp 0.41")

    Keyword arguments are the state fields of :data:`INPUTS`; ``series`` and the keyword
    arguments of :meth:`show_series` (``codes``, ``readout``, ``chunks``, ``dt``) start in
    series mode.
    """

    _esm = widget_module("attractor")
    _css = widget_style("attractor")

    locals().update(traitlet_fields({**INPUTS, **OUTPUTS}))
    # The browser's protocol fields change once per segment: no echo to other views.
    resync = traitlets.Int(0).tag(sync=True, echo_update=False)
    acked = traitlets.List([0, -1]).tag(sync=True, echo_update=False)

    def __init__(self, *, series: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        given = {k: kwargs.pop(k) for k in SERIES_OPTIONS if k in kwargs}
        unknown = sorted(set(kwargs) - set(INPUTS))
        if unknown:
            raise ConfigError(f"unknown AttractorViewer option(s) {unknown}; options: "
                              f"{sorted(INPUTS)}")
        if given and series is None:
            raise ConfigError(f"{sorted(given)} apply to given series; pass series= too")
        if series is not None:
            kwargs.setdefault("color_by", "series")
        # The uid goes with the first message, so the browser's ring is named from the start.
        super().__init__(uid=new_uid(), **kwargs)
        self.on_msg(lambda widget, content, buffers: self._message(content))
        self._start(series, **given)
        self.observe(lambda change: self._changed(change["name"], change["old"],
                                                  change["new"]), names=[*INPUTS, *PROTOCOL])

    @classmethod
    def from_series(cls, series: Mapping[str, Any], *, codes: Mapping[str, Any] | None = None,
                    readout: str = "", chunks: int = 16, dt: float = 1.0,
                    **options: Any) -> AttractorViewer:
        """A viewer of given trajectories, e.g. ``{"truth": x_true, "model": x_model}``
        (each ``[time, dim]``), with optional per-sample ``codes`` and a ``readout`` line;
        ``options`` are :data:`INPUTS` (``color_by``: ``"series"``, ``"time"``,
        ``"codes"``; ``speed``, ``tail``, ...). No catalogue system is integrated.

        Raises:
            DataError: bad series or codes, naming the shapes.
        """
        return cls(series=series, codes=codes, readout=readout, chunks=chunks, dt=dt,
                   **options)

    @traitlets.validate("color_by")
    def _check_color_by(self, proposal: Any) -> str:
        if proposal["value"] not in ALL_COLOR_MODES:
            raise traitlets.TraitError(f"color_by must be one of {ALL_COLOR_MODES}, "
                                       f"got {proposal['value']!r}")
        return proposal["value"]

    @traitlets.validate("n_ic")
    def _check_n_ic(self, proposal: Any) -> int:
        if not 1 <= proposal["value"] <= MAX_IC:
            raise traitlets.TraitError(f"n_ic must be in [1, {MAX_IC}], got "
                                       f"{proposal['value']!r}")
        return proposal["value"]

    @traitlets.validate("periods")
    def _check_periods(self, proposal: Any) -> float:
        if not 0.01 <= proposal["value"] <= 1e4:
            raise traitlets.TraitError(f"periods must be in [0.01, 1e4], got "
                                       f"{proposal['value']!r}")
        return proposal["value"]
