"""Parameter sweeps: the cartesian grid of a notebook's parameters on dask.distributed.

Each grid point is one :func:`~labkit.reports.run_notebook` run in its own folder
``<out>/runs/<key>``, where ``key`` is a hash of the point's typed parameter values
(``1``, ``1.0`` and ``true`` are three points). What makes a point *done* is checked
every time, not remembered: its ``run.json`` says completed, every file it lists is
present with the recorded SHA-256, and it was made from the notebook's current content
(:func:`~labkit.reports._params.notebook_digest`: code, markdown and defaults, outputs
ignored), with these parameters and this labkit version. Anything else (stale, failed,
interrupted, killed, corrupt, missing) is run again; :func:`sweep_status` shows which is
which without running anything.

Every point has a lock (:mod:`labkit.reports._lock`) held while it runs and a run is
swapped into its folder as a whole when it ends, so a sweep killed at any moment and
started again loses nothing and never reruns a point that completed; two sweeps into one
folder share the points (a point another sweep is running is waited for, then taken as
done). The recorded values are gathered into one :class:`xarray.Dataset` with one
dimension per swept parameter, indexed by the exact typed values, written atomically as
``results.nc`` beside ``summary.html``.
"""

from __future__ import annotations

import dataclasses
import html
import itertools
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.core.cache import atomic_write, stable_hash
from labkit.errors import ConfigError, FolderBusyError, LabkitError
from labkit.reports._lock import FolderLock
from labkit.reports._params import (
    check_parameters,
    notebook_digest,
    notebook_parameters,
    parse_yaml,
    read_notebook,
)
from labkit.reports._run import (
    RunState,
    _labkit_version,
    _recover,
    _run,
    _signals_raise,
    _timeout_seconds,
    inspect_run,
)

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["SweepResult", "grid_points", "load_grid", "sweep", "sweep_status"]

RESULTS_FILE = "results.nc"
SUMMARY_FILE = "summary.html"
#: Seconds to wait for a ``--scheduler`` to answer before giving up.
CONNECT_TIMEOUT_S = 10.0


@dataclasses.dataclass(frozen=True)
class SweepResult:
    """What :func:`sweep` produced.

    Attributes:
        out_dir: the sweep folder.
        dataset: recorded values, one dimension per swept parameter, plus ``status``.
        ran: keys of the runs executed by this call.
        skipped: keys of the runs found done (by an earlier sweep or, while this one ran,
            by another) and not run again.
        failed: keys of the points that are not done at the end.
        problems: records that could not be stored as one typed array (kept as JSON text).
    """

    out_dir: Path
    dataset: xr.Dataset
    ran: tuple[str, ...]
    skipped: tuple[str, ...]
    failed: tuple[str, ...]
    problems: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class _Plan:
    nb_path: Path
    digest: str
    axes: dict[str, list[Any]]
    points: list[dict[str, Any]]
    keys: list[str]
    out: Path


def load_grid(path: str | Path) -> dict[str, Any]:
    """Read a grid file: a YAML mapping of parameter name to a list of values (swept) or
    a single value (fixed for every run). Values are typed by the YAML 1.2 core schema,
    as ``-p`` values are (:func:`~labkit.reports._params.parse_yaml`).

    Raises:
        ConfigError: when the file is missing, unreadable or not such a mapping.
    """
    path = Path(path)
    return _yaml_mapping(path, "grid file")


def _yaml_mapping(path: Path, what: str) -> dict[str, Any]:
    if path.is_dir():
        raise ConfigError(f"{what} {str(path)!r} is a folder; expected a YAML file")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{what} {str(path)!r} does not exist") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} {str(path)!r} is not UTF-8 text (a binary file?)") from exc
    except OSError as exc:
        raise ConfigError(f"{what} {str(path)!r} cannot be read: {exc.strerror}") from exc
    try:
        grid = parse_yaml(text, what=f"{what} {str(path)!r}")
    except LabkitError as exc:
        raise ConfigError(str(exc)) from exc
    if not isinstance(grid, dict) or not grid:
        raise ConfigError(
            f"{what} {str(path)!r} must map parameter names to values, got {grid!r}")
    bad = [k for k in grid if not isinstance(k, str)]
    if bad:
        raise ConfigError(f"{what} {str(path)!r}: parameter names must be text, got {bad!r}")
    return grid


def grid_points(grid: Mapping[str, Any]) -> tuple[dict[str, list[Any]], list[dict[str, Any]]]:
    """The swept axes (name -> values) and every point of the cartesian product.

    A list value is swept; any other value is fixed. An empty list is an error, and so is
    a value listed twice (``1`` and ``1.0`` are different values).
    """
    axes = {k: list(v) for k, v in grid.items() if isinstance(v, list | tuple)}
    fixed = {k: v for k, v in grid.items() if not isinstance(v, list | tuple)}
    for name, values in axes.items():
        if not values:
            raise ConfigError(f"grid axis {name!r} has no values")
        if len({_typed(v) for v in values}) != len(values):
            raise ConfigError(f"grid axis {name!r} repeats a value: {values!r}")
    points = [fixed | dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())]
    return axes, points


def _typed(value: Any) -> str:
    """A value's identity as typed JSON: ``1``, ``1.0`` and ``true`` differ."""
    return json.dumps(value, sort_keys=True, allow_nan=True)


def run_key(params: Mapping[str, Any]) -> str:
    """The folder name of one point: a hash of its typed parameter values."""
    return stable_hash({"parameters": dict(params)})


def _plan(notebook: str | Path, grid: Mapping[str, Any] | str | Path,
          out_dir: str | Path | None) -> _Plan:
    nb_path = Path(notebook)
    nb = read_notebook(nb_path)
    grid = load_grid(grid) if isinstance(grid, str | Path) else dict(grid)
    raw_axes, raw_points = grid_points(grid)
    declared = notebook_parameters(nb)
    points = [check_parameters(declared, p, notebook=str(nb_path)) for p in raw_points]
    axes: dict[str, list[Any]] = {}
    for name, raw in raw_axes.items():
        typed = [check_parameters(declared, {name: v}, notebook=str(nb_path))[name] for v in raw]
        if len({_typed(v) for v in typed}) != len(typed):
            raise ConfigError(
                f"grid axis {name!r} lists {raw!r}, which are {typed!r} as the notebook's "
                f"{declared[name].kind} parameter: the same value twice")
        axes[name] = typed
    out = Path(out_dir) if out_dir is not None else Path("reports") / f"{nb_path.stem}-sweep"
    if out.exists() and not out.is_dir():
        raise ConfigError(f"sweep folder {str(out)!r} is a file; expected a folder")
    if out.resolve() == nb_path.resolve().parent:
        raise ConfigError(f"refusing to write the sweep into {str(out)!r}, the folder of its "
                          f"source notebook; choose another output folder")
    return _Plan(nb_path, notebook_digest(nb), axes, points, [run_key(p) for p in points], out)


def sweep_status(
    notebook: str | Path, grid: Mapping[str, Any] | str | Path, *,
    out_dir: str | Path | None = None,
) -> list[tuple[dict[str, Any], str, RunState]]:
    """Each point's parameters, key and :class:`~labkit.reports._run.RunState` (``done``,
    ``stale``, ``failed``, ``interrupted``, ``killed``, ``running``, ``corrupt`` or
    ``missing``), without running or changing anything."""
    plan = _plan(notebook, grid, out_dir)
    runs = plan.out / "runs"
    return [(p, k, inspect_run(runs / k, digest=plan.digest, parameters=p))
            for p, k in zip(plan.points, plan.keys, strict=True)]


def _run_one(notebook: str, params: dict[str, Any], run_dir: str, timeout: float | None) -> str:
    """Dask task: one point. Waits for a point another sweep is running; returns
    ``"skipped"`` when the point turns out done, else the run's status (a failing cell is a
    result, not a crash)."""
    result = _run(Path(notebook), params, out_dir=run_dir, timeout=timeout, wait=math.inf,
                  skip_if_done=True, own_folder=True)
    return "skipped" if result is None else result.status


def _client(workers: int, scheduler: str | None, threads_per_worker: int,
            connect_timeout: float) -> tuple[Any, Any]:
    from distributed import Client, LocalCluster

    if scheduler is not None:
        if not isinstance(scheduler, str) or not scheduler.strip():
            raise ConfigError(f"scheduler must be an address like tcp://host:8786, got "
                              f"{scheduler!r}")
        try:
            return Client(scheduler, timeout=connect_timeout), None
        except (OSError, TimeoutError, ValueError) as exc:
            raise ConfigError(
                f"no dask scheduler answered at {scheduler!r} within {connect_timeout:g} s "
                f"({type(exc).__name__}: {exc}); expected the address of a running scheduler "
                f"like tcp://host:8786") from exc
    # dashboard_address=None turns the dashboard off (documented); the annotation says str.
    cluster = LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker,
                           processes=True,
                           dashboard_address=None)  # pyright: ignore[reportArgumentType]
    return Client(cluster), cluster


def sweep(
    notebook: str | Path,
    grid: Mapping[str, Any] | str | Path,
    *,
    out_dir: str | Path | None = None,
    workers: int = 2,
    scheduler: str | None = None,
    timeout: float | None = None,
    allowed_failures: int = 3,
    progress: bool = False,
    connect_timeout: float = CONNECT_TIMEOUT_S,
) -> SweepResult:
    """Run ``notebook`` at every point of ``grid`` that is not done, and collect the
    recorded values of all points.

    Args:
        notebook: the notebook to sweep.
        grid: a mapping (or a YAML file of one) of parameter names to lists of values.
        out_dir: the sweep folder; defaults to ``reports/<stem>-sweep``.
        workers: processes of the local cluster (ignored with ``scheduler``).
        scheduler: address of an existing dask scheduler (``tcp://host:8786``); this
            is how a sweep goes beyond one machine.
        timeout: per-cell limit in seconds for each run.
        allowed_failures: how often a run may be restarted after its worker died.
        progress: print one line per finished run.
        connect_timeout: seconds to wait for ``scheduler`` to answer.

    Raises:
        labkit.errors.ParameterError: a grid name or value that does not fit the notebook's
            parameters (checked for every point before anything runs).
        labkit.errors.ConfigError: a bad notebook, grid, folder or scheduler.
        KeyboardInterrupt: on SIGINT, SIGTERM or SIGHUP, after the runs in flight were
            stopped and recorded as ``interrupted`` and the results of the others written.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be an int >= 1, got {workers!r}")
    _timeout_seconds(timeout)
    plan = _plan(notebook, grid, out_dir)
    runs = plan.out / "runs"
    try:
        runs.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the sweep folder {str(runs)!r}: {exc.strerror}; "
                          f"expected a writable folder") from exc
    states = {k: inspect_run(runs / k, digest=plan.digest, parameters=p)
              for k, p in zip(plan.keys, plan.points, strict=True)}
    todo = [(k, p) for k, p in zip(plan.keys, plan.points, strict=True)
            if states[k].state != "done"]
    todo.sort(key=lambda kp: states[kp[0]].state == "running")  # others' points last
    skipped = [k for k in plan.keys if states[k].state == "done"]
    ran: list[str] = []

    if todo:
        import dask.config
        import distributed  # noqa: F401 - loads its config before the ``set`` below, which
        # would otherwise drop the whole "distributed" section on exit

        with dask.config.set({"distributed.scheduler.allowed-failures": allowed_failures}):
            client, cluster = _client(workers, scheduler, 1, connect_timeout)
            try:
                with _signals_raise():
                    _submit_all(client, plan, todo, timeout, progress, ran, skipped)
            except KeyboardInterrupt:
                _close(client, cluster)
                client = cluster = None
                for k, _ in todo:  # the runs in flight are dead now: record it
                    _finish_interrupted(runs / k)
                _collect_and_summarize(plan)
                raise
            finally:
                if client is not None:
                    _close(client, cluster)

    dataset, problems = _collect_and_summarize(plan)
    final = {k: inspect_run(runs / k, digest=plan.digest, parameters=p).state
             for k, p in zip(plan.keys, plan.points, strict=True)}
    failed = tuple(k for k in plan.keys if final[k] != "done")
    return SweepResult(plan.out, dataset, tuple(ran), tuple(skipped), failed, tuple(problems))


def _submit_all(client: Any, plan: _Plan, todo: list[tuple[str, dict[str, Any]]],
                timeout: float | None, progress: bool, ran: list[str],
                skipped: list[str]) -> None:
    from distributed import as_completed

    runs = plan.out / "runs"
    futures = {
        client.submit(_run_one, str(plan.nb_path.resolve()), p, str((runs / k).resolve()),
                      timeout, key=f"labkit-run-{k}", pure=False): k
        for k, p in todo
    }
    for fut in as_completed(futures):
        k = futures[fut]
        try:
            status = fut.result()
        except Exception as exc:  # the worker died too often, or the task broke
            status = f"error: {type(exc).__name__}: {exc}"
        (skipped if status == "skipped" else ran).append(k)
        if progress:
            print(f"[{k}] {status}", flush=True)


def _close(client: Any, cluster: Any) -> None:
    client.close()
    if cluster is not None:
        cluster.close()


def _finish_interrupted(run_dir: Path) -> None:
    """Mark a point whose run was stopped with the sweep as ``interrupted`` (if no other
    process holds it)."""
    lock = FolderLock(run_dir, what="run folder")
    try:
        lock.acquire(wait=5.0)
    except (FolderBusyError, ConfigError):
        return
    try:
        _recover(run_dir, status="interrupted")
    finally:
        lock.release()


def _collect_and_summarize(plan: _Plan) -> tuple[xr.Dataset, list[str]]:
    lock = FolderLock(plan.out, what="sweep folder")
    lock.acquire(wait=120.0)
    try:
        states = [inspect_run(plan.out / "runs" / k, digest=plan.digest, parameters=p)
                  for k, p in zip(plan.keys, plan.points, strict=True)]
        dataset, problems = collect(plan, states)
        write_summary(plan, states)
    finally:
        lock.release()
    for problem in problems:
        warnings.warn(problem, stacklevel=3)
    return dataset, problems


def _category(value: Any) -> tuple[str, tuple[int, ...]] | None:
    """(kind, shape) of a recorded value: kind ``number``, ``bool`` or ``str``; ``None``
    for anything that is not one rectangular array of one kind."""
    import numpy as np

    try:
        arr = np.asarray(value)
    except ValueError:
        return None
    kinds = {"i": "number", "u": "number", "f": "number", "b": "bool", "U": "str"}
    kind = kinds.get(arr.dtype.kind)
    return None if kind is None else (kind, tuple(arr.shape))


def collect(plan: _Plan, states: Sequence[RunState]) -> tuple[xr.Dataset, list[str]]:
    """Gather the records of every done point into a dataset, write it as ``results.nc``.

    The grid is indexed by typed values (coordinates of mixed types are stored as typed
    JSON text, with ``attrs["labkit_encoding"] = "json"``). A record that is one kind
    (number, bool or text) and one shape at every point becomes one array (missing points:
    NaN, or ``""`` for text); a record whose kind or shape changes between points is kept
    faithfully as typed JSON text per point, and the returned problems say which points
    differ. A record named like a swept parameter (or ``status``) is stored as
    ``record_<name>``. A point that is not done never blocks the others.
    """
    import numpy as np
    import xarray as xr

    axes = plan.axes
    shape = tuple(len(v) for v in axes.values())
    lookup = {a: {_typed(v): i for i, v in enumerate(values)} for a, values in axes.items()}
    index = [tuple(lookup[a][_typed(p[a])] for a in axes) for p in plan.points]
    status = np.full(shape, "missing", dtype=object)
    records: dict[str, dict[tuple[int, ...], tuple[Any, dict[str, Any]]]] = {}
    for idx, point, state in zip(index, plan.points, states, strict=True):
        status[idx] = state.state
        if state.state != "done" or state.info is None:
            continue
        for name, value in (state.info.get("records") or {}).items():
            records.setdefault(name, {})[idx] = (value, point)

    dims = tuple(axes)
    data_vars: dict[str, Any] = {"status": (dims, status.astype(str))}
    problems: list[str] = []
    for record_name, by_point in records.items():
        # A record may not share a name with a swept axis or ``status``: it gets a prefix.
        name = f"record_{record_name}" if record_name in (*dims, "status") else record_name
        cats = {idx: _category(v) for idx, (v, _) in by_point.items()}
        distinct = set(cats.values())
        if len(distinct) == 1 and None not in distinct:
            kind, sub = next(iter(distinct))  # type: ignore[misc]
            if kind == "str":
                arr: Any = np.full(shape + sub, "", dtype=object)
            else:
                arr = np.full(shape + sub, np.nan, dtype=float)
            for idx, (value, _) in by_point.items():
                arr[idx] = np.asarray(value, dtype=object if kind == "str" else float)
            extra = tuple(f"{name}_dim{i}" for i in range(len(sub)))
            attrs = {"labkit_kind": kind}
            if kind == "number" and all(np.asarray(v).dtype.kind in "iu"
                                        for v, _ in by_point.values()):
                attrs["labkit_kind"] = "int"
            data_vars[name] = (dims + extra, arr.astype(str) if kind == "str" else arr, attrs)
            continue
        text = np.full(shape, "", dtype=object)
        for idx, (value, _) in by_point.items():
            text[idx] = json.dumps(value, allow_nan=True)
        seen: dict[Any, dict[str, Any]] = {}
        for idx, (_, point) in by_point.items():
            seen.setdefault(cats[idx], point)
        described = "; ".join(
            f"{'not one array' if c is None else f'{c[0]} of shape {c[1]}'} at {p}"
            for c, p in seen.items())
        if len(distinct) > 1:
            problems.append(f"record {record_name!r} changes kind or shape between points "
                            f"({described}); stored as typed JSON text in {RESULTS_FILE} ({name})")
        data_vars[name] = (dims, text.astype(str), {"labkit_encoding": "json"})
    coords = {a: _coord(a, v) for a, v in axes.items()}
    ds = xr.Dataset(data_vars, coords=coords, attrs={
        "notebook": str(plan.nb_path), "notebook_sha256": plan.digest,
        "labkit_version": _labkit_version(),
        "runs": json.dumps(dict(zip(plan.keys, plan.points, strict=True)))})
    tmp = plan.out / f".{RESULTS_FILE}.tmp"
    ds.to_netcdf(tmp, engine="h5netcdf")
    tmp.replace(plan.out / RESULTS_FILE)
    return ds, problems


def _coord(name: str, values: Sequence[Any]) -> Any:
    """A coordinate of typed values: one Python type -> its numpy array; mixed types (or
    lists) -> typed JSON text, so that ``1``, ``1.0`` and ``true`` stay apart."""
    import numpy as np
    import xarray as xr

    types = {type(v) for v in values}
    if len(types) == 1 and types <= {bool, int, float, str}:
        return xr.Variable((name,), np.asarray(values))
    return xr.Variable((name,), np.asarray([_typed(v) for v in values]),
                       {"labkit_encoding": "json"})


def write_summary(plan: _Plan, states: Sequence[RunState]) -> Path:
    """An HTML table: one row per point with its parameters, state, records and report."""
    rows = []
    record_names: list[str] = []
    for state in states:
        for name in (state.info or {}).get("records") or {}:
            if name not in record_names:
                record_names.append(name)
    head = "".join(f"<th>{html.escape(h)}</th>"
                   for h in [*plan.axes, "state", *record_names, "report", "key"])
    for k, p, state in zip(plan.keys, plan.points, states, strict=True):
        recs = (state.info or {}).get("records") or {} if state.state == "done" else {}
        cells = [html.escape(json.dumps(p[a])) for a in plan.axes]
        cells.append(f'<span title="{html.escape(state.reason)}">{html.escape(state.state)}</span>')
        cells += [html.escape(_fmt(recs.get(n))) for n in record_names]
        report = plan.out / "runs" / k / "report.html"
        cells.append(f'<a href="runs/{k}/report.html">report</a>' if report.exists() else "")
        cells.append(f"<code>{k}</code>")
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>labkit sweep</title>"
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style></head><body>"
        f"<h1>Sweep of {len(plan.keys)} runs of {html.escape(plan.nb_path.name)}</h1>"
        f"<table><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></body></html>\n"
    )
    return atomic_write(plan.out / SUMMARY_FILE, page)


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    text = json.dumps(value)
    return text if len(text) < 60 else text[:57] + "..."
