"""What the attractor viewer shows, computed by pure functions (no UI library here).

:func:`attractor_view` integrates an ensemble of a catalogue system and packs it for the
browser: float32 positions ``[n_ic, n_time, 3]``, a colour value per sample in ``[0, 1]``,
the number of finite samples per trajectory, and a message naming diverged trajectories.
:func:`spectrum_view` and :func:`orbit_view` compute the linked panels. The live
:class:`~labkit.widgets.AttractorViewer` streams its ensemble instead
(:mod:`labkit.widgets._attractor_stream`), from the same initial conditions, step, sampling
and colour values as :func:`attractor_view` (its first picture is that view), so what a
report shows is what the live widget shows.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from labkit.core.device import resolve_device
from labkit.core.integrate import rk4, rk4_step
from labkit.core.rng import make_generator
from labkit.dynamics import (
    System,
    get_system,
    kaplan_yorke_dimension,
    list_systems,
    local_maxima,
    lyapunov_spectrum,
)
from labkit.errors import ConfigError, DivergenceError

__all__ = [
    "COLOR_MODES",
    "NO_VARIABLE",
    "NO_CODE",
    "PALETTE_SIZE",
    "SERIES_COLOR_MODES",
    "AttractorData",
    "OrbitData",
    "SpectrumData",
    "as_system",
    "attractor_view",
    "check_span",
    "check_variables",
    "color_quantity",
    "default_orbit_parameter",
    "default_variables",
    "drawn_names",
    "integration_step",
    "orbit_view",
    "parameter_specs",
    "spectrum_view",
    "viewer_systems",
]

#: How samples can be coloured: by time along the trajectory, by speed ``|f(y)|``, or by
#: the local expansion rate (largest eigenvalue of the symmetric part of the Jacobian for
#: a flow, log of the largest singular value of the Jacobian for a map).
COLOR_MODES = ("time", "speed", "expansion")
#: How given series (:func:`series_view`) can be coloured: one colour per series, by time
#: along each series, or by a per-sample integer code (an AL-RNN's symbolic code).
SERIES_COLOR_MODES = ("series", "time", "codes")
#: Distinct colours of the browser's discrete palette: series ``i`` and code ``k`` are drawn
#: in colour ``i mod PALETTE_SIZE`` / ``k mod PALETTE_SIZE``; :data:`NO_CODE` (grey) is a
#: series without codes in the ``"codes"`` mode. A colour value ``v >= PALETTE_OFFSET``
#: means palette entry ``v - PALETTE_OFFSET`` (values in ``[0, 1]`` are the colour ramp).
PALETTE_SIZE = 10
NO_CODE = PALETTE_SIZE
PALETTE_OFFSET = 2.0

#: RK4 steps per dominant period for display (and the cap, in multiples of dysts' own
#: step, for systems whose fastest time scale is much shorter than their period).
STEPS_PER_PERIOD = 200
MAX_STEP_FACTOR = 25
#: Largest local error per step, relative to the state's size, allowed for display.
STEP_LOCAL_RTOL = 1e-5
#: Periods integrated from the default state before initial conditions are drawn (a flow)
#: and iterations for a map.
TRANSIENT_PERIODS = 5.0
MAP_TRANSIENT = 500
#: Relative size of the perturbation added to each initial condition.
IC_JITTER = 1e-3
#: Limits that keep one update within what a browser and a comm message handle well.
MAX_IC = 8192
MAX_SAMPLES = 4000
MAX_BUFFER_FLOATS = 24_000_000  # 96 MB of float32 positions


#: What a colour value is, per colour mode, for a flow and for a map: the colour bar's
#: title (see :func:`_color_values`; times are since the picture's change began).
COLOR_QUANTITIES = {
    "time": ("time since the change", "iterations since the change"),
    "speed": ("speed |f(y)|", "distance per iteration |y(n+1) - y(n)|"),
    "expansion": ("local expansion rate: top eigenvalue of (J + J^T)/2",
                  "log stretching of the map: log of J's largest singular value"),
}
#: Marks a drawn axis with no variable (systems of fewer than three variables; drawn as 0).
NO_VARIABLE = -1


def color_quantity(kind: str, mode: str) -> str:
    """The colour bar's title: what colour ``mode`` shows for a ``kind`` (``"flow"``,
    ``"map"`` or ``"series"``) of system."""
    if kind == "series":
        return {"time": "time along each series", "series": "series",
                "codes": "symbolic code"}.get(mode, mode)
    flow, iterated = COLOR_QUANTITIES.get(mode, (mode, mode))
    return iterated if kind == "map" else flow


def default_variables(dim: int) -> list[int]:
    """The variables drawn first: the first three (:data:`NO_VARIABLE` pads a system of
    fewer)."""
    return [i if i < dim else NO_VARIABLE for i in range(3)]


def drawn_names(variables: Sequence[int]) -> tuple[str, str, str]:
    """Names of the three drawn variables: ``x<k>``, or ``"0"`` for an axis with none."""
    a, b, c = (f"x{k}" if k != NO_VARIABLE else "0" for k in variables)
    return a, b, c


def check_variables(variables: Any, dim: int) -> list[int]:
    """``variables`` as three ints: the state variables drawn on the x, y and z axes,
    distinct, each in ``[0, dim)``; a system of fewer than three variables has
    :data:`NO_VARIABLE` in the axes it cannot fill (``default_variables(dim)`` up to
    order).

    Raises:
        ConfigError: anything else, quoting it.
    """
    ok = (isinstance(variables, list | tuple) and len(variables) == 3
          and all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in variables))
    if ok:
        used = [int(v) for v in variables if v != NO_VARIABLE]
        ok = (len(set(used)) == len(used) == min(3, dim)
              and all(0 <= v < dim for v in used))
    if not ok:
        raise ConfigError(f"variables must be three distinct variable indices in [0, {dim}) "
                          f"(-1 for an axis a system of fewer than 3 variables cannot fill), "
                          f"got {variables!r}")
    return [int(v) for v in variables]


#: The parameter whose orbit diagram is shown first, for systems with a classic one
#: (Lorenz's rho: Sparrow 1982; Rossler's c: the period-doubling route, Rossler 1976;
#: Henon's a: Henon 1976; the logistic map's r: May 1976). Others: the first parameter.
ORBIT_PARAMETER = {"Lorenz": "rho", "Rossler": "c", "Henon": "a", "Logistic": "r"}


def as_system(system: str | System) -> System:
    """``system`` itself, or the catalogue's system of that name (case-insensitive; unknown
    names raise a :class:`ConfigError` listing the closest)."""
    return system if isinstance(system, System) else get_system(system)


def default_orbit_parameter(name: str | System) -> str:
    """The parameter the orbit-diagram panel starts with (``""`` when there is none)."""
    specs = [s["name"] for s in parameter_specs(name)]
    preferred = ORBIT_PARAMETER.get(as_system(name).name)
    return preferred if preferred is not None and preferred in specs else (specs[0] if specs else "")


def viewer_systems() -> list[str]:
    """The systems the viewer can show: every flow and map of the catalogue (sorted; flows
    first)."""
    return list_systems("flow") + list_systems("map")


def parameter_specs(name: str | System) -> list[dict[str, Any]]:
    """Slider specs ``{name, value, min, max, step}`` for a system's scalar parameters.

    The range is ``[0, 2 v]`` around a positive default ``v`` (``[2 v, 0]`` for a negative
    one, ``[-1, 1]`` around zero) in 200 steps: wide enough to cross the bifurcations of the
    classic systems (Lorenz ``rho`` from 0 to 56) and never changing the sign of a
    parameter by accident. Vector-valued parameters get no slider.
    """
    system = as_system(name)
    specs = []
    for key, value in system.parameters.items():
        if isinstance(value, tuple | list) or isinstance(value, bool):
            continue
        v = float(value)
        lo, hi = (0.0, 2 * v) if v > 0 else (2 * v, 0.0) if v < 0 else (-1.0, 1.0)
        specs.append({"name": key, "value": v, "min": lo, "max": hi, "step": (hi - lo) / 200})
    return specs


def integration_step(name: str | System) -> float:
    """The RK4 step the viewer uses for a flow (maps: 1).

    Starts from ``period / 200``, capped at 25 times dysts' own step, and halves it (never
    below dysts' step) until an orbit from the default state stays bounded over two
    periods and the local error of every step along it, estimated by step doubling (one
    step against two half steps, from each state of the orbit at once), is at most
    :data:`STEP_LOCAL_RTOL` of the state's size. Cached per system (default parameters).
    A user's system (:func:`labkit.dynamics.custom_system`) without a ``period`` gets its
    own ``dt``.
    """
    return _integration_step(as_system(name))


@functools.cache
def _integration_step(system: System) -> float:
    if system.kind == "map":
        return 1.0
    period = system.period or 100 * system.dt
    dt = min(period / STEPS_PER_PERIOD, MAX_STEP_FACTOR * system.dt)
    field = system.vector_field()
    y0 = system.default_state()[None]
    t0 = torch.zeros((), dtype=y0.dtype)
    while dt > system.dt:
        n = max(2, round(2 * period / dt))
        orbit = rk4(field, y0, (0.0, n * dt), dt)
        if not orbit.diverged.any():
            states = orbit.y[0]
            one = rk4_step(field, t0, states, dt)
            two = rk4_step(field, t0 + dt / 2, rk4_step(field, t0, states, dt / 2), dt / 2)
            err = ((one - two).norm(dim=-1) / states.norm(dim=-1).clamp_min(1.0)).max()
            if float(err) <= STEP_LOCAL_RTOL:
                return dt
        dt /= 2
    return system.dt


@dataclasses.dataclass(frozen=True)
class AttractorData:
    """One frame set for the viewer.

    Attributes:
        system: the system's name; ``kind`` ``"flow"`` or ``"map"``.
        parameters: the parameter values used.
        positions: ``[n_ic, n_time, 3]`` float32, the first three state variables (zero
            padded for 2-D maps); samples after a divergence repeat the last finite one.
        colors: ``[n_ic, n_time]`` float32 in ``[0, 1]`` (see :data:`COLOR_MODES`).
        valid: ``[n_ic]`` int32, the number of finite samples of each trajectory.
        diverged: ``[n_ic]`` bool; ``diverged_at`` the time (NaN where it did not).
        t: ``[n_time]`` sample times (iterations for a map).
        bounds: ``[2, 3]`` lower and upper corner of the finite positions.
        color_by, color_range: the colour mode and the value range mapped to ``[0, 1]``.
        var_names: names of the three drawn variables.
        dt: the integration step; ``seconds``: wall time of the computation.
        message: empty, or what went wrong (diverged trajectories, with when).
        series, series_of: for given series (:func:`series_view`), their names and
            ``[n_ic]`` the index of the series each drawn stretch belongs to; ``()`` and
            ``None`` for a catalogue system.
    """

    system: str
    kind: str
    parameters: dict[str, Any]
    positions: np.ndarray
    colors: np.ndarray
    valid: np.ndarray
    diverged: np.ndarray
    diverged_at: np.ndarray
    t: np.ndarray
    bounds: np.ndarray
    color_by: str
    color_range: tuple[float, float]
    var_names: tuple[str, str, str]
    dt: float
    seconds: float
    message: str
    series: tuple[str, ...] = ()
    series_of: np.ndarray | None = None

    @property
    def n_diverged(self) -> int:
        return int(self.diverged.sum())


def _check_int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not lo <= value <= hi:
        raise ConfigError(f"{name} must be an int in [{lo}, {hi}], got {value!r}")
    return int(value)


def _check_float(name: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating) \
            or not math.isfinite(value) or not lo <= value <= hi:
        raise ConfigError(f"{name} must be a number in [{lo}, {hi}], got {value!r}")
    return float(value)


def _dtype_for(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "cuda" else torch.float64


def _starting_states(system: Any, params: dict[str, Any], n_ic: int, dt: float,
                     gen: torch.Generator, dtype: torch.dtype,
                     device: torch.device) -> tuple[torch.Tensor, str]:
    """``n_ic`` states spread along the attractor: run one orbit from the default state
    through a transient, take states along a further stretch of it, and jitter them. When
    that orbit diverges, fall back to jittered default states and say so."""
    base = system.default_state(dtype=dtype, device=device)
    scale = base.abs().clamp_min(1.0)
    jitter = IC_JITTER * scale * torch.randn(n_ic, system.dim, generator=gen, dtype=dtype).to(device)
    note = ""
    if system.kind == "map":
        orbit = system.iterate(base[None], MAP_TRANSIENT + n_ic, **params)
        along = orbit.y[0, MAP_TRANSIENT + 1:]
        escaped = bool(orbit.diverged.any())
    else:
        period = system.period or 100 * system.dt
        n_warm = max(1, round(TRANSIENT_PERIODS * period / dt))
        n_along = max(n_ic, round(2 * period / dt))
        field = system.vector_field(**params)
        warm = rk4(field, base[None], (0.0, n_warm * dt), dt, save_every=n_warm)
        start = warm.y[:, -1]
        escaped = bool(warm.diverged.any())
        if escaped:
            along = start
        else:
            run = rk4(field, start, (0.0, n_along * dt), dt)
            escaped = bool(run.diverged.any())
            along = run.y[0, 1:]
            idx = torch.linspace(0, len(along) - 1, n_ic).round().long()
            along = along[idx.to(along.device)]
    if escaped or not torch.isfinite(along).all():
        note = ("the orbit from the default initial condition diverged with these parameters; "
                "starting from it directly. ")
        return base + jitter, note
    return along[:n_ic] + jitter * along[:n_ic].abs().clamp_min(1.0) / scale, note


def _color_values(system: Any, params: dict[str, Any], y: torch.Tensor, mode: str,
                  t: torch.Tensor) -> tuple[torch.Tensor, str]:
    if mode == "time":
        return t.expand(y.shape[:-1]).clone(), "time"
    finite = torch.where(torch.isfinite(y), y, torch.zeros_like(y))
    if mode == "speed":
        if system.kind == "map":
            step = torch.diff(finite, dim=-2, prepend=finite[..., :1, :])
            return step.norm(dim=-1), "distance per iteration"
        return system.rhs(0.0, finite, **params).norm(dim=-1), "speed |f(y)|"
    jac = system.jacobian(0.0, finite, **params)  # analytic where dysts has one
    if system.kind == "map":
        return torch.log(torch.linalg.matrix_norm(jac, ord=2).clamp_min(1e-300)), \
            "log stretching of the map"
    sym = (jac + jac.transpose(-1, -2)) / 2
    return torch.linalg.eigvalsh(sym)[..., -1], "local expansion rate"


def attractor_view(system: str | System = "Lorenz", *,
                   parameters: Mapping[str, Any] | None = None, n_ic: int = 256,
                   periods: float = 10.0, samples: int = 1000, color_by: str = "time",
                   seed: int = 0, device: str = "auto", bound: float | None = None,
                   variables: Sequence[int] | None = None) -> AttractorData:
    """Integrate ``n_ic`` trajectories of ``system`` for the viewer.

    Args:
        system: a flow or map of the catalogue (case-insensitive; unknown names get the
            closest names in the error), or a :class:`~labkit.dynamics.System` (a user's
            own: :func:`labkit.dynamics.custom_system`).
        parameters: overrides of the default parameters (a parameter batch is not allowed
            here: one value each).
        n_ic: number of trajectories, started along the attractor (see
            :func:`_starting_states`), in ``[1, 8192]``.
        periods: length of each trajectory in dominant periods (a map: ``periods * 10``
            iterations).
        samples: at most this many samples are kept per trajectory (``[2, 4000]``).
        color_by: one of :data:`COLOR_MODES`.
        seed: seed of the initial-condition jitter.
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        bound: a state beyond this magnitude counts as diverged; ``None``: the
            integrators' default, relative to the attractor's extent at these parameters
            (:func:`labkit.core.integrate.default_bound`).
        variables: the three state variables drawn (:func:`check_variables`); default
            the first three.

    Returns:
        :class:`AttractorData`. Diverged trajectories are flagged and named in
        ``message``, never returned as silent NaN.
    """
    t_start = time.perf_counter()
    sys_ = as_system(system)
    drawn = check_variables(list(variables) if variables is not None
                            else default_variables(sys_.dim), sys_.dim)
    n_ic = _check_int("n_ic", n_ic, 1, MAX_IC)
    samples = _check_int("samples", samples, 2, MAX_SAMPLES)
    periods = _check_float("periods", periods, 0.01, 1e4)
    if color_by not in COLOR_MODES:
        raise ConfigError(f"color_by must be one of {COLOR_MODES}, got {color_by!r}")
    if n_ic * samples * 3 > MAX_BUFFER_FLOATS:
        raise ConfigError(f"n_ic * samples = {n_ic * samples} is too many points for one view "
                          f"(at most {MAX_BUFFER_FLOATS // 3})")
    overrides = dict(parameters or {})
    params = sys_.params(overrides)
    for key, value in overrides.items():
        if isinstance(value, torch.Tensor) and value.numel() != 1:
            raise ConfigError(f"parameter {key!r} must be one value here, got shape "
                              f"{tuple(value.shape)}")
    dev = resolve_device(device)
    dtype = _dtype_for(dev)
    gen = make_generator(seed)
    dt = integration_step(sys_)
    with torch.no_grad():
        y0, note = _starting_states(sys_, overrides, n_ic, dt, gen, dtype, dev)
        if sys_.kind == "map":
            n_steps = max(1, round(periods * 10))
            traj = sys_.iterate(y0, n_steps, bound=bound, **overrides)
            save_every = max(1, math.ceil((n_steps + 1) / samples))
            y, t = traj.y[:, ::save_every], traj.t[::save_every]
        else:
            period = sys_.period or 100 * sys_.dt
            n_steps = max(1, round(periods * period / dt))
            save_every = max(1, math.ceil(n_steps / (samples - 1)))
            n_steps = save_every * math.ceil(n_steps / save_every)
            traj = rk4(sys_.vector_field(**overrides), y0, (0.0, n_steps * dt), dt,
                       save_every=save_every, bound=bound)
            y, t = traj.y, traj.t
        finite = torch.isfinite(y).all(-1)
        valid = finite.long().cumprod(-1).sum(-1)
        raw, label = _color_values(sys_, overrides, y, color_by, t)
    # Positions: the drawn variables, samples after divergence held at the last finite one.
    idx = torch.arange(y.shape[-2], device=y.device)
    hold = torch.minimum(idx[None, :], (valid - 1).clamp_min(0)[:, None])
    held = torch.gather(y, 1, hold[..., None].expand_as(y))
    held = torch.where(torch.isfinite(held), held, torch.zeros_like(held))
    xyz = torch.zeros(*held.shape[:-1], 3, dtype=held.dtype, device=held.device)
    for axis, k in enumerate(drawn):
        if k != NO_VARIABLE:
            xyz[..., axis] = held[..., k]
    pos = xyz.float().cpu().numpy()
    ok = (idx[None, :] < valid[:, None]).cpu().numpy()
    raw_np = raw.double().cpu().numpy()
    good = ok & np.isfinite(raw_np)
    if good.any():
        lo, hi = (float(v) for v in np.percentile(raw_np[good], [2.0, 98.0]))
        span = (lo, hi) if hi > lo else (lo, lo + 1.0)
    else:
        span = (0.0, 1.0)
    colors = np.clip((np.nan_to_num(raw_np, nan=span[0]) - span[0]) / (span[1] - span[0]), 0, 1)
    bounds = np.stack([pos[ok].min(0), pos[ok].max(0)]) if ok.any() else np.zeros((2, 3))
    diverged = traj.diverged.cpu().numpy()
    diverged_at = traj.diverged_at.double().cpu().numpy()
    message = note
    if diverged.any():
        first = float(np.nanmin(diverged_at))
        unit = "iteration" if sys_.kind == "map" else "t ="
        limit = f"|y| > {bound:g}" if bound is not None else "beyond the divergence bound"
        message += (f"{int(diverged.sum())} of {n_ic} trajectories diverged (non-finite or "
                    f"{limit}); the first at {unit} {first:.4g}. "
                    "They are drawn in red up to that point.")
    names = drawn_names(drawn)
    return AttractorData(
        system=sys_.name, kind=sys_.kind, parameters=params,
        positions=np.ascontiguousarray(pos, dtype=np.float32),
        colors=np.ascontiguousarray(colors, dtype=np.float32),
        valid=valid.cpu().numpy().astype(np.int32), diverged=diverged, diverged_at=diverged_at,
        t=t.double().cpu().numpy(), bounds=bounds.astype(np.float64), color_by=color_by,
        color_range=(float(span[0]), float(span[1])), var_names=tuple(names),  # type: ignore[arg-type]
        dt=float(dt), seconds=time.perf_counter() - t_start, message=message.strip(),
    )


@dataclasses.dataclass(frozen=True)
class SpectrumData:
    """The Lyapunov spectrum panel: mean and standard error across initial conditions,
    the Kaplan-Yorke dimension, or a message saying why there is none."""

    exponents: list[float]
    stderr: list[float]
    kaplan_yorke: float
    time: float
    n_ics: int
    message: str


def spectrum_view(system: str | System, *, parameters: Mapping[str, Any] | None = None,
                  n_ics: int = 6, periods: float = 20.0, seed: int = 0,
                  device: str = "auto") -> SpectrumData:
    """Lyapunov spectrum of a flow (Benettin QR, :func:`labkit.dynamics.lyapunov_spectrum`)
    from ``n_ics`` states on the attractor over ``periods`` dominant periods, with the
    viewer's integration step. Maps, and runs that diverge, get an empty spectrum and a
    message saying why."""
    sys_ = as_system(system)
    n_ics = _check_int("n_ics", n_ics, 2, 256)
    periods = _check_float("periods", periods, 1.0, 1e5)
    overrides = dict(parameters or {})
    sys_.params(overrides)
    if sys_.kind == "map":
        return SpectrumData([], [], math.nan, 0.0, n_ics,
                            "the spectrum panel covers flows; use labkit.dynamics for maps")
    dev = resolve_device(device)
    dtype = _dtype_for(dev)
    dt = integration_step(sys_)
    gen = make_generator(seed)
    with torch.no_grad():
        y0, _ = _starting_states(sys_, overrides, n_ics, dt, gen, dtype, dev)
    period = sys_.period or 100 * sys_.dt
    try:
        res = lyapunov_spectrum(sys_.vector_field(**overrides), y0, dt=dt,
                                time=round(periods * period / dt) * dt, qr_every=5)
    except DivergenceError as exc:
        return SpectrumData([], [], math.nan, 0.0, n_ics, f"no spectrum: {exc}")
    return SpectrumData(
        exponents=[float(v) for v in res.mean], stderr=[float(v) for v in res.stderr],
        kaplan_yorke=float(kaplan_yorke_dimension(res.mean)), time=float(res.time), n_ics=n_ics,
        message="",
    )


@dataclasses.dataclass(frozen=True)
class OrbitData:
    """The orbit-diagram panel: ``points`` ``[n, 2]`` (parameter value, maximum of the
    variable for a flow / the variable itself for a map), the parameter values whose runs
    diverged, the current value to mark, the swept range ``span`` and the slider's whole
    range ``full`` (they differ once zoomed in)."""

    parameter: str
    variable: int
    points: np.ndarray
    values: np.ndarray
    diverged_values: list[float]
    current: float
    message: str
    span: tuple[float, float] = (0.0, 1.0)
    full: tuple[float, float] = (0.0, 1.0)


def orbit_view(system: str | System, parameter: str, *,
               parameters: Mapping[str, Any] | None = None, n_values: int = 64,
               n_ics: int = 2, periods: float = 20.0, variable: int = 0, seed: int = 0,
               device: str = "auto", span: Sequence[float] | None = None) -> OrbitData:
    """Orbit diagram of ``parameter`` over its slider range (:func:`parameter_specs`), or
    over ``span`` = ``(lo, hi)`` (a zoom: the same ``n_values`` values over the narrower
    range), all values in one batched run; the other parameters at ``parameters``. A flow
    contributes the local maxima of ``variable`` after a transient of ``periods / 2``; a
    map its iterates. Parameter values whose runs diverge are listed, not drawn.

    Raises:
        ConfigError: an unknown parameter, or a ``span`` that is not two finite numbers
            ``lo < hi``.
    """
    sys_ = as_system(system)
    specs = {s["name"]: s for s in parameter_specs(sys_)}
    if parameter not in specs:
        raise ConfigError(f"{sys_.name} has no scalar parameter {parameter!r}; "
                          f"choose one of {sorted(specs)}")
    n_values = _check_int("n_values", n_values, 2, 4096)
    n_ics = _check_int("n_ics", n_ics, 1, 64)
    variable = _check_int("variable", variable, 0, sys_.dim - 1)
    overrides = dict(parameters or {})
    merged = sys_.params(overrides)
    current = float(merged[parameter])
    dev = resolve_device(device)
    dtype = _dtype_for(dev)
    spec = specs[parameter]
    lo, hi = check_span(span) if span is not None and len(span) else (spec["min"], spec["max"])
    values = torch.linspace(lo, hi, n_values, dtype=dtype, device=dev)
    batch = {**overrides, parameter: values[:, None]}
    gen = make_generator(seed)
    base = sys_.default_state(dtype=dtype, device=dev)
    y0 = base + 0.1 * base.abs().clamp_min(1.0) * torch.randn(
        n_values, n_ics, sys_.dim, generator=gen, dtype=dtype).to(dev)
    with torch.no_grad():
        if sys_.kind == "map":
            n_iter = max(20, round(periods * 10))
            traj = sys_.iterate(y0, 2 * n_iter, **batch)
            ys = traj.y[..., n_iter + 1:, variable]
            per_value = [ys[i].flatten() for i in range(n_values)]
        else:
            dt = integration_step(sys_)
            period = sys_.period or 100 * sys_.dt
            n_half = max(1, round(periods * period / (2 * dt)))
            field = sys_.vector_field(**batch)
            warm = rk4(field, y0, (0.0, n_half * dt), dt, save_every=n_half)
            start = warm.y[..., -1, :]
            run = rk4(field, torch.where(torch.isfinite(start), start, y0),
                      (0.0, n_half * dt), dt)
            traj = run
            ys = run.y[..., variable]
            peaks = local_maxima(torch.where(torch.isfinite(ys), ys, torch.zeros_like(ys)))
            per_value = [torch.cat(peaks[i * n_ics:(i + 1) * n_ics]) for i in range(n_values)]
            traj_diverged = warm.diverged | run.diverged
        diverged = (traj.diverged if sys_.kind == "map" else traj_diverged).any(-1)
    pts = [torch.stack([torch.full_like(m, float(v)), m], -1)
           for v, m, bad in zip(values, per_value, diverged, strict=True) if not bad and len(m)]
    points = torch.cat(pts).float().cpu().numpy() if pts else np.zeros((0, 2), np.float32)
    points = points[np.isfinite(points).all(-1)]
    bad_values = [float(v) for v in values[diverged].cpu()]
    message = ""
    if bad_values:
        message = (f"runs diverged for {len(bad_values)} of {n_values} values of {parameter} "
                   f"(e.g. {bad_values[0]:.4g}); they are left out")
    return OrbitData(parameter=parameter, variable=variable,
                     points=np.ascontiguousarray(points, dtype=np.float32),
                     values=values.double().cpu().numpy(), diverged_values=bad_values,
                     current=current, message=message, span=(float(lo), float(hi)),
                     full=(float(spec["min"]), float(spec["max"])))


def check_span(span: Any) -> tuple[float, float]:
    """An orbit diagram's zoom ``(lo, hi)``: two finite numbers, ``lo < hi``.

    Raises:
        ConfigError: anything else, quoting it.
    """
    ok = isinstance(span, list | tuple) and len(span) == 2 and all(
        isinstance(v, int | float | np.floating) and not isinstance(v, bool)
        and math.isfinite(v) for v in span) and span[0] < span[1]
    if not ok:
        raise ConfigError(f"orbit_range must be [] (the slider's whole range) or two finite "
                          f"numbers [lo, hi] with lo < hi, got {span!r}")
    return float(span[0]), float(span[1])
