"""AttractorViewer: thousands of trajectories of any catalogue system, or of a user's own
vector field, live in the browser.

The state is declared once (:data:`INPUTS`, :data:`OUTPUTS`); :class:`AttractorController`
turns input changes into outputs by calling the pure code of
:mod:`labkit.widgets._attractor_data` and :mod:`labkit.widgets._attractor_stream`;
:class:`AttractorViewer` is the anywidget view (ES module ``widgets/common.js`` and
``widgets/attractor*.js``, see :func:`~labkit.widgets._assets.widget_module`) and
:func:`attractor_app` the same module in a Panel app.

The picture is a stream. A parameter change continues every trajectory from its present
state with the new parameters (the picture bends, as in DynamicalSystems.jl's interactive
apps) instead of integrating again from ``t = 0``; a change of ``periods``, ``samples``,
``color_by`` or the drawn ``variables`` continues too, into a fresh ring, and so does
seeding trajectories by a click on the Poincare section
(:meth:`AttractorController.seed_section`). :meth:`AttractorController.step` continues by
one sample, :meth:`AttractorController.reset` goes back to the initial states at
``t = 0``. Only a change of system, ``n_ic``, ``seed`` or ``device``, or
:meth:`AttractorController.restart` (the browser's "new ICs" button), draws initial
conditions again. Each change starts a *version*: a background thread
integrates it in segments, short first, and sends each segment's new float32 samples only
(the ``segment`` output; the browser appends them to its ring of samples). A newer change
stops the older version between two segments. The stream paces itself by the browser's
acknowledgements (``acked``): at most :data:`WINDOW` segments in flight, and no further
ahead than the animation will draw soon (its head plus a lead), so the stream runs at the
speed of the picture and a change never queues behind a backlog of messages; with no
browser (scripts, tests) it runs unpaced. The Lyapunov spectrum and orbit diagram panels
run on a second thread that waits while the picture is being computed (a zoom of the orbit
diagram, ``orbit_range``, recomputes only it); the Poincare section of the held samples is
computed on a third thread, which waits while the picture is being computed too, at most
every :data:`SECTION_EVERY` seconds while a picture streams. When a
picture is complete, ``status`` says what it cost (:func:`status_text`).

The system is a catalogue name, a :class:`~labkit.dynamics.System`, or a callable
``f(t, y) -> dy/dt`` on batched torch tensors with its dimension or initial state
(:func:`viewer_system`, :func:`labkit.dynamics.custom_system`); a user's systems are
listed before the catalogue's.

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
import math
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import anywidget
import numpy as np
import torch
import traitlets

from labkit.core.rng import make_generator
from labkit.dynamics import System, custom_system, get_system
from labkit.errors import ConfigError, LabkitError
from labkit.widgets._assets import widget_module, widget_style
from labkit.widgets._attractor_data import (
    COLOR_MODES,
    IC_JITTER,
    MAX_IC,
    NO_CODE,
    NO_VARIABLE,
    PALETTE_SIZE,
    SERIES_COLOR_MODES,
    AttractorData,
    as_system,
    check_span,
    check_variables,
    color_quantity,
    default_orbit_parameter,
    default_variables,
    orbit_view,
    parameter_specs,
    spectrum_view,
    viewer_systems,
)
from labkit.widgets._attractor_stream import (
    Ensemble,
    SectionData,
    SectionInput,
    Segment,
    compute_section,
    section_seed,
    segment_lengths,
)
from labkit.widgets._series_view import series_view
from labkit.widgets._toolkits import AnyWidgetState, finite_or_none, traitlet_fields
from labkit.widgets._worker import LatestJobWorker

__all__ = ["INPUTS", "OUTPUTS", "PROTOCOL", "AttractorController", "AttractorViewer",
           "status_text", "viewer_system"]

#: Inputs (set by the browser or by Python) and their defaults. ``parameters`` continues
#: the trajectories from their present states; ``periods``, ``samples``, ``color_by`` and
#: ``variables`` (the state variables drawn on the x, y and z axes) continue them into a
#: fresh ring; ``system``, ``n_ic``, ``seed``, ``device`` and ``restarts`` (a counter: the
#: restart button adds one) draw initial conditions again; ``resets`` (a counter: the
#: reset button) puts every trajectory back at its initial state at ``t = 0``; ``steps``
#: (a counter: the step button) continues them by :data:`STEP_SAMPLES` samples; ``speed``,
#: ``tail`` and ``playing`` only change the animation; ``orbit_parameter`` and
#: ``orbit_range`` (``[]``: the slider's range, or a zoom ``[lo, hi]``) recompute the
#: orbit diagram; ``section`` (``{"variable": k, "value": c}``, either left out for the
#: default) recomputes the Poincare section. ``hidden`` (names of given series not drawn)
#: and ``color_by`` repack given series.
INPUTS: dict[str, Any] = {
    "system": "Lorenz", "parameters": {}, "n_ic": 256, "periods": 10.0, "samples": 800,
    "color_by": "time", "seed": 0, "device": "auto",
    "speed": 1.0, "tail": 60, "playing": True,
    "orbit_parameter": "", "panels": True, "hidden": [], "restarts": 0,
    "variables": [0, 1, 2], "orbit_range": [], "section": {}, "resets": 0, "steps": 0,
}
#: Set by the browser only (as custom messages where the toolkit has them, else as these
#: fields): ``resync`` (a counter) asks for the whole ring, for a view that missed segments
#: (a reloaded page); ``acked`` is ``[seq, wanted]``: the newest segment the browser has
#: taken, and the ring index of the last sample its views want (the animation's head plus
#: a lead; -1 while no view wants any); ``seed_at`` is ``[u, v, n]``: the n-th click on the
#: Poincare section, at ``(u, v)`` in its two shown variables
#: (:meth:`AttractorController.seed_section`).
PROTOCOL: dict[str, Any] = {"resync": 0, "acked": [0, -1], "seed_at": []}
#: Inputs that draw initial conditions again, continue into the same ring, continue into a
#: fresh ring, rewind, step, and that the side panels depend on (all of them, or only the
#: orbit diagram).
RESTART = ("system", "n_ic", "seed", "device", "restarts")
RETUNE = ("parameters",)
RESAMPLE = ("periods", "samples", "color_by", "variables")
REWIND = ("resets",)
STEP = ("steps",)
PANEL_INPUTS = ("system", "parameters", "device")
ORBIT_INPUTS = ("orbit_parameter", "orbit_range")
#: The side panels computed on the panels' thread.
PANEL_PARTS = ("spectrum", "orbit")
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
    # the system's dimension and variable names (the variable choices); the colour bar's
    # title; what the last picture cost (set when it is complete); the Poincare section
    # (its settings resolved, and float32 [k, 3] points: two variables and the seeding
    # group); the number of seeded trajectories
    "dim": 3, "state_names": ["x0", "x1", "x2"], "color_quantity": "time since the change",
    "status": "", "section_view": {}, "section_points": b"", "seeded": 0,
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
#: Samples per trajectory one step (:meth:`AttractorController.step`) adds.
STEP_SAMPLES = 1
#: Trajectories one click on the Poincare section seeds: the point itself and more within
#: a relative distance :data:`~labkit.widgets._attractor_data.IC_JITTER` of it (they stay
#: together on a torus, spread over a chaotic sea).
SEED_TRAJECTORIES = 8
#: Seconds between the Poincare section's updates while a picture streams.
SECTION_EVERY = 1.0
#: Options of a user's callable system (:func:`~labkit.dynamics.custom_system`) that the
#: viewer's constructor takes beside ``system``.
SYSTEM_OPTIONS = ("dim", "y0", "dt", "period", "name")


def viewer_system(system: Any, *, parameters: Mapping[str, Any] | None = None,
                  **options: Any) -> tuple[str, System | None]:
    """What ``AttractorViewer(system=...)`` takes, as ``(name, own)``: a catalogue name
    (``own`` None), a :class:`~labkit.dynamics.System` (the catalogue's: ``own`` None; a
    user's: ``own`` is it), or a callable ``f(t, y, **parameters) -> dy/dt`` made into a
    system with ``options`` (``dim``, ``y0``, ``dt``, ``period``, ``name``) and
    ``parameters`` as its defaults (:func:`labkit.dynamics.custom_system`).

    Raises:
        ConfigError: anything else, or a bad callable or option, naming it.
    """
    if isinstance(system, str):
        if options:
            raise ConfigError(f"{sorted(options)} describe a callable system f(t, y); "
                              f"system={system!r} is a catalogue name")
        return system, None
    if isinstance(system, System):
        if options:
            raise ConfigError(f"{sorted(options)} describe a callable system f(t, y); "
                              f"{system.name!r} is a System already")
        try:
            catalogue = get_system(system.name) is system
        except ConfigError:
            catalogue = False
        return system.name, None if catalogue else system
    if callable(system):
        if "dim" not in options and "y0" not in options:
            raise ConfigError(f"the callable system {system!r} needs its dimension or initial "
                              "state: AttractorViewer(system=f, dim=3) or "
                              "system=labkit.dynamics.custom_system(f, y0=[...])")
        own = custom_system(system, parameters=parameters, **options)
        return own.name, own
    raise ConfigError(f"system must be a catalogue name, a labkit.dynamics System or a "
                      f"callable f(t, y) -> dy/dt, got {system!r}")


def status_text(kind: str, n_ic: int, steps: int, seconds: float, first: float) -> str:
    """The status line of a complete picture: what was computed, its compute time, and the
    time from the change reaching the kernel to the first new samples being sent."""
    what, unit = ("iterated", "iterations") if kind == "map" else ("integrated", "RK4 steps")
    return (f"{what} {n_ic} × {steps} {unit} in {seconds:.3g} s of compute; first samples "
            f"sent {first:.3g} s after the change")


def split_options(kwargs: dict[str, Any], *, series: Any) -> tuple[dict[str, Any],
                                                                    dict[str, Any]]:
    """Pop a callable system's options (:data:`SYSTEM_OPTIONS`) and given series' options
    (:data:`SERIES_OPTIONS`) from a viewer's keyword arguments. ``dt`` is both: the
    system's step when ``system`` is not a name and no ``series`` are given."""
    own = not isinstance(kwargs.get("system", ""), str) and series is None
    options = {k: kwargs.pop(k) for k in SYSTEM_OPTIONS
               if k in kwargs and (k != "dt" or own)}
    given = {k: kwargs.pop(k) for k in SERIES_OPTIONS if k in kwargs}
    return options, given


def _check_section(value: Any, dim: int) -> dict[str, Any]:
    """The ``section`` input: a dict with an optional ``variable`` (an int in ``[0, dim)``)
    and an optional ``value`` (a finite number, or None for the default); raises
    :class:`ConfigError` quoting anything else."""
    ok = isinstance(value, Mapping) and set(value) <= {"variable", "value"}
    if ok and "variable" in value:
        k = value["variable"]
        ok = isinstance(k, int) and not isinstance(k, bool) and 0 <= k < dim
    if ok and value.get("value") is not None:
        c = value["value"]
        ok = isinstance(c, int | float) and not isinstance(c, bool) and math.isfinite(c)
    if not ok:
        raise ConfigError(f"section must be {{'variable': k, 'value': c}} with k in [0, {dim}) "
                          f"and c a finite number (either may be left out), got {value!r}")
    return dict(value)


def new_uid() -> str:
    """A name for one widget's ring of samples in the browser (unique per page)."""
    return secrets.token_hex(8)


@dataclasses.dataclass
class _Change:
    """One change for the stream thread: the settings it must show, and an event set once
    its first segment is sent (or it was superseded before it started)."""

    settings: dict[str, Any]
    shown: threading.Event = dataclasses.field(default_factory=threading.Event)
    at: float = dataclasses.field(default_factory=time.perf_counter)


class AttractorController:
    """The viewer's behaviour, independent of the widget toolkit.

    Subclasses provide ``_get(name)`` and ``_set(values)`` (set several state fields at
    once; ``version`` last), set ``_own`` (a user's systems by name, see
    :func:`viewer_system`) and call :meth:`_start` once and :meth:`_changed` for each
    changed input.
    """

    _get: Callable[[str], Any]
    _set: Callable[[dict[str, Any]], None]
    _own: dict[str, System]

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
        self._sections = LatestJobWorker(self._section_job, "labkit-attractor-section")
        self._parts: set[str] = set()  # side panels asked for and not computed yet
        self._parts_lock = threading.Lock()
        self._series: dict[str, Any] = {}
        # Seeded states since the last restart, each (state, seeding group); the newest
        # Poincare section and when it was computed; when the change being shown began
        # and how long its first samples took.
        self._seeds: list[tuple[tuple[float, ...], int]] = []
        self._section: SectionData | None = None
        self._section_at = 0.0
        self._change_at = time.perf_counter()
        self._first_s = 0.0
        if not hasattr(self, "_own"):
            self._own = {}
        system = self._get("system")
        values: dict[str, Any] = {"systems": [*self._own, *viewer_systems()]}
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

    def _emit_quietly(self, values: dict[str, Any]) -> None:
        """Set inputs (and outputs) without treating them as changes."""
        self._quiet = True
        try:
            self._emit(values)
        finally:
            self._quiet = False

    @property
    def data(self) -> AttractorData | None:
        """What the view shows: the given series, or the ring of the catalogue system
        (oldest sample first; the newest samples may still be streaming, see
        :meth:`wait`); None before anything was computed."""
        if self._get("mode") == "series":
            return self._series_data
        with self._ring_lock:
            return None if self.ensemble is None else self.ensemble.data()

    # ---- systems ------------------------------------------------------------------------
    def _register(self, system: Any) -> str:
        """The name to set ``system`` to for a value that is not a name: a
        :class:`~labkit.dynamics.System` (a user's is added to the list of systems)."""
        name, own = viewer_system(system)
        if own is not None:
            self._own[name] = own
            self._emit({"systems": [*self._own, *viewer_systems()]})
        return name

    def _lookup(self, name: str) -> System:
        """The system of that name: a user's, else the catalogue's."""
        return self._own[name] if name in self._own else as_system(name)

    # ---- inputs -------------------------------------------------------------------------
    def _changed(self, name: str, old: Any, new: Any) -> None:
        if name == "acked":
            self._on_ack(new)
            return
        if name == "resync":
            self._resync()
            return
        if name == "seed_at":
            if new:
                self._on_seed(new)
            return
        if self._quiet:
            return
        if self._get("mode") == "series":
            if name in ("color_by", "hidden"):
                self._pack()
            return  # catalogue inputs wait for show_system()
        if name in ("system", "variables", "orbit_range", "section"):
            try:
                if name == "system":
                    self._load_system(new, keep_parameters=False)
                else:
                    self._check_input(name, new)
            except ConfigError as exc:
                self._emit_quietly({name: old, "message": str(exc)})
                return
        if name == "orbit_parameter":
            self._emit_quietly({"orbit_range": []})  # a zoom of another parameter
        if name in RESTART:
            self._seeds, self._section = [], None
            self._emit_quietly({"seeded": 0})
        if name == "section" or (name == "panels" and new):
            self._request_section()
        if name in (*RESTART, *RETUNE, *RESAMPLE, *REWIND, *STEP):
            self._change()
        if name in PANEL_INPUTS or (name == "panels" and new):
            self._request_panels()
        elif name in ORBIT_INPUTS or (name == "variables" and list(old)[:1] != list(new)[:1]):
            self._request_panels(("orbit",))

    def _check_input(self, name: str, value: Any) -> Any:
        """``value`` of input ``name`` checked against the current system (the same checks
        for every toolkit); raises :class:`ConfigError` quoting it."""
        dim = self._lookup(self._get("system")).dim
        if name == "variables":
            return check_variables(value, dim)
        if name == "orbit_range":
            return list(check_span(value)) if len(value) else []
        if name == "section":
            return _check_section(value, dim)
        return value

    def _load_system(self, name: str, *, keep_parameters: bool) -> None:
        system = self._lookup(name)  # raises ConfigError for unknown names
        specs = parameter_specs(system)
        canonical = system.name
        given = dict(self._get("parameters") or {}) if keep_parameters else {}
        values = {s["name"]: s["value"] for s in specs} | given
        orbit = self._get("orbit_parameter") if keep_parameters else ""
        if orbit not in values:
            orbit = default_orbit_parameter(system)
        variables = default_variables(system.dim)
        section: dict[str, Any] = {}
        span: list[float] = []
        if keep_parameters:  # the constructor's values, checked now that the system is known
            if list(self._get("variables")) != [0, 1, 2] or system.dim >= 3:
                variables = check_variables(list(self._get("variables")), system.dim)
            section = _check_section(self._get("section"), system.dim)
            span = list(check_span(self._get("orbit_range"))) if self._get("orbit_range") else []
        self._emit_quietly({
            "system": canonical, "param_specs": specs, "parameters": values,
            "orbit_parameter": orbit, "variables": variables, "section": section,
            "orbit_range": span, "dim": system.dim,
            "state_names": [f"x{k}" for k in range(system.dim)]})

    def _settings(self) -> dict[str, Any]:
        return {**{name: self._get(name) for name in INPUTS}, "seeds": tuple(self._seeds)}

    # ---- actions -------------------------------------------------------------------------
    def restart(self) -> None:
        """Draw the initial conditions again (from ``seed``, with the current parameters,
        as a fresh viewer would) and start the trajectories at ``t = 0``: what the
        browser's restart button does (it adds one to ``restarts``). Seeded trajectories
        are dropped."""
        self._seeds, self._section = [], None
        self._emit_quietly({"restarts": self._get("restarts") + 1, "seeded": 0})
        if self._get("mode") != "series":
            self._change()

    def reset(self) -> None:
        """Put every trajectory back at the initial state it started from (the drawn ones
        and the seeded ones) at ``t = 0``, with the current parameters: what the browser's
        reset button does (it adds one to ``resets``)."""
        self._emit_quietly({"resets": self._get("resets") + 1})
        if self._get("mode") != "series":
            self._change()

    def step(self, n: int = 1) -> None:
        """Pause, and continue every trajectory by ``n`` steps of :data:`STEP_SAMPLES`
        samples each: what the browser's step button does (it pauses and adds one to
        ``steps``).

        Raises:
            ConfigError: ``n`` not an int >= 1.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"n must be an int >= 1, got {n!r}")
        self._emit_quietly({"playing": False, "steps": self._get("steps") + n})
        if self._get("mode") != "series":
            self._change()

    def add_trajectories(self, states: Any) -> None:
        """Add trajectories that start now at ``states`` (``[k, dim]`` or one ``[dim]``),
        beside the others (their Poincare-section points get a colour of their own); a
        reset brings them back there, a restart drops them.

        Raises:
            ConfigError: states of the wrong shape or not finite, too many trajectories,
                or given series on view.
        """
        if self._get("mode") == "series":
            raise ConfigError("seeding needs a system on view, not given series")
        dim = self._lookup(self._get("system")).dim
        arr = np.asarray(states, dtype=np.float64)
        arr = arr[None] if arr.ndim == 1 else arr
        if arr.ndim != 2 or arr.shape[1] != dim or not len(arr) or not np.isfinite(arr).all():
            raise ConfigError(f"seed states must be finite, of shape [k, {dim}] or [{dim}], "
                              f"got {np.shape(states)}: {np.asarray(states).tolist()!r:.200}")
        total = self._get("n_ic") + len(self._seeds) + len(arr)
        if total > MAX_IC:
            raise ConfigError(f"{len(arr)} more trajectories make {total}: at most {MAX_IC}; "
                              "restart to drop the seeded ones")
        group = 1 + max((g for _, g in self._seeds), default=0)
        self._seeds += [(tuple(float(v) for v in row), group) for row in arr]
        self._emit_quietly({"seeded": len(self._seeds)})
        self._change()

    def seed_section(self, u: float, v: float) -> None:
        """What a click on the Poincare section does: seed :data:`SEED_TRAJECTORIES`
        trajectories at the section's point ``(u, v)`` (in its two shown variables; the
        section's value in its variable, the other variables those of the nearest point of
        the section, see :func:`~labkit.widgets._attractor_stream.section_seed`), the first
        exactly there, the others within a relative distance ``IC_JITTER``.

        Raises:
            ConfigError: as :meth:`add_trajectories`, or ``(u, v)`` not two finite numbers.
        """
        if self._get("mode") == "series":
            raise ConfigError("seeding needs a system on view, not given series")
        with self._ring_lock:
            ens = self.ensemble
            if ens is None:
                raise ConfigError("nothing is integrated yet to seed beside")
            section = self._section
            held = ens.held_states()
            present = ens.y[torch.isfinite(ens.y).all(-1)]
            fallback = (present.mean(0) if len(present) else ens.y0[0]).double().cpu().numpy()
        if section is None or section.states.shape[1:] != (held.dim,):
            section = self._compute_section(held)
        centre = section_seed(section, u, v, fallback)
        groups = 1 + max((g for _, g in self._seeds), default=0)
        gen = make_generator(self._get("seed") + groups)
        noise = torch.randn(SEED_TRAJECTORIES, len(centre), generator=gen,
                            dtype=torch.float64).numpy()
        noise[0] = 0.0
        self.add_trajectories(centre + IC_JITTER * np.maximum(np.abs(centre), 1.0) * noise)

    def _on_seed(self, value: Any) -> None:
        """A click on the section from the browser: ``[u, v, n]``."""
        try:
            if not isinstance(value, list | tuple) or len(value) < 2:
                raise ConfigError(f"a section click must be [u, v, n], got {value!r}")
            self.seed_section(value[0], value[1])
        except LabkitError as exc:
            self._emit({"message": str(exc)})

    def section(self) -> SectionData | None:
        """The current Poincare section (:func:`~labkit.widgets._attractor_stream.
        compute_section` of the held samples with the ``section`` input); None before
        anything was integrated or with given series on view."""
        if self._get("mode") == "series":
            return None
        with self._ring_lock:
            if self.ensemble is None:
                return None
            held = self.ensemble.held_states()
        return self._compute_section(held)

    def _compute_section(self, held: SectionInput) -> SectionData:
        """The section of ``held`` with the ``section`` input (default: the third drawn
        variable, at its median)."""
        s = self._get("section") or {}
        drawn = held.variables[2] if held.variables[2] != NO_VARIABLE else held.dim - 1
        return compute_section(held, int(s.get("variable", drawn)), s.get("value"))

    def _request_section(self) -> None:
        """Compute and send the Poincare section on its own thread, which waits while the
        picture's thread computes (a section takes ~10-30 ms; a change must not wait for
        it)."""
        if self._get("panels") and self._get("mode") != "series":
            self._section_at = time.monotonic()
            self._sections.submit(None)

    def _section_job(self, generation: int, _: Any) -> None:
        while not self._picture_idle.wait(PANEL_POLL):
            if self._sections.stale(generation):
                return
        with self._ring_lock:  # a copy of the held samples; the section is computed outside
            if self.ensemble is None:
                return
            held = self.ensemble.held_states()
        try:
            sec = self._compute_section(held)
        except LabkitError as exc:
            self._emit({"section_view": {"message": str(exc)}, "section_points": b""})
            return
        if self._sections.stale(generation):
            return
        self._section = sec
        a, b = sec.axes
        self._emit({"section_points": sec.points().tobytes(), "section_view": {
            "kind": sec.kind, "variable": sec.variable, "value": finite_or_none(sec.value),
            "axes": [a, b], "names": [f"x{a}", f"x{b}"],
            "span": [float(v) for v in sec.span], "count": len(sec.states),
            "groups": int(sec.groups.max()) if len(sec.groups) else 0,
            "message": sec.message}})

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
                self._change_at = change.at
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
        conditions, a fresh ring (with seeded trajectories added, or rewound to the
        initial states), new parameters in the same ring, or a few more samples (a step;
        all the settings are compared, since a change that was superseded before it
        started never ran). None when nothing changed (a change undone before it
        started)."""
        version = self._get("version") + 1
        built, ens = self._built, self.ensemble
        seeds: tuple[tuple[tuple[float, ...], int], ...] = s["seeds"]
        if ens is None or built is None or any(s[k] != built[k] for k in RESTART) \
                or seeds[:len(built["seeds"])] != built["seeds"]:
            ens = self.ensemble = Ensemble(
                self._lookup(s["system"]), parameters=s["parameters"], n_ic=s["n_ic"],
                periods=s["periods"], samples=s["samples"], color_by=s["color_by"],
                seed=s["seed"], device=s["device"], variables=s["variables"], version=version)
            self._built = dict(s)
            if not seeds:
                return ens
            built = {**s, "seeds": ()}  # then seeded below, in the same version
        new = seeds[len(built["seeds"]):]
        rewind = s["resets"] != built["resets"]
        if new or rewind or any(s[k] != built[k] for k in RESAMPLE):
            for group in sorted({g for _, g in new}):
                ens.add([state for state, g in new if g == group], group=group)
            if rewind:
                ens.rewind()
            ens.resample(parameters=s["parameters"], periods=s["periods"],
                         samples=s["samples"], color_by=s["color_by"],
                         variables=s["variables"], version=version)
        elif s["parameters"] != built["parameters"]:
            ens.retune(s["parameters"], version=version)
        elif s["steps"] != built["steps"]:
            count = abs(s["steps"] - built["steps"]) * STEP_SAMPLES
            ens.extend(min(count, ens.capacity - 1), version=version)
        else:
            return None
        self._built = dict(s)
        return ens

    def _send_segment(self, ens: Ensemble, segment: Segment, *, first: bool = False) -> None:
        """Publish one segment of ``ens`` (and, with the first of a version or the last,
        the state that describes the whole picture; every :data:`SECTION_EVERY` seconds
        and at the end, a new Poincare section is asked for)."""
        with self._acks:
            self._seq += 1
            seq = self._seq
        values: dict[str, Any] = {"segment": segment.to_bytes(seq)}
        header = segment.header
        if header["reset"]:
            with self._acks:  # a new ring: what the browser wanted was about the old one
                self._ring_seq, self._wanted = seq, None
        if first:
            self._first_s = time.perf_counter() - self._change_at
        if first or header["complete"]:
            values.update({
                "shape": [ens.n_ic, ens.capacity], "kind": ens.system.kind,
                "var_names": list(ens.var_names), "t_end": ens.t, "dt": float(ens.dt),
                "bounds": header["bounds"], "color_range": header["range"],
                "color_label": ens.color_by,
                "color_quantity": color_quantity(ens.system.kind, ens.color_by),
                "busy": "" if header["complete"] else "streaming…",
            })
        if header["complete"]:
            values["seconds"] = round(ens.seconds, 3)
            values["status"] = status_text(ens.system.kind, ens.n_ic, ens.steps, ens.seconds,
                                           self._first_s)
        message = ens.message()
        if message != self._get("message"):
            values["message"] = message
        if first:
            values["version"] = ens.version
        self._emit(values)
        if header["complete"] or (not first and time.monotonic() - self._section_at
                                  >= SECTION_EVERY):
            self._request_section()

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
        if content.get("seed_at"):
            self._on_seed(content["seed_at"])

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
        self._seeds, self._section = [], None
        self._emit_quietly({"seeded": 0})
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
            "color_quantity": color_quantity("series", data.color_by),
            "seconds": round(data.seconds, 3), "message": data.message,
            "status": f"packed {len(data.series)} series into {n} stretches in "
                      f"{data.seconds:.3g} s",
            "section_view": {}, "section_points": b"",
            "legend": self._legend(data), "version": self._get("version") + 1,
        })

    # ---- linked panels on a background thread ---------------------------------------------
    def _request_panels(self, parts: tuple[str, ...] = PANEL_PARTS) -> None:
        """Compute the side panels ``parts`` (of :data:`PANEL_PARTS`) on the panels'
        thread; parts asked for earlier and not computed yet are computed too."""
        if not self._get("panels") or self._get("mode") == "series":
            return
        with self._parts_lock:
            self._parts.update(parts)
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
        with self._parts_lock:
            parts, self._parts = self._parts, set()
        done: set[str] = set()
        try:
            self._compute_panels(generation, s, parts, done)
        finally:
            if parts - done:  # superseded: the newer job computes what this one did not
                with self._parts_lock:
                    self._parts |= parts - done

    def _compute_panels(self, generation: int, s: dict[str, Any], parts: set[str],
                        done: set[str]) -> None:
        params = s["parameters"]
        system = self._lookup(s["system"])
        cleared: dict[str, Any] = {"spectrum": {}} if "spectrum" in parts else {}
        if "orbit" in parts:  # the parameter stays named while its diagram is computed
            cleared.update({"orbit": {"parameter": s["orbit_parameter"]}, "orbit_points": b""})
        if cleared:
            self._emit(cleared)
        if "spectrum" in parts:
            try:
                spec = spectrum_view(system, parameters=params, device=s["device"])
                spectrum = {"exponents": spec.exponents, "stderr": spec.stderr,
                            "kaplan_yorke": finite_or_none(spec.kaplan_yorke),
                            "time": spec.time, "n_ics": spec.n_ics, "message": spec.message}
            except LabkitError as exc:
                spectrum = {"exponents": [], "stderr": [], "message": str(exc)}
            if self._stale(generation):
                return
            self._emit({"spectrum": spectrum})
            done.add("spectrum")
        if "orbit" not in parts:
            return
        if not s["orbit_parameter"]:
            self._emit({"orbit": {"message": "this system has no scalar parameter"}})
            done.add("orbit")
            return
        variable = s["variables"][0] if s["variables"][0] != NO_VARIABLE else 0
        try:
            od = orbit_view(system, s["orbit_parameter"], parameters=params,
                            device=s["device"], variable=variable,
                            span=s["orbit_range"] or None)
            orbit = {"parameter": od.parameter, "variable": od.variable,
                     "variable_name": f"x{od.variable}", "kind": system.kind,
                     "values": [float(v) for v in od.values], "current": od.current,
                     "diverged_values": od.diverged_values, "message": od.message,
                     "range": list(od.span), "full": list(od.full),
                     "zoomed": od.span != od.full}
            points = od.points.tobytes()
        except LabkitError as exc:
            orbit, points = {"parameter": s["orbit_parameter"], "message": str(exc)}, b""
        if self._stale(generation):
            return
        self._emit({"orbit_points": points, "orbit": orbit})
        done.add("orbit")

    def wait(self, timeout: float = 120.0) -> bool:
        """Block until the picture's stream has all its samples and the panels (and the
        Poincare section) are computed (for scripts and tests; the stream stops waiting for
        the browser meanwhile); True when all are idle within ``timeout``."""
        deadline = time.monotonic() + timeout
        return (self._settle(timeout) and self._worker.wait(deadline - time.monotonic())
                and self._sections.wait(deadline - time.monotonic()))

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
    """Live view of an ensemble of a catalogue flow or map, or of a user's own flow
    (JupyterLab, Notebook, VS Code).

    Thousands of trajectories are animated from float32 samples with WebGL (fading comet
    tails), coloured by time, speed or local expansion rate, with a colour bar naming the
    quantity and its range. The system (with search), parameters, number of trajectories,
    length, speed, tail and, for systems of three or more variables, the three variables
    drawn are controls. A parameter change continues the trajectories from their present
    states with the new parameters (integrated in the kernel, on CUDA when present, and
    streamed to the browser in short segments of new samples); the step button
    (:meth:`step`) pauses and continues by one sample, the reset button (:meth:`reset`)
    goes back to the initial states at ``t = 0``, and the "new ICs" button
    (:meth:`restart`) and a change of system, ``n_ic``, ``seed`` or ``device`` draw
    initial conditions again. Linked panels, each with ticks and labels on both axes,
    show a time series, the Lyapunov spectrum with error bars, an orbit diagram with the
    current value marked (drag over it to zoom into a parameter range, recomputed there;
    ``orbit_range``) and the Poincare section of the trajectories (its variable and value
    chosen; a click seeds :data:`SEED_TRAJECTORIES` trajectories at that point,
    :meth:`seed_section`); they follow once the picture is up. The status line says what
    the last picture cost: "integrated 256 × 4000 RK4 steps in 0.8 s of compute; first
    samples sent 0.02 s after the change; view ready 0.2 s after the change" (the last
    part measured in the browser, for a change made there). Diverged trajectories are
    drawn in red and named in a message.

    ``system`` is a catalogue name, a :class:`~labkit.dynamics.System` (a user's own:
    :func:`labkit.dynamics.custom_system`), or a callable ``f(t, y, **parameters) ->
    dy/dt`` on batched torch tensors with ``dim`` or ``y0`` (and optionally ``dt``,
    ``period``, ``name``; ``parameters`` become its parameters' defaults). A bad one is a
    :class:`~labkit.errors.ConfigError` naming it.

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
        viewer.step(); viewer.reset()  # one sample on; back to the initial states
        viewer.orbit_range = [20.0, 30.0]  # the orbit diagram over rho in [20, 30]
        viewer.seed_section(0.0, 5.0)  # trajectories at (x, y) = (0, 5) on the section
        viewer.figure()  # the same view as a static plotly figure

        def ring5(t, y, F=8.0):  # Lorenz-96 on five sites, a user's field
            return (torch.roll(y, -1, -1) - torch.roll(y, 2, -1)) * torch.roll(y, 1, -1) - y + F
        own = AttractorViewer(system=ring5, y0=[8.0, 8.0, 8.0, 8.0, 8.01], dt=0.01,
                              period=1.0, parameters={"F": 8.0}, variables=[0, 2, 4])
        pair = AttractorViewer.from_series({"truth": x_true, "model": x_model},
                                           codes={"model": codes}, readout="D_stsp 0.41")

    Keyword arguments are the state fields of :data:`INPUTS`, and a callable system's
    :data:`SYSTEM_OPTIONS`; ``series`` and the keyword arguments of :meth:`show_series`
    (``codes``, ``readout``, ``chunks``, ``dt``) start in series mode.
    """

    _esm = widget_module("attractor")
    _css = widget_style("attractor")

    locals().update(traitlet_fields({**INPUTS, **OUTPUTS}))
    # A name travels; a System set from Python is registered and becomes its name.
    system = traitlets.Any(INPUTS["system"]).tag(sync=True)
    # The browser's protocol fields change once per segment: no echo to other views.
    resync = traitlets.Int(0).tag(sync=True, echo_update=False)
    acked = traitlets.List([0, -1]).tag(sync=True, echo_update=False)
    seed_at = traitlets.List([]).tag(sync=True, echo_update=False)

    def __init__(self, *, series: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        options, given = split_options(kwargs, series=series)
        unknown = sorted(set(kwargs) - set(INPUTS))
        if unknown:
            raise ConfigError(f"unknown AttractorViewer option(s) {unknown}; options: "
                              f"{sorted(INPUTS)}, and for a callable system "
                              f"{list(SYSTEM_OPTIONS)}")
        if given and series is None:
            raise ConfigError(f"{sorted(given)} apply to given series; pass series= too")
        if series is not None:
            kwargs.setdefault("color_by", "series")
        name, own = viewer_system(kwargs.get("system", INPUTS["system"]),
                                  parameters=kwargs.get("parameters"), **options)
        kwargs["system"] = name
        # The uid goes with the first message, so the browser's ring is named from the start.
        super().__init__(uid=new_uid(), **kwargs)
        self._own = {name: own} if own is not None else {}
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

    @traitlets.validate("system")
    def _check_system(self, proposal: Any) -> str:
        value = proposal["value"]
        return value if isinstance(value, str) else self._register(value)

    @traitlets.validate("variables", "orbit_range", "section")
    def _check_choices(self, proposal: Any) -> Any:
        if not hasattr(self, "_emit_lock"):  # the constructor's: checked once the system is
            return proposal["value"]         # loaded (_start)
        return self._check_input(proposal["trait"].name, proposal["value"])

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
