"""SymmetryDashboard: watch LieGAN discover a symmetry, live, and probe what it found.

The state is declared once (:data:`INPUTS`, :data:`OUTPUTS`); :class:`SymmetryController`
runs LieGAN through :func:`labkit.core.train.fit` on a background thread (stopped by a
``threading.Event``) and publishes its generators and history at a throttled rate, so the
kernel stays responsive; a second background worker fits LieGG's regressor and computes
the singular-value spectrum and the equivariance-error curve. Payloads come from the pure
functions of :mod:`labkit.widgets._symmetry_data`. :class:`SymmetryDashboard` is the
anywidget view (ES module ``widgets/symmetry.js``) and
:func:`~labkit.widgets._symmetry_panel.symmetry_app` the same module in a Panel app.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import anywidget
import numpy as np
import torch
import traitlets

from labkit.errors import ConfigError, LabkitError
from labkit.widgets._assets import widget_module, widget_style
from labkit.widgets._symmetry_data import (
    equivariance_curve,
    heatmap_payload,
    orbit_at,
    orbit_payload,
    spectrum_payload,
    trace_payload,
    unit_generator,
)
from labkit.widgets._toolkits import AnyWidgetState, finite_or_none, traitlet_fields
from labkit.widgets._worker import LatestJobWorker

if TYPE_CHECKING:
    from labkit.core.train import History

__all__ = ["DATASETS", "INPUTS", "OUTPUTS", "SymmetryController", "SymmetryDashboard"]

#: The data sets of :mod:`labkit.symmetry` the dashboard offers, by name.
DATASETS = ("so2_invariant", "two_body", "o5_invariant", "lorentz_invariant",
            "anisotropic_control")

#: Inputs (set by the browser or by Python) and their defaults. ``running`` starts (True)
#: and stops (False) training; each increment of ``resets`` resets it. ``config`` holds
#: :class:`~labkit.symmetry.LieGANConfig` fields. The ``orbit_*`` fields drive the
#: orbit explorer, ``model`` the equivariance curve.
INPUTS: dict[str, Any] = {
    "dataset": "so2_invariant", "config": {}, "seed": 0, "device": "auto",
    "running": False, "resets": 0, "publish_every": 0.2,
    "orbit_t": 0.0, "orbit_source": "learned", "orbit_generator": 0, "orbit_axes": [0, 1],
    "orbit_n": 48, "model": "regressor", "analysis": True,
}
RELOAD = ("dataset", "config", "seed", "device")
ORBIT = ("orbit_source", "orbit_generator", "orbit_axes", "orbit_n")
#: Outputs (set by Python only).
OUTPUTS: dict[str, Any] = {
    "datasets": [], "description": "", "kind": "", "n": 0, "dim": 0,
    "status": "idle", "step": 0, "total": 0, "seconds": 0.0,
    "heatmap": {}, "traces": {}, "orbit": {}, "orbit_points": b"",
    "models": [], "curve": {}, "spectrum": {}, "verdict": {},
    "message": "", "busy": "", "version": 0,
}

#: Samples of the data used for the equivariance curve.
CURVE_SAMPLES = 256


def _load_dataset(name: str, seed: int) -> Any:
    import labkit.symmetry

    if name not in DATASETS:
        raise ConfigError(f"unknown data set {name!r}; choose one of {list(DATASETS)}")
    return getattr(labkit.symmetry, name)(seed=seed)


class SymmetryController:
    """The dashboard's behaviour, independent of the widget toolkit.

    Subclasses provide ``_get(name)`` and ``_set(values)`` (set several state fields at
    once; ``version`` last), and call :meth:`_start` once and :meth:`_changed` for each
    changed input. Extra models for the equivariance curve are callables ``f(x) -> y`` in
    ``self._models`` (name -> callable) before :meth:`_start`.
    """

    _get: Callable[[str], Any]
    _set: Callable[[Mapping[str, Any]], None]
    _models: dict[str, Callable[[torch.Tensor], torch.Tensor]]

    def _start(self, data: Any = None) -> None:
        self._lock = threading.RLock()      # one writer of the state at a time
        self._train_lock = threading.Lock()  # one training thread at a time
        self._stop_event = threading.Event()
        self._train_thread: threading.Thread | None = None
        self._worker = LatestJobWorker(self._analyse_safely, "labkit-liegg")
        self._regressors: dict[tuple[str, int], Any] = {}
        self._given = data
        self.data: Any = None
        self.trainer: Any = None
        self.result: Any = None
        self.liegg_result: Any = None
        self._liegg_key: tuple[str, int] | None = None
        self.fit_result: Any = None
        self._last_publish = 0.0
        names = list(DATASETS)
        if data is not None:
            names = [data.name, *[n for n in names if n != data.name]]
            self._quiet_set({"dataset": data.name})
        self._publish({"datasets": names,
                       "models": ["regressor", *[m for m in self._models if m != "regressor"]]})
        self._load()

    # ---- state writes ------------------------------------------------------------------
    def _publish(self, values: Mapping[str, Any], *, bump: bool = False) -> None:
        with self._lock:
            values = dict(values)
            if bump:
                values["version"] = self._get("version") + 1
            self._set(values)

    def _quiet_set(self, values: Mapping[str, Any]) -> None:
        """Set inputs without reacting to them (the controller's own corrections)."""
        with self._lock:
            self._quiet_thread = threading.get_ident()
            try:
                self._set(values)
            finally:
                self._quiet_thread = None

    # ---- inputs --------------------------------------------------------------------------
    def _changed(self, name: str, old: Any, new: Any) -> None:
        if getattr(self, "_quiet_thread", None) == threading.get_ident():
            return
        if name == "running":
            self.start() if new else self.stop()
        elif name == "resets":
            self.reset()
        elif name in RELOAD:
            if name == "dataset" and new not in self._get("datasets"):
                self._quiet_set({"dataset": old})
                self._publish({"message": f"unknown data set {new!r}; choose one of "
                                          f"{self._get('datasets')}"})
                return
            self._load()
        elif name in ORBIT:
            self._publish_orbit()
        elif name == "model":
            self._request_analysis()
        elif name == "analysis" and new:
            self._request_analysis()

    # ---- data and trainer ------------------------------------------------------------------
    def _config(self) -> Any:
        from labkit.symmetry import LieGANConfig

        try:
            return LieGANConfig(**dict(self._get("config") or {}))
        except TypeError as exc:
            raise ConfigError(f"config: {exc}") from None

    def _load(self) -> None:
        """(Re)load the data set and a fresh trainer; stops a run in progress."""
        self._halt()
        name, seed = self._get("dataset"), self._get("seed")
        try:
            given = self._given
            data = given if given is not None and given.name == name else _load_dataset(name, seed)
            config = self._config()
        except LabkitError as exc:
            self._publish({"message": str(exc), "status": "error"}, bump=True)
            return
        self.data = data
        self.liegan_config = config
        self.result = None
        self._new_trainer()
        self._publish({
            "description": getattr(data, "description", "") or "",
            "kind": getattr(data, "kind", "") or "", "n": int(data.n),
            "dim": int(np.asarray(data.x).shape[-1]), "message": "",
            "spectrum": {}, "curve": {},
        })
        self._publish_training(final=False)
        self._publish_orbit()
        self._request_analysis()

    def _new_trainer(self) -> None:
        from labkit.symmetry import LieGAN

        self.trainer = LieGAN(self.data, self.liegan_config, seed=self._get("seed"),
                              device=self._get("device"))
        self.history: History = self.trainer.history
        self.fit_result = None
        self._done = False
        self.result = None
        self._next_step = 0
        self._seconds = 0.0
        self._stop_event = threading.Event()
        self._publish({"status": "idle", "step": 0, "total": int(self.liegan_config.steps),
                       "seconds": 0.0, "verdict": {}})

    # ---- start / stop / reset ------------------------------------------------------------------
    def start(self) -> None:
        """Train in the background (resumes after :meth:`stop`; restarts a finished run)."""
        with self._train_lock:
            if self._train_thread is not None and self._train_thread.is_alive():
                return
            if self.trainer is None:
                return
            if self._done or self._next_step >= self.liegan_config.steps:
                self._new_trainer()
            self._stop_event = threading.Event()
            self._train_thread = threading.Thread(target=self._train, name="labkit-liegan",
                                                  daemon=True)
            self._publish({"status": "running", "message": ""})
            self._quiet_set({"running": True})
            self._train_thread.start()

    def stop(self) -> None:
        """Ask the run to stop after its current step (returns at once)."""
        self._stop_event.set()
        if self._train_thread is not None and self._train_thread.is_alive():
            self._publish({"status": "stopping"})

    def reset(self) -> None:
        """Stop the run and start over with a fresh trainer and history."""
        self._halt()
        if self.data is None:
            return
        self._new_trainer()
        self._publish_training(final=False)
        self._publish_orbit()
        self._request_analysis()

    def _halt(self, timeout: float = 60.0) -> None:
        self._stop_event.set()
        thread = self._train_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._quiet_set({"running": False})

    def _train(self) -> None:
        from labkit.core.train import fit

        offset, trainer, history, cfg = self._next_step, self.trainer, self.history, self.liegan_config
        began = time.perf_counter() - self._seconds
        early = cfg.early_stop and self._reference() is not None

        def record(i: int, metrics: dict[str, float], _segment: Any) -> None:
            history.append(offset + i, metrics, time.perf_counter() - began)
            self._next_step = offset + i + 1
            now = time.perf_counter()
            if now - self._last_publish >= float(self._get("publish_every")):
                self._last_publish = now
                self._seconds = now - began
                self._publish_training(final=False)

        def found(i: int, metrics: dict[str, float], _segment: Any) -> bool:
            return early and "cosine" in metrics and trainer.found()

        status, message = "error", ""
        self._note = ""
        try:
            res = fit(lambda i: trainer.step(offset + i), int(cfg.steps) - offset,
                      callbacks=[record, found], stop=self._stop_event, on_nan="stop")
            status, message = res.status, res.message
            if status == "stopped" and not self._stop_event.is_set():  # early stop
                status = "finished"
                message = ""
                self._note = (f"stopped early at step {self._next_step}: the cosine stayed "
                              f">= {cfg.threshold} for {cfg.window} evaluations.")
            self.fit_result = res
        except Exception as exc:  # shown in the dashboard; the kernel must not lose it silently
            message = f"{type(exc).__name__}: {exc}"
        self._seconds = time.perf_counter() - began
        if trainer is not self.trainer:  # reset while stopping
            return
        if status == "finished":
            self._done = True
            try:
                self.result = trainer.result(seconds=self._seconds)
            except Exception as exc:
                message = f"result failed: {type(exc).__name__}: {exc}"
        self._publish_training(final=True)
        self._publish({"status": status, "message": message, "verdict": self._verdict()},
                      bump=True)
        self._quiet_set({"running": False})
        self._publish_orbit()
        self._request_analysis()

    # ---- payloads --------------------------------------------------------------------------
    def generators(self) -> np.ndarray:
        """The learned generators now, ``[k, n, n]``."""
        gens = self.trainer.generators()
        return np.asarray(gens.detach().cpu() if isinstance(gens, torch.Tensor) else gens,
                          dtype=np.float64)

    def _reference(self) -> np.ndarray | None:
        ref = getattr(self.data, "reference", None)
        if ref is None:
            return None
        return np.asarray(ref.detach().cpu() if isinstance(ref, torch.Tensor) else ref,
                          dtype=np.float64)

    def _publish_training(self, *, final: bool) -> None:
        if self.trainer is None:
            return
        cfg = self.liegan_config
        traces = trace_payload(self.history.snapshot(), threshold=float(cfg.threshold),
                               window=int(cfg.window))
        heat = heatmap_payload(self.generators(), self._reference(),
                               threshold=float(cfg.threshold))
        values: dict[str, Any] = {"heatmap": heat, "traces": traces, "step": self._next_step,
                                  "seconds": round(self._seconds, 3)}
        self._publish(values, bump=True)
        if not final and self._get("orbit_source") == "learned":
            self._publish_orbit()

    def _verdict(self) -> dict[str, Any]:
        r = self.result
        if r is None:
            return {}
        v = r.verdict
        scores = {k: _json_number(val) for k, val in dict(getattr(r, "scores", {}) or {}).items()}
        return {"symmetric": bool(v.symmetric), "label": str(v.label), "reason": str(v.reason),
                "note": getattr(self, "_note", ""),
                "sustained_step": None if v.sustained_step is None else int(v.sustained_step),
                "scores": scores}

    def _orbit_generator(self) -> tuple[np.ndarray, str]:
        ref = self._reference()
        idx = int(self._get("orbit_generator"))
        if self._get("orbit_source") == "reference" and ref is not None:
            return ref[idx % len(ref)], "reference"
        gens = self.generators()
        return gens[idx % len(gens)], "learned"

    def orbit_sample(self) -> np.ndarray:
        """The data points the orbit explorer moves, ``[P, D]``."""
        x = np.asarray(self.data.x, dtype=np.float64)
        return x[: max(1, int(self._get("orbit_n")))]

    def orbit_points_at(self, t: float | None = None) -> np.ndarray:
        """``exp(t L) x`` for the explorer's points and generator (``t`` defaults to
        ``orbit_t``), ``[P, D]``."""
        generator, _ = self._orbit_generator()
        at: float = self._get("orbit_t") if t is None else t
        return orbit_at(self.data.rep, self.orbit_sample(), unit_generator(generator), at)

    def _publish_orbit(self) -> None:
        if self.data is None or self.trainer is None:
            return
        try:
            generator, source = self._orbit_generator()
            meta, points = orbit_payload(self.data.rep, self.orbit_sample(),
                                         unit_generator(generator),
                                         axes=self._get("orbit_axes"))
        except LabkitError as exc:
            self._publish({"orbit": {"message": str(exc)}, "orbit_points": b""})
            return
        meta["source"] = source
        self._publish({"orbit_points": points, "orbit": meta})

    # ---- LieGG and the equivariance curve on a background worker ---------------------------
    def _request_analysis(self) -> None:
        if not self._get("analysis") or self.data is None:
            return
        learned = None
        if self.trainer is not None and self._next_step > 0:
            learned, _ = self._orbit_generator() if self._get("orbit_source") == "learned" \
                else (self.generators()[0], "learned")
        self._worker.submit({"data": self.data, "model": self._get("model"),
                             "seed": self._get("seed"), "learned": learned})

    def _stale(self, generation: int) -> bool:
        return self._worker.stale(generation)

    def _analyse_safely(self, generation: int, job: dict[str, Any]) -> None:
        try:
            self._analyse(generation, job)
        except Exception as exc:  # shown in the panels, never lost in a thread
            if not self._stale(generation):
                msg = f"{type(exc).__name__}: {exc}"
                self._publish({"spectrum": {"message": msg}, "curve": {"message": msg}})

    def _regressor(self, data: Any, seed: int) -> Any:
        key = (data.name, seed)
        if key not in self._regressors:
            from labkit.symmetry import train_regressor

            self._regressors[key] = train_regressor(data, seed=seed).model
        return self._regressors[key]

    def _analyse(self, generation: int, job: dict[str, Any]) -> None:
        data, name, seed = job["data"], job["model"], job["seed"]
        regressor = None
        if getattr(data, "y", None) is None:
            spectrum: dict[str, Any] = {"message": "LieGG needs a regression target y; "
                                                   "this data set has none"}
        else:
            self._publish({"busy": "LieGG: fitting a regressor…"})
            try:
                regressor = self._regressor(data, seed)
                spectrum = self._spectrum(regressor, data, seed)
            except Exception as exc:  # shown in the panel, never lost in a thread
                spectrum = {"message": f"LieGG failed: {type(exc).__name__}: {exc}"}
        if self._stale(generation):
            return
        self._publish({"spectrum": spectrum, "busy": "equivariance curve…"})
        model = regressor if name == "regressor" else self._models.get(name)
        if model is None:
            why = "no regressor (see the LieGG panel)" if name == "regressor" else \
                f"no model {name!r}; models: {self._get('models')}"
            self._publish({"curve": {"message": why}, "busy": ""}, bump=True)
            return
        gens: dict[str, Any] = {}
        ref = self._reference()
        if ref is not None:
            gens["truth"] = ref[0]
        if job["learned"] is not None:
            gens["learned"] = job["learned"]
        n = int(data.n)
        gens["random direction"] = np.random.default_rng(seed).standard_normal((n, n))
        x = np.asarray(data.x, dtype=np.float64)[:CURVE_SAMPLES]
        try:
            curve = equivariance_curve(_as_float64_model(model), data.rep, x, gens)
            curve["model"] = name
        except Exception as exc:
            curve = {"message": f"{name}: {type(exc).__name__}: {exc}"}
        if self._stale(generation):
            return
        self._publish({"curve": curve, "busy": ""}, bump=True)

    def _spectrum(self, regressor: Any, data: Any, seed: int) -> dict[str, Any]:
        from labkit.symmetry import liegg

        key = (data.name, seed)
        if self.liegg_result is None or self._liegg_key != key:
            self.liegg_result = liegg(regressor, data, seed=seed)
            self._liegg_key = key
        res = self.liegg_result
        k = None if res.generators is None else int(np.asarray(res.generators).shape[0])
        return spectrum_payload(np.asarray(res.singular_values), n_symmetries=k)

    # ---- scripts and tests ------------------------------------------------------------------
    def wait(self, timeout: float = 120.0) -> bool:
        """Block until training has ended and the analysis is done; True when idle."""
        deadline = time.monotonic() + timeout
        thread = self._train_thread
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                return False
        return self._worker.wait(deadline - time.monotonic())

    # ---- static view --------------------------------------------------------------------------
    def figure(self) -> Any:
        """The dashboard's panels as one static plotly figure (for HTML reports)."""
        return symmetry_figure(self._get("heatmap"), self._get("traces"), self._get("curve"),
                               self._get("spectrum"), orbit=self._static_orbit())

    def _static_orbit(self) -> dict[str, Any] | None:
        if self.data is None or self.trainer is None:
            return None
        start = self.orbit_points_at(0.0)
        now = self.orbit_points_at()
        axes = list(self._get("orbit_axes"))
        return {"start": start[:, axes], "now": now[:, axes], "t": self._get("orbit_t")}


def _json_number(value: Any) -> Any:
    try:
        return finite_or_none(value)
    except (TypeError, ValueError):
        return str(value)


def _as_float64_model(model: Callable[..., Any]) -> Callable[[torch.Tensor], torch.Tensor]:
    """``model`` fed in its own parameter dtype and device, answering in float64 on the CPU."""
    params = list(model.parameters()) if isinstance(model, torch.nn.Module) else []
    dtype = params[0].dtype if params else torch.float64
    device = params[0].device if params else torch.device("cpu")

    def f(x: torch.Tensor) -> torch.Tensor:
        out = torch.as_tensor(model(x.to(device, dtype)))
        return out.to("cpu", torch.float64)

    return f


def symmetry_figure(heatmap: Mapping[str, Any], traces: Mapping[str, Any],
                    curve: Mapping[str, Any], spectrum: Mapping[str, Any], *,
                    orbit: Mapping[str, Any] | None = None) -> Any:
    """A static plotly figure of the dashboard's payloads: the first learned generator and
    its reference, the cosine trace with threshold and sustained crossing, the GAN losses,
    the orbit, the equivariance curve and the LieGG spectrum."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=4, subplot_titles=(
        "learned generator", "ground truth", "cosine to the truth", "GAN health",
        "orbit exp(tL)x", "equivariance error vs t", "LieGG singular values", ""))
    learned, reference = heatmap.get("learned") or [], heatmap.get("reference") or []
    for col, mats in ((1, learned), (2, reference)):
        if mats:
            fig.add_trace(go.Heatmap(z=mats[0], zmin=-1, zmax=1, colorscale="RdBu_r",
                                     showscale=col == 2), row=1, col=col)
            fig.update_yaxes(autorange="reversed", tickmode="linear", tick0=0, dtick=1,
                             row=1, col=col)  # matrix axes: integer indices only
            fig.update_xaxes(tickmode="linear", tick0=0, dtick=1, row=1, col=col)
    if traces.get("cosine_steps"):
        fig.add_trace(go.Scatter(x=traces["cosine_steps"], y=traces["cosine"], name="cosine"),
                      row=1, col=3)
# plotly's add_hline/add_vline leave row/col unannotated, so they read as str (their
        # default is 'all'); they take subplot numbers. Hence the ignores below.
        fig.add_hline(y=traces["threshold"], line_dash="dash", row=1, col=3)  # pyright: ignore[reportArgumentType]
        if traces.get("sustained_step") is not None:
            fig.add_vline(x=traces["sustained_step"], line_color="green", row=1, col=3)  # pyright: ignore[reportArgumentType]
    for name in ("loss_d", "loss_g", "reg_ortho", "reg_nontrivial"):
        if traces.get(name):
            fig.add_trace(go.Scatter(x=traces["steps"], y=traces[name], name=name),
                          row=1, col=4)
    if orbit is not None:
        fig.add_trace(go.Scatter(x=orbit["start"][:, 0], y=orbit["start"][:, 1],
                                 mode="markers", name="x"), row=2, col=1)
        fig.add_trace(go.Scatter(x=orbit["now"][:, 0], y=orbit["now"][:, 1], mode="markers",
                                 name=f"exp({orbit['t']:.2f} L) x"), row=2, col=1)
    for name, c in (curve.get("curves") or {}).items():
        fig.add_trace(go.Scatter(x=curve["t"], y=c["mean"], name=f"error: {name}"),
                      row=2, col=2)
    if spectrum.get("values"):
        values = spectrum["values"]
        fig.add_trace(go.Bar(x=list(range(len(values))), y=values, name="singular values"),
                      row=2, col=3)
        fig.update_yaxes(type="log", row=2, col=3)
        if spectrum.get("gap") is not None:  # row/col ignore: see add_hline above
            fig.add_vline(x=spectrum["gap"] - 0.5, line_dash="dot", line_color="red",
                          row=2, col=3)  # pyright: ignore[reportArgumentType]
    fig.update_layout(height=620, margin={"l": 30, "r": 10, "t": 40, "b": 30})
    return fig


class SymmetryDashboard(AnyWidgetState, anywidget.AnyWidget, SymmetryController):
    """Watch LieGAN discover a symmetry and probe the result (JupyterLab, Notebook, VS Code).

    Training runs on a background thread, so the kernel stays responsive; the front end
    shows the learned generators as heatmaps beside the ground truth with cosine badges,
    the cosine trace with the threshold and the first sustained crossing, the GAN's
    losses and regularizers, an orbit explorer (a slider moves data points along
    :math:`\\exp(tL)x`), a model's equivariance error against the transformation size,
    and LieGG's singular-value spectrum with its gap. Start/stop/reset are buttons, or:

    Example::

        from labkit.widgets import SymmetryDashboard
        dash = SymmetryDashboard(dataset="so2_invariant", config={"steps": 400})
        dash            # in a notebook cell
        dash.start()    # or the ▶ button; the kernel stays free
        dash.wait(); dash.result.verdict
        dash.figure()   # the same panels as a static plotly figure

    Keyword arguments are the state fields of :data:`INPUTS`, plus ``data`` (a
    :class:`~labkit.symmetry.SymmetryData` of your own, e.g. from
    :meth:`~labkit.symmetry.SymmetryData.from_array`) and ``models`` (name ->
    callable ``f(x) -> y``, offered for the equivariance curve).
    """

    _esm = widget_module("symmetry")
    _css = widget_style("symmetry")

    locals().update(traitlet_fields({**INPUTS, **OUTPUTS}))

    def __init__(self, *, data: Any = None,
                 models: Mapping[str, Callable[[torch.Tensor], torch.Tensor]] | None = None,
                 **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - set(INPUTS))
        if unknown:
            raise ConfigError(f"unknown SymmetryDashboard option(s) {unknown}; options: "
                              f"{sorted(INPUTS)} and data, models")
        running = bool(kwargs.pop("running", False))
        super().__init__(**kwargs)
        self._models = dict(models or {})
        self._start(data)
        self.observe(lambda change: self._changed(change["name"], change["old"],
                                                  change["new"]), names=list(INPUTS))
        if running:
            self.start()

    @traitlets.validate("orbit_source")
    def _check_orbit_source(self, proposal: Any) -> str:
        if proposal["value"] not in ("learned", "reference"):
            raise traitlets.TraitError(f"orbit_source must be 'learned' or 'reference', got "
                                       f"{proposal['value']!r}")
        return proposal["value"]

    @traitlets.validate("publish_every")
    def _check_publish_every(self, proposal: Any) -> float:
        if not 0.02 <= proposal["value"] <= 10:
            raise traitlets.TraitError(f"publish_every must be in [0.02, 10] s, got "
                                       f"{proposal['value']!r}")
        return proposal["value"]
