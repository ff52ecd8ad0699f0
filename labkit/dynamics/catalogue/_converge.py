r"""Lyapunov spectra averaged until they stop moving: the converged catalogue table.

The shipped table (:mod:`labkit.dynamics.catalogue._table`) averages 100 periods from 16
neighbours of one initial condition; its error bars measure the spread of trajectories
that stay correlated for a while, and some of its exponents are outside them against
long independent runs. :func:`converge_spectrum` instead

* starts from **independent** points of the attractor: neighbours of dysts' initial
  condition carried through a long transient (``transient_periods``, tens of Lyapunov
  times for the chaotic systems), so the standard error across starts is an honest
  error bar;
* averages for ``T``, then ``2 T``, ``4 T``, ... (each a fresh run of that length from
  the same starts) until **every** exponent moves by less than its error bar
  (:data:`ERROR_BAR_SIGMAS` standard errors, and at least :data:`ABS_FLOOR_PER_PERIOD`
  per period) between two doublings, or ``max_doublings`` is reached (then the row says
  ``converged = False``);
* checks the error bars against the spread between two independent halves of the starts
  (``halves_ok``: the half means differ by less than three combined standard errors).

Everything runs on the compiled kernels (:mod:`labkit.core.kernels`), which is what
makes hour-long averages of the whole catalogue affordable.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from labkit.core.config import Config, check_int
from labkit.core.rng import make_generator
from labkit.dynamics._tables import NamedRows, markdown_table
from labkit.dynamics.catalogue._catalogue import System, get_system, list_systems
from labkit.dynamics.catalogue._lyapunov import kaplan_yorke_dimension, lyapunov_spectrum
from labkit.dynamics.catalogue._table import TableSettings, _choose_step
from labkit.errors import ConfigError, DataError, DivergenceError

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["CONVERGED_TABLE", "ConvergedRow", "ConvergedTable", "ConvergenceSettings",
           "build_converged_table", "converge_spectrum", "converged_table"]

#: The converged table shipped with labkit (``labkit table --converge``).
CONVERGED_TABLE = Path(__file__).parent / "data" / "invariants_converged.json"

#: Two half-sample means agree when they differ by less than this many combined
#: standard errors (a two-sided 99.7% band for Gaussian means).
HALVES_SIGMAS = 3.0
#: The error bar of an exponent: this many standard errors (a 95% band). One standard
#: error is not a usable test: between two doublings an exponent moves, from noise
#: alone, by about one standard error, so all ``dim`` exponents would rarely pass at once.
ERROR_BAR_SIGMAS = 2.0
#: Changes below this many e-foldings per period count as no change: the exponent that
#: vanishes for an autonomous flow carries a finite-time bias of order
#: ``ln(max|f| / min|f|) / T`` that its standard error does not cover.
ABS_FLOOR_PER_PERIOD = 1e-4


@dataclasses.dataclass(frozen=True, kw_only=True)
class ConvergenceSettings(Config):
    """How :func:`converge_spectrum` averages: a :class:`labkit.core.Config` (frozen,
    validated, :meth:`~labkit.core.Config.replace`, ``to_dict`` / ``from_dict``, whose
    dict the converged table's header records).

    Attributes:
        n_ics: independent starts (even, >= 4: two halves of >= 2 each).
        transient_periods: integrated from dysts' initial condition and its neighbours
            before averaging, in periods (a map: 50 iterations per unit, at least 100).
        periods: the first averaging time, in periods; then doubled.
        max_doublings: most doublings before the row is marked not converged.
        max_steps: most RK4 steps (map iterations) of one average; a doubling past it is
            not run and the row is marked not converged.
        seed: seed of the neighbours' offsets (an int, recorded in the table).
    """

    n_ics: int = 16
    transient_periods: float = 50.0
    periods: float = 100.0
    max_doublings: int = 7
    max_steps: int = 2_000_000
    seed: int = 0

    def validate(self) -> None:
        if not (self.n_ics >= 4 and self.n_ics % 2 == 0):
            raise ConfigError(f"n_ics must be an even int >= 4, got {self.n_ics!r}")
        for name in ("transient_periods", "periods"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")
        for name in ("max_doublings", "max_steps"):
            value = getattr(self, name)
            if value < 1:
                raise ConfigError(f"{name} must be an int >= 1, got {value!r}")
        check_int("seed", self.seed, least=0)


@dataclasses.dataclass(frozen=True)
class ConvergedRow:
    """One system's converged spectrum.

    Attributes:
        name, kind: the system. ``status``: ``"ok"``, ``"diverged"`` or ``"failed"``.
        converged: every exponent moved by less than its error bar at the last doubling.
        exponents, exponents_stderr: mean over the starts (decreasing) and standard error.
        kaplan_yorke, kaplan_yorke_stderr: the Kaplan-Yorke dimension.
        halves_ok: the two halves of the starts agree within :data:`HALVES_SIGMAS`.
        time: the last averaging time; ``dt``: the RK4 step (1 for maps).
        history: ``(time, largest exponent, its standard error)`` of every average run.
        seconds: wall time; ``message``: why a row failed.
    """

    name: str
    kind: str
    status: str
    converged: bool = False
    exponents: tuple[float, ...] = ()
    exponents_stderr: tuple[float, ...] = ()
    kaplan_yorke: float = math.nan
    kaplan_yorke_stderr: float = math.nan
    halves_ok: bool | None = None
    time: float = math.nan
    dt: float = math.nan
    history: tuple[tuple[float, float, float], ...] = ()
    seconds: float = 0.0
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        """The row as plain JSON values (lists; NaN becomes null)."""
        return {k: _plain(v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ConvergedRow:
        values: dict[str, Any] = {f.name: data.get(f.name) for f in dataclasses.fields(cls)
                                  if f.name in data}
        for key in ("kaplan_yorke", "kaplan_yorke_stderr", "time", "dt"):
            if values.get(key) is None:
                values[key] = math.nan
        for key in ("exponents", "exponents_stderr"):
            values[key] = tuple(values.get(key) or ())
        values["history"] = tuple(tuple(h) for h in values.get("history") or ())
        return cls(**values)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclasses.dataclass(frozen=True)
class ConvergedTable(NamedRows[ConvergedRow], Mapping[str, ConvergedRow]):
    """The converged table: :class:`ConvergedRow` by system name (a read-only mapping, in
    catalogue order; lookups ignore case), with the file's header.

    Attributes:
        header: how the table was made: settings, method, commit, machine, dates,
            ``wall_seconds``.
        rows: system name -> row.
    """

    header: Mapping[str, Any]
    rows: Mapping[str, ConvergedRow]
    table_name: ClassVar[str] = "the converged table"

    @property
    def settings(self) -> ConvergenceSettings:
        """The settings of the header."""
        return ConvergenceSettings.from_dict(self.header["settings"])

    def records(self) -> list[dict[str, Any]]:
        """The rows as plain dicts (JSON values: lists, and None for NaN), as in the file."""
        return [row.to_json() for row in self.rows.values()]

    def summary(self) -> str:
        """A Markdown table: status, whether it converged, the largest exponent with its
        standard error, the Kaplan-Yorke dimension, the last averaging time and the
        halves check, one line per system."""
        lines = []
        for row in self.rows.values():
            ok = row.status == "ok" and bool(row.exponents)
            lines.append({
                "name": row.name, "kind": row.kind, "status": row.status,
                "converged": row.converged if row.status == "ok" else None,
                "lambda1": row.exponents[0] if ok else None,
                "stderr": row.exponents_stderr[0] if ok else None,
                "kaplan_yorke": row.kaplan_yorke, "time": row.time,
                "halves_ok": row.halves_ok})
        return markdown_table(lines, (
            ("name", "system", ""), ("kind", "kind", ""), ("status", "status", ""),
            ("converged", "converged", ""), ("lambda1", "lambda_1", ".5g"),
            ("stderr", "stderr", ".2g"), ("kaplan_yorke", "D_KY", ".4g"),
            ("time", "T", ".4g"), ("halves_ok", "halves agree", "")))

    def to_xarray(self) -> xr.Dataset:
        """The table as an :class:`xarray.Dataset` on a ``system`` axis, the spectra padded
        with NaN along an ``exponent`` axis (``history`` left out); the header goes into
        ``attrs`` (mappings as JSON)."""
        import numpy as np
        import xarray as xr

        rows = list(self.rows.values())
        width = max([len(r.exponents) for r in rows] + [1])

        def padded(values: tuple[float, ...]) -> list[float]:
            return list(values) + [math.nan] * (width - len(values))

        data: dict[str, Any] = {
            key: (("system", "exponent"),
                  np.array([padded(getattr(r, key)) for r in rows], dtype=float))
            for key in ("exponents", "exponents_stderr")}
        for f in dataclasses.fields(ConvergedRow):
            if f.name in ("name", "exponents", "exponents_stderr", "history"):
                continue
            values = [getattr(r, f.name) for r in rows]
            if f.name == "halves_ok":  # None (not measured) -> NaN
                values = [math.nan if v is None else float(v) for v in values]
            data[f.name] = ("system", np.asarray(values))
        attrs = {k: json.dumps(v) if isinstance(v, Mapping | list) else v
                 for k, v in self.header.items()}
        return xr.Dataset(data, coords={"system": [r.name for r in rows]}, attrs=attrs)


def _perturbed(system: System, settings: ConvergenceSettings) -> torch.Tensor:
    """dysts' initial condition and ``n_ics - 1`` seeded neighbours (relative 1e-3)."""
    ic = system.default_state()
    gen = make_generator(settings.seed)
    noise = torch.randn(settings.n_ics, system.dim, generator=gen, dtype=ic.dtype)
    y0 = ic + 1e-3 * (1 + ic.abs()) * noise
    y0[0] = ic
    return y0


def _starts(system: System, settings: ConvergenceSettings) -> tuple[torch.Tensor, float, float]:
    """Independent starts ``[n_ics, dim]``: neighbours of dysts' initial condition carried
    through a long transient, by which chaos has decorrelated them. (Points sampled along
    one trajectory would not do: integrated with the same steps, each start retraces
    that trajectory bit for bit, so their averages are windows of one run.) Returns the
    starts, the RK4 step and the time at the starts."""
    table = TableSettings(n_ics=settings.n_ics, transient_periods=settings.transient_periods)
    dt, y, t_end, _ = _choose_step(system, system.vector_field(), _perturbed(system, settings),
                                   table)
    return y, dt, t_end


def _map_starts(system: System, settings: ConvergenceSettings) -> torch.Tensor:
    transient = max(100, round(settings.transient_periods * 50))
    orbit = system.iterate(_perturbed(system, settings), transient)
    if orbit.n_diverged:
        raise DivergenceError(f"{system.name}: {orbit.n_diverged} orbits diverged in the "
                              f"transient (first at iteration "
                              f"{int(orbit.diverged_at[orbit.diverged].min())})")
    return orbit.y[:, -1]


def _map_spectrum(system: System, y: torch.Tensor, n: int) -> torch.Tensor:
    from labkit.core.kernels import kernel_for, run_lyapunov

    found = kernel_for(system._kernel_source(system.params()), y)
    if found is None:
        raise ConfigError(f"{system.name} does not compile; its converged spectrum is not "
                          "computed")
    sums, _, diverged, _ = run_lyapunov(found[0], found[1], y, dt=1.0, n_transient=0,
                                        n_steps=n, m=system.dim, qr_every=1, bound=1e6,
                                        method="map")
    if bool(diverged.any()):
        raise DivergenceError(f"{system.name}: {int(diverged.sum())} orbits diverged")
    return sums / n


def converge_spectrum(name: str, settings: ConvergenceSettings | None = None) -> ConvergedRow:
    """Average the Lyapunov spectrum of ``name`` over doubling times until it converges.

    Returns a :class:`ConvergedRow` (a diverged or failed system is a row that says so).

    Example::

        row = converge_spectrum("Lorenz", ConvergenceSettings(n_ics=8, periods=20))
        row.converged, row.exponents[0], row.exponents_stderr[0]   # True, ~0.906, ~0.003
    """
    settings = ConvergenceSettings() if settings is None else settings
    if not isinstance(settings, ConvergenceSettings):
        raise ConfigError(f"settings must be a ConvergenceSettings, got {settings!r}")
    system = get_system(name)
    start = time.perf_counter()
    kind = system.kind
    try:
        if kind == "map":
            starts, dt, t0 = _map_starts(system, settings), 1.0, 0.0
            unit = 10.0  # a map's "period": iterations per unit of ``periods``
        else:
            starts, dt, t0 = _starts(system, settings)
            unit = system.period_of_flow()
        history: list[tuple[float, float, float]] = []
        previous = None
        converged = False
        horizon = settings.periods * unit
        for _ in range(settings.max_doublings + 1):
            n = max(1, round(horizon / dt))
            if n > settings.max_steps:
                break
            if kind == "map":
                exps = _map_spectrum(system, starts, n)
            else:
                exps = lyapunov_spectrum(system.vector_field(), starts, dt=dt, time=n * dt,
                                         t0=t0).exponents
            mean, stderr = exps.mean(0), exps.std(0) / math.sqrt(exps.shape[0])
            history.append((n * dt, float(mean[0]), float(stderr[0])))
            bar = torch.clamp(ERROR_BAR_SIGMAS * stderr, min=ABS_FLOOR_PER_PERIOD / unit)
            if previous is not None and bool(((mean - previous).abs() <= bar).all()):
                converged = True
                break
            previous = mean
            horizon *= 2
    except DivergenceError as exc:
        return ConvergedRow(name=system.name, kind=kind, status="diverged", message=str(exc),
                            seconds=time.perf_counter() - start)
    except (ConfigError, RuntimeError, ValueError) as exc:
        return ConvergedRow(name=system.name, kind=kind, status="failed",
                            message=f"{type(exc).__name__}: {exc}",
                            seconds=time.perf_counter() - start)
    half = exps.shape[0] // 2
    a, b = exps[:half], exps[half:]
    se = ((a.var(0) / half) + (b.var(0) / (exps.shape[0] - half))).sqrt()
    halves_ok = bool(((a.mean(0) - b.mean(0)).abs() <= HALVES_SIGMAS * se).all())
    ky = kaplan_yorke_dimension(exps)
    return ConvergedRow(
        name=system.name, kind=kind, status="ok", converged=converged,
        exponents=tuple(float(v) for v in mean), exponents_stderr=tuple(float(v) for v in stderr),
        kaplan_yorke=float(ky.mean()), kaplan_yorke_stderr=float(ky.std() / math.sqrt(len(ky))),
        halves_ok=halves_ok, time=history[-1][0], dt=dt, history=tuple(history),
        seconds=time.perf_counter() - start)


def build_converged_table(names: Sequence[str] | None = None, *,
                          path: str | Path = CONVERGED_TABLE,
                          settings: ConvergenceSettings | None = None,
                          resume: bool = False,
                          progress: Callable[[str], Any] | None = print) -> ConvergedTable:
    """:func:`converge_spectrum` for ``names`` (default: every flow, then every map), written
    to ``path`` as JSON, atomically after every system. Returns the table as written (a
    :class:`ConvergedTable`).

    With ``resume=True`` an existing file at ``path`` is continued: its rows are kept and
    their systems skipped, its settings must equal ``settings`` (default: the file's own),
    the rows are written in catalogue order, and the header keeps ``created`` and gains
    ``updated``, this session's commit and machine, and the summed ``wall_seconds``. To
    recompute some rows (after a change to their systems), delete them from the file and
    resume with their names.

    Raises:
        ConfigError: when resuming a file made with other settings.
    """
    from labkit.core.cache import atomic_write
    from labkit.core.kernels import kernel_status
    from labkit.dynamics.catalogue._table_file import _git_commit

    path = Path(path)
    todo = list(names) if names is not None else list_systems("flow") + list_systems("map")
    say = progress or (lambda line: None)
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    machine = {"platform": platform.platform(), "python": platform.python_version(),
               "torch": torch.__version__, "kernels": kernel_status()}
    rows: dict[str, Any] = {}
    if resume and path.exists():
        old = json.loads(path.read_text())
        kept = ConvergenceSettings.from_dict(old["header"]["settings"])
        if settings is not None and settings != kept:
            diff = {k: (v, getattr(settings, k)) for k, v in kept.to_dict().items()
                    if getattr(settings, k) != v}
            raise ConfigError(f"cannot resume {str(path)!r}: it was made with other settings "
                              f"(field: (file, requested)) {diff}")
        settings = kept
        rows = {row["name"]: row for row in old["rows"]}
        header = dict(old["header"], commit=_git_commit(), machine=machine, updated=now,
                      sessions=int(old["header"].get("sessions", 1)) + 1)
    else:
        settings = ConvergenceSettings() if settings is None else settings
        header = {"format_version": 1, "settings": settings.to_dict(),
                  "method": "Benettin QR with the exact tangent of the RK4 step (maps: of the "
                            "map), compiled kernels; averaging time doubled until every "
                            f"exponent moved by less than {ERROR_BAR_SIGMAS:g} standard errors "
                            f"(and at least {ABS_FLOOR_PER_PERIOD:g} per period); starts "
                            "decorrelated by a long transient",
                  "commit": _git_commit(), "machine": machine, "created": now}
    order = {n: i for i, n in enumerate(list_systems("flow") + list_systems("map"))}

    def table() -> dict[str, Any]:
        listed = list(rows.values())
        if resume:
            listed.sort(key=lambda r: order.get(r["name"], len(order)))
        return {"header": header, "rows": listed}

    base_wall = float(header.get("wall_seconds", 0.0)) if resume else 0.0
    pending = [n for n in todo if get_system(n).name not in rows]
    if resume:
        say(f"{len(todo) - len(pending)} of {len(todo)} systems already in {path}; "
            f"computing {len(pending)}")
    start = time.perf_counter()
    for i, name in enumerate(pending, 1):
        row = converge_spectrum(name, settings)
        rows[row.name] = row.to_json()
        header["wall_seconds"] = round(base_wall + time.perf_counter() - start, 1)
        atomic_write(path, json.dumps(table(), indent=1) + "\n")
        lam = (f"lambda1 = {row.exponents[0]:.5g} +- {row.exponents_stderr[0]:.2g} "
               f"{'converged' if row.converged else 'NOT converged'} at T = {row.time:.4g}"
               if row.status == "ok" else row.message[:90])
        say(f"[{i}/{len(pending)}] {row.name:26s} {row.status:8s} {row.seconds:6.1f} s  {lam}")
    header.setdefault("wall_seconds", 0.0)
    say(f"total wall time {header['wall_seconds']} s ({path})")
    return _as_table(table())


def _as_table(data: Mapping[str, Any]) -> ConvergedTable:
    return ConvergedTable(header=dict(data["header"]),
                          rows={row["name"]: ConvergedRow.from_json(row) for row in data["rows"]})


def converged_table(path: str | Path = CONVERGED_TABLE) -> ConvergedTable:
    """The converged table (default: the one shipped with labkit), a
    :class:`ConvergedTable` of rows by system name.

    Raises:
        DataError: the file is missing or not JSON.
    """
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise DataError(f"no converged table at {str(path)!r}") from None
    except json.JSONDecodeError as err:
        raise DataError(f"{str(path)!r} is not valid JSON: {err}") from None
    return _as_table(data)
