"""AttractorViewer: thousands of trajectories of any catalogue system, live in the browser.

The state is declared once (:data:`INPUTS`, :data:`OUTPUTS`); :class:`AttractorController`
turns input changes into outputs by calling the pure functions of
:mod:`labkit.widgets._attractor_data`; :class:`AttractorViewer` is the anywidget view
(ES module ``widgets/attractor.js``) and :func:`attractor_app` the same module in a Panel
app. The Lyapunov spectrum and orbit diagram panels are computed on a background thread,
so the kernel stays responsive and a newer request supersedes an older one.

The viewer can also show *given* trajectories instead of a catalogue system
(:meth:`AttractorViewer.from_series`, :meth:`AttractorController.show_series`): a true
series beside a model's free run, overlaid in their own colours or coloured by a
per-sample code (an AL-RNN's symbolic code), with a metric ``readout`` line. In that
"series" mode the catalogue controls are hidden and changes of the catalogue inputs are
kept for :meth:`AttractorController.show_system`, which returns to the catalogue.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import anywidget
import numpy as np
import traitlets

from labkit.errors import ConfigError, LabkitError
from labkit.widgets._assets import widget_asset
from labkit.widgets._attractor_data import (
    COLOR_MODES,
    NO_CODE,
    PALETTE_SIZE,
    SERIES_COLOR_MODES,
    AttractorData,
    attractor_view,
    default_orbit_parameter,
    orbit_view,
    parameter_specs,
    spectrum_view,
    viewer_systems,
)
from labkit.widgets._series_view import series_view
from labkit.widgets._toolkits import AnyWidgetState, finite_or_none, traitlet_fields
from labkit.widgets._worker import LatestJobWorker

__all__ = ["INPUTS", "OUTPUTS", "AttractorController", "AttractorViewer"]

#: Inputs (set by the browser or by Python) and their defaults. A change of any of the
#: first group re-integrates; ``speed``, ``tail`` and ``playing`` only change the animation;
#: ``orbit_parameter`` recomputes the orbit diagram. ``hidden`` (names of given series not
#: drawn) and ``color_by`` repack given series.
INPUTS: dict[str, Any] = {
    "system": "Lorenz", "parameters": {}, "n_ic": 256, "periods": 10.0, "samples": 800,
    "color_by": "time", "seed": 0, "device": "auto",
    "speed": 1.0, "tail": 60, "playing": True,
    "orbit_parameter": "", "panels": True, "hidden": [],
}
REINTEGRATE = ("system", "parameters", "n_ic", "periods", "samples", "color_by", "seed", "device")
#: Outputs (set by Python only).
OUTPUTS: dict[str, Any] = {
    "systems": [], "param_specs": [], "kind": "flow",
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


class AttractorController:
    """The viewer's behaviour, independent of the widget toolkit.

    Subclasses provide ``_get(name)`` and ``_set(values)`` (set several state fields at
    once; ``version`` last), and call :meth:`_start` once and :meth:`_changed` for each
    changed input.
    """

    _get: Callable[[str], Any]
    _set: Callable[[dict[str, Any]], None]

    def _start(self, series: Mapping[str, Any] | None = None, **series_options: Any) -> None:
        self.data: AttractorData | None = None
        self._quiet = False
        self._worker = LatestJobWorker(self._panels, "labkit-attractor")
        self._series: dict[str, Any] = {}
        system = self._get("system")
        self._set({"systems": viewer_systems()})
        self._load_system(system, keep_parameters=True)
        if series is not None:
            self.show_series(series, **series_options)
            return
        self._integrate()
        self._request_panels()

    # ---- inputs -------------------------------------------------------------------------
    def _changed(self, name: str, old: Any, new: Any) -> None:
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
                    self._set({"system": old, "message": str(exc)})
                finally:
                    self._quiet = False
                return
        if name in REINTEGRATE:
            self._integrate()
            self._request_panels()
        elif name == "orbit_parameter" or (name == "panels" and new):
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
            self._set({"system": canonical, "param_specs": specs, "parameters": values,
                       "orbit_parameter": orbit})
        finally:
            self._quiet = False

    def _settings(self) -> dict[str, Any]:
        return {name: self._get(name) for name in INPUTS}

    # ---- the main view ------------------------------------------------------------------
    def _integrate(self) -> None:
        s = self._settings()
        self._set({"busy": "integrating…"})
        try:
            data = attractor_view(s["system"], parameters=s["parameters"], n_ic=s["n_ic"],
                                  periods=s["periods"], samples=s["samples"],
                                  color_by=s["color_by"], seed=s["seed"], device=s["device"])
        except LabkitError as exc:
            self._set({"busy": "", "message": str(exc)})
            return
        self.data = data
        n, t = data.colors.shape
        self._set({
            "positions": data.positions.tobytes(), "colors": data.colors.tobytes(),
            "valid": data.valid.tobytes(), "shape": [n, t], "kind": data.kind,
            "bounds": [float(v) for v in data.bounds.flatten()],
            "var_names": list(data.var_names), "t_end": float(data.t[-1]), "dt": data.dt,
            "color_range": list(data.color_range), "color_label": data.color_by,
            "seconds": round(data.seconds, 3), "message": data.message, "busy": "",
            "version": self._get("version") + 1,
        })

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
        self._series = {"series": series, "codes": codes, "chunks": chunks, "dt": dt}
        values: dict[str, Any] = {"mode": "series", "series_names": list(data.series),
                                  "color_by": mode, "busy": ""}
        if readout is not None:
            values["readout"] = str(readout)
        self._quiet = True
        try:
            self._set(values)
        finally:
            self._quiet = False
        self._publish(data)

    def show_system(self) -> None:
        """Back from given series to the catalogue system (re-integrated with the current
        inputs)."""
        color = self._get("color_by")
        self._series = {}
        self._quiet = True
        try:
            self._set({"mode": "system", "series_names": [], "legend": [], "readout": "",
                       "color_by": color if color in COLOR_MODES else "time"})
        finally:
            self._quiet = False
        self._load_system(self._get("system"), keep_parameters=True)
        self._integrate()
        self._request_panels()

    def _pack(self) -> None:
        s = self._series
        try:
            data = series_view(s["series"], codes=s["codes"], color_by=self._get("color_by"),
                               hidden=self._get("hidden"), chunks=s["chunks"], dt=s["dt"])
        except LabkitError as exc:
            self._set({"message": str(exc)})
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
        self.data = data
        n, t = data.colors.shape
        self._set({
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
        params = s["parameters"]
        self._set({"spectrum": {}, "orbit": {}, "orbit_points": b""})
        try:
            spec = spectrum_view(s["system"], parameters=params, device=s["device"])
            spectrum = {"exponents": spec.exponents, "stderr": spec.stderr,
                        "kaplan_yorke": finite_or_none(spec.kaplan_yorke), "time": spec.time,
                        "n_ics": spec.n_ics, "message": spec.message}
        except LabkitError as exc:
            spectrum = {"exponents": [], "stderr": [], "message": str(exc)}
        if self._stale(generation):
            return
        self._set({"spectrum": spectrum})
        if not s["orbit_parameter"]:
            self._set({"orbit": {"message": "this system has no scalar parameter"}})
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
        self._set({"orbit_points": points, "orbit": orbit})

    def wait(self, timeout: float = 120.0) -> bool:
        """Block until the panels are computed (for scripts and tests); True when idle."""
        return self._worker.wait(timeout)

    # ---- static view ---------------------------------------------------------------------
    def figure(self, *, max_lines: int = 64) -> Any:
        """The current view as a static plotly figure (for papermill and HTML reports)."""
        from labkit.widgets._plots import attractor_figure

        if self.data is None:
            raise LabkitError("nothing integrated yet")
        given = self._series.get("series") or {}
        if self._get("mode") == "series" and len(given) >= 2:
            from labkit.widgets._reconstruction_plots import reconstruction_figure

            (a, xa), (b, xb) = list(given.items())[:2]
            return reconstruction_figure(xa, xb, names=(a, b))
        return attractor_figure(self.data, max_lines=max_lines)


class AttractorViewer(AnyWidgetState, anywidget.AnyWidget, AttractorController):
    """Live view of an ensemble of a catalogue flow or map (JupyterLab, Notebook, VS Code).

    Thousands of trajectories are animated from float32 buffers with WebGL (fading comet
    tails), coloured by time, speed or local expansion rate. The system (with search),
    parameters, number of trajectories, length, speed and tail are controls; every change
    re-integrates in the kernel (on CUDA when present). Linked panels show a time series,
    the Lyapunov spectrum with error bars and an orbit diagram with the current value
    marked. Diverged trajectories are drawn in red and named in a message.

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
        viewer.parameters = {**viewer.parameters, "rho": 99.0}  # redraws
        viewer.figure()  # the same view as a static plotly figure
        pair = AttractorViewer.from_series({"truth": x_true, "model": x_model},
                                           codes={"model": codes}, readout="D_stsp 0.41")

    Keyword arguments are the state fields of :data:`INPUTS`; ``series`` and the keyword
    arguments of :meth:`show_series` (``codes``, ``readout``, ``chunks``, ``dt``) start in
    series mode.
    """

    _esm = widget_asset("attractor.js")
    _css = widget_asset("attractor.css")

    locals().update(traitlet_fields({**INPUTS, **OUTPUTS}))

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
        super().__init__(**kwargs)
        self._start(series, **given)
        self.observe(lambda change: self._changed(change["name"], change["old"],
                                                  change["new"]), names=list(INPUTS))

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
        if not 1 <= proposal["value"] <= 8192:
            raise traitlets.TraitError(f"n_ic must be in [1, 8192], got {proposal['value']!r}")
        return proposal["value"]

    @traitlets.validate("periods")
    def _check_periods(self, proposal: Any) -> float:
        if not 0.01 <= proposal["value"] <= 1e4:
            raise traitlets.TraitError(f"periods must be in [0.01, 1e4], got "
                                       f"{proposal['value']!r}")
        return proposal["value"]
