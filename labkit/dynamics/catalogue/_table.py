r"""The whole catalogue's invariants, recomputed by labkit: one row per flow and map.

:func:`compute_invariants` measures one system's Lyapunov spectrum (Benettin's QR method:
:func:`~labkit.dynamics.lyapunov_spectrum` for flows, products of the map's Jacobian for
maps) from dysts' default initial condition and seeded neighbours of it, together with
two checks that do not use the tangent vectors:

* the sum of the exponents against the time average of the divergence
  :math:`\nabla\cdot f = \operatorname{tr} J` along the same trajectories (for a flow,
  :math:`\sum_i \lambda_i = \langle \operatorname{tr} J \rangle` exactly; for a map,
  :math:`\langle \log |\det J| \rangle`);
* for an autonomous flow, the exponent closest to zero must vanish within error (the
  direction along the flow neither grows nor shrinks on average). Its finite-time
  estimate carries a bias of order :math:`\ln(\max|f| / \min|f|) / T` (a tangent
  vector along the flow grows exactly like the phase speed :math:`|f|`), so the check
  allows that, with the phase speeds measured along the same trajectories.

The table of every system, its file and its generator are in
:mod:`labkit.dynamics.catalogue._table_file`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch

from labkit.core.config import Config
from labkit.core.integrate import DEFAULT_BOUND, rk4
from labkit.core.rng import make_generator
from labkit.dynamics.catalogue._catalogue import System, get_system, list_systems
from labkit.dynamics.catalogue._lyapunov import kaplan_yorke_dimension, lyapunov_spectrum
from labkit.errors import ConfigError, DataError, DivergenceError

__all__ = [
    "DIVERGENCE_RTOL",
    "STIFFNESS_LIMIT",
    "ZERO_SIGMAS",
    "InvariantsRow",
    "TableSettings",
    "compute_invariants",
]

#: Divergence check: ``|sum(lambda) - <tr J>|`` must stay below this fraction of
#: ``sum(|lambda|)`` for every initial condition (dimensionless).
DIVERGENCE_RTOL = 1e-2
#: Divergence check, absolute floor in units of 1 / period (for spectra near zero).
DIVERGENCE_ATOL_PER_PERIOD = 1e-3
#: Divergence check of a map, absolute floor per iteration: the error of the mean
#: ``log |det J|`` from central-difference Jacobians (about 1e-11 where the spectrum is 0,
#: as on Gingerbreadman's quasi-periodic orbits, whose exact exponents sum to 0).
DIVERGENCE_ATOL_MAP = 1e-9
#: Largest ``dt * |tr J|`` allowed along the pilot trajectory: an RK4 step contracts a
#: direction of rate ``z / dt`` by ``log R(z)``, which is within 0.1% of ``z`` for
#: ``|z| <= 0.5`` (and 2% off at 1): beyond it the tangent dynamics, not the trajectory,
#: are what the step gets wrong.
STIFFNESS_LIMIT = 0.5
#: Relative step of the central differences of the divergence check (its error is
#: O(step^2) relative).
TRACE_STEP = 1e-5
#: Zero-exponent check: the exponent closest to zero passes when it lies within this many
#: standard errors of zero plus the finite-time bias ``ln(max|f| / min|f|) / T``.
ZERO_SIGMAS = 3.0
#: Statuses of a row.
STATUSES = ("ok", "diverged", "failed")


@dataclasses.dataclass(frozen=True, kw_only=True)
class TableSettings(Config):
    """How every system of the table is measured: a :class:`labkit.core.Config` (frozen,
    validated on construction, :meth:`~labkit.core.Config.replace`,
    :meth:`~labkit.core.Config.to_dict` / :meth:`~labkit.core.Config.from_dict`, whose
    dict is what a table's header records under ``settings``).

    Attributes:
        n_ics: initial conditions per system: dysts' default one plus ``n_ics - 1``
            seeded neighbours (>= 2, for an error bar).
        perturbation: size of the neighbours' offsets, relative to ``1 + |y_i|`` per
            component (Gaussian).
        seed: seed of the offsets (an int, recorded in the table: a fresh
            ``torch.Generator`` per system is made from it).
        transient_periods: state-only integration before measuring, in units of the
            system's ``period`` (dysts' dominant period).
        periods: averaging time in units of the system's period ...
        max_steps: ... capped at this many RK4 steps (bounds the compute).
        steps_per_period: first RK4 step tried, ``period / steps_per_period``.
        step_rtol: the step is halved until RK4 over one period from the attractor
            agrees with two half steps to this fraction of the attractor's extent
            (a step-halving check on the trajectory) and ``dt * |tr J|`` stays below
            :data:`STIFFNESS_LIMIT` along the transient; never below dysts' ``dt``.
        trace_every: steps between the samples of the divergence (sum check) and of
            the phase speed (zero check).
        map_transient, map_iterations: iterations of a map before and while measuring.
    """

    n_ics: int = 16
    perturbation: float = 1e-3
    seed: int = 0
    transient_periods: float = 10.0
    periods: float = 100.0
    max_steps: int = 8000
    steps_per_period: int = 100
    step_rtol: float = 1e-3
    trace_every: int = 1
    map_transient: int = 1000
    map_iterations: int = 5000

    def validate(self) -> None:
        ints = {"n_ics": 2, "seed": 0, "max_steps": 1, "steps_per_period": 4,
                "trace_every": 1, "map_transient": 0, "map_iterations": 1}
        for name, low in ints.items():
            value = getattr(self, name)
            if value < low:
                raise ConfigError(f"TableSettings.{name} must be an int >= {low}, got {value!r}")
        for name in ("perturbation", "transient_periods", "periods", "step_rtol"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"TableSettings.{name} must be a finite number >= 0, "
                                  f"got {value!r}")
        if self.periods == 0 or self.step_rtol == 0:
            raise ConfigError(f"TableSettings.periods and step_rtol must be > 0, got "
                              f"periods={self.periods!r}, step_rtol={self.step_rtol!r}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class InvariantsRow:
    """One system's recomputed invariants (exponents per unit time; per iteration for maps).

    Numbers that were not measured (a diverged or failed run, a check that does not apply)
    are NaN, tuples are empty and flags are None.

    Attributes:
        name, kind, dim, nonautonomous: the system (``kind`` is ``"flow"`` or ``"map"``).
        status: ``"ok"``, ``"diverged"`` or ``"failed"``; ``message`` says why.
        exponents, exponents_stderr: mean spectrum over the initial conditions (decreasing)
            and its standard error across them.
        max_lyapunov, max_lyapunov_stderr: the largest exponent and its standard error.
        kaplan_yorke, kaplan_yorke_stderr: Kaplan-Yorke dimension (mean over initial
            conditions of each one's dimension) and its standard error.
        exponent_sum: mean over initial conditions of the sum of the exponents.
        divergence: the same from the trajectories alone: time average of
            :math:`\\operatorname{tr} J` (flows) or of :math:`\\log|\\det J|` (maps).
        divergence_gap: largest ``|sum - divergence|`` over the initial conditions.
        divergence_ok: the gap is within :data:`DIVERGENCE_RTOL` of ``sum(|lambda|)``.
        zero_exponent, zero_exponent_stderr: the exponent closest to zero (autonomous
            flows only).
        speed_log_ratio: largest ``ln(max|f| / min|f|)`` along a trajectory (flows).
        zero_tolerance: ``ZERO_SIGMAS * zero_exponent_stderr + speed_log_ratio / time``.
        zero_ok: ``|zero_exponent| <= zero_tolerance`` (None: not applicable).
        dt: RK4 step used (1 for maps); ``time``: averaging time; ``transient``: time
            integrated first; ``n_steps``: steps (iterations) averaged over.
        step_error: the step-halving estimate at ``dt``, relative to the attractor's
            extent; ``step_stiffness``: largest ``dt * |tr J|`` over the second half of
            the transient;
            ``dt_halvings``: halvings from ``period / steps_per_period``.
        n_ics: initial conditions; ``seconds``: wall time of this row.
        settings: the :class:`TableSettings` used, as a dict.
    """

    name: str
    kind: str
    dim: int
    nonautonomous: bool
    status: str
    message: str = ""
    exponents: tuple[float, ...] = ()
    exponents_stderr: tuple[float, ...] = ()
    max_lyapunov: float = math.nan
    max_lyapunov_stderr: float = math.nan
    kaplan_yorke: float = math.nan
    kaplan_yorke_stderr: float = math.nan
    exponent_sum: float = math.nan
    divergence: float = math.nan
    divergence_gap: float = math.nan
    divergence_ok: bool | None = None
    zero_exponent: float = math.nan
    zero_exponent_stderr: float = math.nan
    speed_log_ratio: float = math.nan
    zero_tolerance: float = math.nan
    zero_ok: bool | None = None
    dt: float = math.nan
    time: float = math.nan
    transient: float = math.nan
    n_steps: int = 0
    step_error: float = math.nan
    step_stiffness: float = math.nan
    dt_halvings: int = 0
    n_ics: int = 0
    seconds: float = math.nan
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise DataError(f"row {self.name!r}: status must be one of {STATUSES}, "
                            f"got {self.status!r}")

    def to_json(self) -> dict[str, Any]:
        """The row as plain JSON values (NaN becomes null)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = [_nan_to_none(v) for v in value]
            elif isinstance(value, Mapping):
                value = dict(value)
            out[f.name] = _nan_to_none(value)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> InvariantsRow:
        """A row from :meth:`to_json`'s output (null becomes NaN)."""
        if not isinstance(data, Mapping):
            raise DataError(f"a table row must be an object, got {data!r:.80}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise DataError(f"row {data.get('name')!r} has unknown field(s) {unknown}")
        values: dict[str, Any] = {}
        for key, value in data.items():
            default = fields[key].default
            if isinstance(value, list):
                value = tuple(math.nan if v is None else float(v) for v in value)
            elif value is None and isinstance(default, float):
                value = math.nan
            values[key] = value
        try:
            return cls(**values)
        except TypeError as err:
            raise DataError(f"row {data.get('name')!r} is incomplete: {err}") from None


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _catalogue_names() -> list[str]:
    return list_systems("flow") + list_systems("map")


def _canonical(name: str) -> str:
    """The catalogue's spelling of ``name``; unknown names raise get_system's error."""
    if not isinstance(name, str):
        raise ConfigError(f"system name must be a string, got {name!r}")
    by_lower = {n.lower(): n for n in _catalogue_names()}
    if name.lower() in by_lower:
        return by_lower[name.lower()]
    get_system(name)  # raises: unknown (with the closest names) or a delay equation
    raise ConfigError(f"{name!r} is not a flow or map of the catalogue")  # pragma: no cover


def _initial_states(system: System, settings: TableSettings) -> torch.Tensor:
    """dysts' default initial condition and ``n_ics - 1`` seeded neighbours, ``[n, dim]``."""
    ic = system.default_state()
    gen = make_generator(settings.seed)
    noise = torch.randn(settings.n_ics, system.dim, generator=gen, dtype=ic.dtype)
    y0 = ic + settings.perturbation * (1 + ic.abs()) * noise
    y0[0] = ic
    return y0


def _diverged(y: torch.Tensor) -> bool:
    return bool((~torch.isfinite(y)).any() or (y.abs() > DEFAULT_BOUND).any())


def _integrate(field: Callable, y: torch.Tensor, t0: float, dt: float, n: int) -> torch.Tensor:
    """RK4 state-only, ``n`` steps (compiled where the field allows); returns the states
    ``[n + 1, *batch, dim]``, NaN after a trajectory left :data:`DEFAULT_BOUND`."""
    return rk4(field, y, (t0, t0 + n * dt), dt).y.movedim(-2, 0)


def _choose_step(system: System, field: Callable, y0: torch.Tensor,
                 settings: TableSettings) -> tuple[float, torch.Tensor, float, dict[str, Any]]:
    """The RK4 step: from ``period / steps_per_period``, halved until a transient stays
    bounded, one period from the attractor agrees with two half steps to
    ``step_rtol`` of the attractor's extent, and ``dt * |tr J|`` stays within
    :data:`STIFFNESS_LIMIT` along the second half of the transient; never below dysts'
    ``dt``.

    Returns ``(dt, state after the transient, its time, {step_error, step_stiffness,
    dt_halvings})``.
    """
    period = system.period_of_flow()
    floor = float(system.dt)
    dt = max(period / settings.steps_per_period, floor)
    halvings = 0
    transient = settings.transient_periods * period
    while True:  # a transient that stays bounded
        n = max(1, round(transient / dt))
        states = _integrate(field, y0, 0.0, dt, n)
        y = states[-1]
        if not _diverged(y):
            break
        if dt / 2 < floor:
            raise DivergenceError(f"{system.name}: the transient diverged even at dysts' "
                                  f"step dt = {dt:.4g}")
        dt, halvings = dt / 2, halvings + 1
    t_end = n * dt
    # |tr J| along the second half of the transient (on the attractor), at every step.
    largest = _largest_divergence(system, states[n // 2:], (n // 2) * dt, dt)
    while True:  # step halving on the trajectory over one period
        n = max(2, round(period / dt))
        coarse = _integrate(field, y, t_end, dt, n)
        fine = _integrate(field, y, t_end, dt / 2, 2 * n)[-1]
        extent = (coarse.amax(dim=(0, 1)) - coarse.amin(dim=(0, 1))).amax()
        error = float((coarse[-1] - fine).abs().amax() / extent.clamp_min(1e-300))
        stiffness = dt * largest
        accurate = error <= settings.step_rtol and stiffness <= STIFFNESS_LIMIT
        if (accurate and not _diverged(fine)) or dt / 2 < floor:
            return dt, y, t_end, {"step_error": error, "step_stiffness": stiffness,
                                  "dt_halvings": halvings}
        dt, halvings = dt / 2, halvings + 1


def _largest_divergence(system: System, states: torch.Tensor, t0: float, dt: float) -> float:
    """``max |tr J|`` over the states ``[time, *batch, dim]`` of a trajectory from ``t0``."""
    if not system.nonautonomous:  # the time does not matter: one call for all states
        return float(_field_divergence(system, torch.tensor(t0), states)[0].abs().amax())
    return max(float(_field_divergence(system, torch.tensor(t0 + i * dt), y)[0].abs().amax())
               for i, y in enumerate(states))


def _field_divergence(system: System, t: torch.Tensor,
                      y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r""":math:`\nabla\cdot f = \sum_j \partial f_j / \partial y_j` and the phase speed
    :math:`|f|` at states ``[*batch, dim]``, each ``[*batch]``.

    Central differences with steps :data:`TRACE_STEP` ``(1 + |y_j|)``, all ``2 dim``
    displaced states in one call of the field (``System.jacobian`` makes ``dim`` calls);
    the speed is that of the mean of the two displaced fields (error O(step^2)).
    """
    dim = y.shape[-1]
    eye = torch.eye(dim, dtype=y.dtype, device=y.device).reshape(dim, *([1] * (y.ndim - 1)), dim)
    h = TRACE_STEP * (1 + y.abs())  # [*batch, dim]
    moved = torch.cat([y + eye * h, y - eye * h])  # [2 dim, *batch, dim]
    out = system.rhs(t, moved)
    diag = torch.diagonal((out[:dim] - out[dim:]).movedim(0, -2), dim1=-2, dim2=-1)
    speed = ((out[:dim] + out[dim:]) / 2).mean(0).norm(dim=-1)
    return (diag / (2 * h)).sum(-1), speed


def _summary(exponents: torch.Tensor) -> dict[str, Any]:
    """Mean spectrum, error bars and Kaplan-Yorke dimension from ``[n_ics, dim]``."""
    n = exponents.shape[0]
    mean = exponents.mean(0)
    stderr = exponents.std(0) / math.sqrt(n)
    order = torch.argsort(mean, descending=True)
    mean, stderr = mean[order], stderr[order]
    ky = kaplan_yorke_dimension(exponents)
    return {
        "exponents": tuple(float(v) for v in mean),
        "exponents_stderr": tuple(float(v) for v in stderr),
        "max_lyapunov": float(exponents.amax(-1).mean()),
        "max_lyapunov_stderr": float(exponents.amax(-1).std() / math.sqrt(n)),
        "kaplan_yorke": float(ky.mean()),
        "kaplan_yorke_stderr": float(ky.std() / math.sqrt(n)),
        "exponent_sum": float(exponents.sum(-1).mean()),
    }


def _divergence_fields(exponents: torch.Tensor, divergence: torch.Tensor,
                       atol: float) -> dict[str, Any]:
    gap = (exponents.sum(-1) - divergence).abs()
    allowed = DIVERGENCE_RTOL * exponents.abs().sum(-1) + atol
    return {"divergence": float(divergence.mean()), "divergence_gap": float(gap.amax()),
            "divergence_ok": bool((gap <= allowed).all())}


def _zero_fields(summary: Mapping[str, Any], speed_log_ratio: float,
                 time: float) -> dict[str, Any]:
    mean = torch.tensor(summary["exponents"])
    stderr = torch.tensor(summary["exponents_stderr"])
    i = int(mean.abs().argmin())
    z, se = float(mean[i]), float(stderr[i])
    tolerance = ZERO_SIGMAS * se + speed_log_ratio / time
    return {"zero_exponent": z, "zero_exponent_stderr": se, "zero_tolerance": tolerance,
            "zero_ok": bool(abs(z) <= tolerance)}


def _flow_row(system: System, settings: TableSettings) -> dict[str, Any]:
    field = system.vector_field()
    y0 = _initial_states(system, settings)
    dt, y, t_start, step = _choose_step(system, field, y0, settings)
    halvings = step["dt_halvings"]
    period = system.period_of_flow()
    n_steps = min(settings.max_steps, max(1, round(settings.periods * period / dt)))
    for attempt in range(2):
        try:
            exponents = lyapunov_spectrum(field, y, dt=dt, time=n_steps * dt,
                                          t0=t_start).exponents
            break
        except DivergenceError:
            if attempt == 1 or dt / 2 < system.dt:
                raise
            dt, halvings, n_steps = dt / 2, halvings + 1, min(settings.max_steps, 2 * n_steps)
    traces, speeds = _along(system, field, y, t_start, dt, n_steps, settings.trace_every)
    if not torch.isfinite(exponents).all():
        raise DivergenceError(f"{system.name}: non-finite exponents {exponents[0].tolist()}")
    summary = _summary(exponents)
    out = dict(summary, dt=dt, time=n_steps * dt, transient=t_start, n_steps=n_steps,
               step_error=step["step_error"], step_stiffness=step["step_stiffness"],
               dt_halvings=halvings)
    out |= _divergence_fields(exponents, traces.mean(0), DIVERGENCE_ATOL_PER_PERIOD / period)
    speed = speeds  # [samples, n_ics]
    ratio = float((speed.amax(0) / speed.amin(0)).log().amax())
    out["speed_log_ratio"] = ratio
    if not system.nonautonomous:
        out |= _zero_fields(summary, ratio, n_steps * dt)
    return out


#: Samples of the divergence and speed evaluated in one call of the field.
_CHUNK = 512


def _along(system: System, field: Callable, y: torch.Tensor, t_start: float, dt: float,
           n_steps: int, every: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The divergence and the phase speed ``[samples, n_ics]`` every ``every`` steps along
    the trajectories that :func:`lyapunov_spectrum` follows from ``y`` (the same RK4
    steps; the states are integrated again rather than observed step by step, so that
    both passes run compiled)."""
    traj = rk4(field, y, (t_start, t_start + n_steps * dt), dt, save_every=every)
    keep = n_steps // every  # the samples at multiples of ``every`` after the start
    states = traj.y[..., 1:keep + 1, :].movedim(-2, 0)  # [samples, n_ics, dim]
    times = traj.t[1:keep + 1]
    traces, speeds = [], []
    for i in range(0, keep, _CHUNK):
        t = times[i:i + _CHUNK, None] if system.nonautonomous else times[0]
        trace, speed = _field_divergence(system, t, states[i:i + _CHUNK])
        traces.append(trace)
        speeds.append(speed)
    return torch.cat(traces), torch.cat(speeds)


def _map_row(system: System, settings: TableSettings) -> dict[str, Any]:
    y = _initial_states(system, settings)
    compiled = _map_exponents(system, y, settings)
    if compiled is not None:
        exponents, log_det = compiled
        return _map_fields(exponents, log_det, settings, system.name)
    zero = torch.zeros((), dtype=y.dtype)
    with torch.no_grad():
        for i in range(settings.map_transient):
            y = system.rhs(zero, y)
            if _diverged(y):
                raise DivergenceError(f"{system.name}: an orbit left |y| <= {DEFAULT_BOUND:g} "
                                      f"in the transient, at iteration {i + 1}")
    frame = torch.eye(system.dim, dtype=y.dtype).expand(y.shape[0], -1, -1)
    log_growth = torch.zeros_like(y)
    log_det = torch.zeros(y.shape[0], dtype=y.dtype)
    for i in range(settings.map_iterations):
        jac = system.jacobian(zero, y, method="difference")
        if not torch.isfinite(jac).all():  # a displaced point left the map's domain
            jac = system.jacobian(zero, y, method="auto")
        q, r = torch.linalg.qr(jac @ frame)
        frame = q
        log_growth += torch.log(torch.diagonal(r, dim1=-2, dim2=-1).abs())
        log_det += torch.linalg.slogdet(jac).logabsdet
        with torch.no_grad():
            y = system.rhs(zero, y)
        if _diverged(y):
            raise DivergenceError(f"{system.name}: an orbit left |y| <= {DEFAULT_BOUND:g} "
                                  f"at iteration {settings.map_transient + i + 1}")
    return _map_fields(log_growth / settings.map_iterations, log_det, settings, system.name)


def _map_exponents(system: System, y: torch.Tensor, settings: TableSettings
                   ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The exponents and the summed ``log |det J|`` of a map by the compiled kernels (the
    exact tangent of the map; the determinant from difference Jacobians along the same
    orbit, an independent check), or None where the map does not compile."""
    from labkit.core.kernels import kernel_for, run_lyapunov

    found = kernel_for(system._kernel_source(system.params()), y)
    if found is None:
        return None
    orbit = system.iterate(y, settings.map_transient + settings.map_iterations)
    if orbit.n_diverged:
        first = int(orbit.diverged_at[orbit.diverged].min())
        raise DivergenceError(f"{system.name}: an orbit left |y| <= {DEFAULT_BOUND:g} at "
                              f"iteration {first}")
    sums, _, diverged, _ = run_lyapunov(
        found[0], found[1], y, dt=1.0, n_transient=settings.map_transient,
        n_steps=settings.map_iterations, m=system.dim, qr_every=1, bound=DEFAULT_BOUND,
        method="map")
    zero = torch.zeros((), dtype=y.dtype)
    states = orbit.y[:, settings.map_transient:-1].movedim(1, 0)  # [iterations, n_ics, dim]
    log_det = torch.zeros(y.shape[0], dtype=y.dtype)
    for i in range(0, states.shape[0], _CHUNK):
        chunk = states[i:i + _CHUNK]
        jac = system.jacobian(zero, chunk, method="difference")
        bad = ~torch.isfinite(jac).flatten(-2).all(-1)
        if bool(bad.any()):  # a displaced point left the map's domain
            jac[bad] = system.jacobian(zero, chunk[bad], method="auto")
        log_det += torch.linalg.slogdet(jac).logabsdet.sum(0)
    exponents = sums / settings.map_iterations
    if bool(diverged.any()):
        exponents[diverged] = math.nan
    return exponents, log_det


def _map_fields(exponents: torch.Tensor, log_det: torch.Tensor, settings: TableSettings,
                name: str = "") -> dict[str, Any]:
    if not torch.isfinite(exponents).all():
        bad = exponents[~torch.isfinite(exponents).all(-1)][0].tolist()
        raise DivergenceError(f"{name}: non-finite exponents {bad} (a zero or "
                              "non-finite Jacobian along an orbit)")
    summary = _summary(exponents)
    out = dict(summary, dt=1.0, time=float(settings.map_iterations),
               transient=float(settings.map_transient), n_steps=settings.map_iterations,
               step_error=0.0, step_stiffness=0.0, dt_halvings=0)
    out |= _divergence_fields(exponents, log_det / settings.map_iterations,
                              DIVERGENCE_ATOL_MAP)
    return out


def compute_invariants(name: str, settings: TableSettings | None = None) -> InvariantsRow:
    """Recompute one system's Lyapunov spectrum and Kaplan-Yorke dimension, with checks.

    Flows: RK4 with the step chosen by :class:`TableSettings` (a step-halving check on
    the trajectory), Benettin's QR method along ``n_ics`` trajectories from dysts'
    default initial condition and seeded neighbours of it, after a transient. Maps: QR
    of products of :meth:`System.jacobian <labkit.dynamics.System.jacobian>`. The
    error bars are standard errors across the initial conditions.

    A run that diverges, or fails inside the system's code, is returned as a row with
    status ``"diverged"`` or ``"failed"`` and the message, not raised: the table records
    it.

    Args:
        name: a flow or map of the catalogue (case-insensitive).
        settings: defaults to ``TableSettings()``.

    Returns:
        An :class:`InvariantsRow`.

    Raises:
        ConfigError: for a name that is not a flow or map of the catalogue, or settings
            that are not a :class:`TableSettings`.

    Example::

        row = compute_invariants("Lorenz", TableSettings(n_ics=4, periods=20))
        row.max_lyapunov, row.max_lyapunov_stderr   # about 0.9 +- 0.01
    """
    settings = TableSettings() if settings is None else settings
    if not isinstance(settings, TableSettings):
        raise ConfigError(f"settings must be a TableSettings, got {settings!r}")
    canonical = _canonical(name)
    start = time.perf_counter()
    kind = "map" if canonical in list_systems("map") else "flow"
    base: dict[str, Any] = {"name": canonical, "kind": kind, "n_ics": settings.n_ics,
                            "settings": settings.to_dict()}
    try:
        system = get_system(canonical)
    except ConfigError as err:  # listed but not runnable on torch
        return InvariantsRow(**base, dim=0, nonautonomous=False, status="failed",
                             message=str(err), seconds=time.perf_counter() - start)
    base |= {"dim": system.dim, "nonautonomous": system.nonautonomous}
    try:
        values = _map_row(system, settings) if kind == "map" else _flow_row(system, settings)
    except DivergenceError as err:
        return InvariantsRow(**base, status="diverged", message=str(err),
                             seconds=time.perf_counter() - start)
    except Exception as err:  # the system's own code failed: record it in the row
        return InvariantsRow(**base, status="failed", message=f"{type(err).__name__}: {err}",
                             seconds=time.perf_counter() - start)
    return InvariantsRow(**base, **values, status="ok", seconds=time.perf_counter() - start)
